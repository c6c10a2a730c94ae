"""Code written for OpenAI's Evals API runs unchanged against /v1/evals: the real openai SDK on a live server, and
every raw answer checked against OpenAI's own schema for it (tests/fixtures/openai_schemas.json)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import OpenAI
from sqlmodel import Session

from app.main import create_app
from app.tables import EvalRun, EvalRunItem
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.support import openai_schemas
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, tiny_model  # noqa: F401
from tests.support.openai_schemas import checked as ok

STRING_CHECK = {
    "type": "string_check",
    "name": "exact label",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}
SIMILAR = {
    "type": "text_similarity",
    "name": "close",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "evaluation_metric": "fuzzy_match",
    "pass_threshold": 0.8,
}
ITEM_SCHEMA = {
    "type": "object",
    "properties": {"review": {"type": "string"}, "label": {"type": "string"}},
    "required": ["review", "label"],
}
TEMPLATE = {
    "type": "template",
    "template": [
        {"role": "system", "content": "Label the review as LABEL: positive or LABEL: negative."},
        {"role": "user", "content": "{{item.review}}"},
    ],
}
ITEMS = [
    {"item": {"review": "A lovely film.", "label": "LABEL: positive"}},
    {"item": {"review": "Dull and far too long.", "label": "LABEL: negative"}},
    {"item": {"review": "I would watch it again.", "label": "LABEL: positive"}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    # No worker: runs stay queued, so their states and lists are stable; output items are written as a worker does.
    settings = make_settings(tmp_path_factory.mktemp("v1evals") / "data", local_models={TINY: tiny_model})
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as live:
        live.settings = settings
        yield live


@pytest.fixture
def client(server):
    with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def raw(server):
    """Plain HTTP on /v1, to read the bodies exactly as sent."""
    with httpx.Client(base_url=server.url + "/v1", headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


def new_eval(client: OpenAI, name: str, **extra):
    return client.evals.create(
        name=name,
        data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True},
        testing_criteria=[STRING_CHECK, SIMILAR],
        metadata={"team": "evals"},
        **extra,
    )


def completions(model: str = TINY, **overrides) -> dict:
    """OpenAI's completions run data source over ITEMS with the TEMPLATE."""
    return {
        "type": "completions",
        "model": model,
        "input_messages": TEMPLATE,
        "source": {"type": "file_content", "content": ITEMS},
        "sampling_params": {"temperature": 0, "max_completion_tokens": 12, "top_p": 1, "seed": 7},
        **overrides,
    }


def test_the_schemas_name_their_source():
    source = openai_schemas.source()
    assert source["repository"] == "https://github.com/openai/openai-openapi" and source["commit"] == "f85dbe2"
    with pytest.raises(openai_schemas.SchemaMismatch, match="report_url"):
        openai_schemas.validate("EvalRun", {"object": "eval.run"})


def test_an_eval_is_created_read_renamed_listed_and_deleted_with_the_sdk(client, raw):
    created = new_eval(client, "sentiment v1")
    assert created.id.startswith("eval_") and created.object == "eval"
    assert (created.name, created.metadata) == ("sentiment v1", {"team": "evals"})
    assert created.data_source_config.type == "custom"
    assert created.data_source_config.schema_["properties"]["item"] == ITEM_SCHEMA
    assert [c.name for c in created.testing_criteria] == ["exact label", "close"]
    body = ok(raw.get(f"/evals/{created.id}"), "Eval")
    assert body["testing_criteria"][0] == STRING_CHECK and body["dataset"] is None

    renamed = client.evals.update(created.id, name="sentiment v2", metadata={"team": "nlp"})
    assert (renamed.name, renamed.metadata) == ("sentiment v2", {"team": "nlp"})
    assert client.evals.retrieve(created.id).name == "sentiment v2"
    ok(raw.post(f"/evals/{created.id}", json={"name": "sentiment v3"}), "Eval")

    others = [new_eval(client, f"paged {i}").id for i in range(3)]
    listed = [e.id for e in client.evals.list(limit=2)]  # the SDK follows has_more/after over every page
    assert listed.index(created.id) < listed.index(others[0]) < listed.index(others[2])
    newest = client.evals.list(limit=2, order="desc")
    assert [e.id for e in newest.data] == others[:0:-1] and newest.has_more
    page = ok(raw.get("/evals", params={"limit": 2, "order": "desc", "order_by": "updated_at"}), "EvalList")
    assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][1]["id"])

    deleted = client.evals.delete(created.id)
    assert (deleted.eval_id, deleted.deleted, deleted.object) == (created.id, True, "eval.deleted")
    ok(raw.delete(f"/evals/{others[0]}"), "DeleteEvalResponse")
    with pytest.raises(openai.NotFoundError):
        client.evals.retrieve(created.id)


def test_a_run_is_queued_listed_cancelled_and_deleted_with_the_sdk(server, client, raw):
    an_eval = new_eval(client, "runs")
    run = client.evals.runs.create(an_eval.id, name="tiny on the template", data_source=completions())
    assert run.id.startswith("evalrun_") and run.object == "eval.run" and run.status == "queued"
    assert (run.eval_id, run.model, run.name) == (an_eval.id, TINY, "tiny on the template")
    assert run.report_url == f"{server.url}/evals/{an_eval.id}/runs/{run.id}"
    assert run.result_counts.total == 0 and run.error.code == ""
    assert [r.testing_criteria for r in run.per_testing_criteria_results] == ["exact label", "close"]
    assert run.data_source.source.type == "file_content" and run.data_source.input_messages.type == "template"
    body = ok(raw.get(f"/evals/{an_eval.id}/runs/{run.id}"), "EvalRun")
    assert body["data_source"]["sampling_params"] == {
        "temperature": 0,
        "max_completion_tokens": 12,
        "top_p": 1,
        "seed": 7,
    }

    second = client.evals.runs.create(an_eval.id, data_source=completions(), metadata={"try": "2"})
    assert second.name == TINY and second.metadata == {"try": "2"}
    assert [r.id for r in client.evals.runs.list(an_eval.id, limit=1)] == [run.id, second.id]
    ok(raw.get(f"/evals/{an_eval.id}/runs", params={"order": "desc"}), "EvalRunList")

    cancelled = client.evals.runs.cancel(second.id, eval_id=an_eval.id)
    assert cancelled.status == "canceled"
    assert [r.id for r in client.evals.runs.list(an_eval.id, status="canceled")] == [second.id]
    assert [r.id for r in client.evals.runs.list(an_eval.id, status="queued")] == [run.id]
    deleted = client.evals.runs.delete(second.id, eval_id=an_eval.id)
    assert (deleted.run_id, deleted.deleted, deleted.object) == (second.id, True, "eval.run.deleted")
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(second.id, eval_id=an_eval.id)
    third = client.evals.runs.create(an_eval.id, data_source=completions())
    ok(raw.delete(f"/evals/{an_eval.id}/runs/{third.id}"), "DeleteEvalRunResponse")
    ok(raw.post(f"/evals/{an_eval.id}/runs/{run.id}"), "EvalRun")  # cancel, as the SDK posts it


def test_a_dataset_eval_takes_its_items_from_the_held_out_split(server, client, raw):
    engine = make_engine(server.settings)
    with Session(engine) as session:
        dataset_id = make_dataset(session, n_train=6, n_validation=3, name="held out").id
    engine.dispose()
    an_eval = client.evals.create(
        name="held-out arithmetic",
        data_source_config={"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True},
        testing_criteria=[dict(STRING_CHECK, reference="{{item.reference}}")],
        extra_body={"dataset": {"id": dataset_id, "split": "validation"}},
    )
    assert an_eval.model_extra["dataset"] == {"id": dataset_id, "split": "validation"}

    # No source: the eval's dataset and split, each item's conversation sent as it is.
    run = client.evals.runs.create(an_eval.id, data_source={"type": "completions", "model": TINY})
    body = ok(raw.get(f"/evals/{an_eval.id}/runs/{run.id}"), "EvalRun")
    source = body["data_source"]["source"]
    assert source == {"type": "file_id", "id": f"dataset-{dataset_id}-validation", "dataset": an_eval.dataset}
    assert body["data_source"]["input_messages"] == {"type": "item_reference", "item_reference": "item.messages"}
    # A run's data source, sent back as it came, makes the same run.
    again = client.evals.runs.create(an_eval.id, data_source=body["data_source"])
    assert again.data_source.source.model_extra["dataset"] == an_eval.model_extra["dataset"]
    with Session(make_engine(server.settings)) as session:
        assert session.get(EvalRun, again.id).n_items == 3


def _write_items(settings, run_id: str) -> list[str]:
    """Three graded items of a run, as the worker writes them: a pass, a fail and an error."""
    engine = make_engine(settings)
    rows = []
    with Session(engine) as session:
        for index, (item, answer, status) in enumerate(
            zip(ITEMS, ["LABEL: positive", "LABEL: positive", None], ["pass", "fail", "error"], strict=True)
        ):
            messages = [
                dict(m, content=m["content"].replace("{{item.review}}", item["item"]["review"]))
                for m in TEMPLATE["template"]
            ]
            sample = {
                "input": messages,
                "output": [] if answer is None else [{"role": "assistant", "content": answer}],
                "finish_reason": "stop" if answer else "",
                "model": TINY,
                "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24, "cached_tokens": 0},
                "error": None if answer else {"code": "model_error", "message": "The model failed."},
                "temperature": 0.0,
                "max_completion_tokens": 12,
                "top_p": 1.0,
                "seed": 7,
            }
            passed = status == "pass"
            results = [
                {"name": "exact label", "type": "string_check", "score": float(passed), "passed": passed},
                {"name": "close", "type": "text_similarity", "score": 0.9 if passed else 0.4, "passed": passed},
            ]
            if status == "error":
                results = [
                    {
                        "name": "exact label",
                        "type": "string_check",
                        "score": None,
                        "passed": False,
                        "error": "no output",
                    }
                ]
            row = EvalRunItem(
                run_id=run_id, item_index=index, item=item["item"], sample=sample, results=results, status=status
            )
            session.add(row)
            rows.append(row.id)
        session.commit()
    engine.dispose()
    return rows


def test_output_items_show_each_output_and_its_grades(server, client, raw):
    an_eval = new_eval(client, "items")
    run = client.evals.runs.create(an_eval.id, data_source=completions())
    base = f"/evals/{an_eval.id}/runs/{run.id}/output_items"
    empty = ok(raw.get(base), "EvalRunOutputItemList")  # before the worker wrote any: still OpenAI's list shape
    assert (empty["data"], empty["first_id"], empty["has_more"]) == ([], "", False)
    ids = _write_items(server.settings, run.id)

    items = client.evals.runs.output_items.list(run.id, eval_id=an_eval.id, limit=2)
    assert [i.id for i in items] == ids  # every page, in item order
    first = items.data[0]
    assert (first.object, first.status, first.datasource_item_id) == ("eval.run.output_item", "pass", 0)
    assert (first.run_id, first.eval_id) == (run.id, an_eval.id)
    assert first.datasource_item == ITEMS[0]["item"]
    assert first.sample.output[0].content == "LABEL: positive" and first.sample.usage.total_tokens == 24
    assert first.sample.input[1].content == "A lovely film." and first.sample.error.code == ""
    assert [(r.name, r.passed, r.score) for r in first.results] == [("exact label", True, 1.0), ("close", True, 0.9)]
    failed = client.evals.runs.output_items.list(run.id, eval_id=an_eval.id, status="fail").data
    assert [i.id for i in failed] == [ids[1]] and failed[0].results[0].passed is False

    errored = client.evals.runs.output_items.retrieve(ids[2], eval_id=an_eval.id, run_id=run.id)
    assert errored.status == "error" and errored.sample.error.code == "model_error"
    assert errored.results[0].score == 0.0 and errored.results[0].model_extra["error"] == "no output"

    page = ok(raw.get(base, params={"order": "desc", "limit": 2}), "EvalRunOutputItemList")
    assert [i["datasource_item_id"] for i in page["data"]] == [2, 1] and page["has_more"] is True
    for item_id in ids:
        ok(raw.get(f"{base}/{item_id}"), "EvalRunOutputItem")


def test_errors_come_in_openai_s_shape_with_the_right_status(server, client, raw):
    with pytest.raises(openai.NotFoundError) as caught:
        client.evals.retrieve("eval_missing")
    assert caught.value.body["code"] == "eval_not_found"
    error = ok(raw.get("/evals/eval_missing/runs"), "ErrorResponse", 404)["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "eval_id"

    bad = dict(STRING_CHECK, operation="contains")
    with pytest.raises(openai.BadRequestError) as refused:
        client.evals.create(data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA}, testing_criteria=[bad])
    assert refused.value.body["param"].startswith("testing_criteria[0]")
    assert refused.value.body["param"].endswith("operation")
    ok(raw.post("/evals", json={"data_source_config": {"type": "logs"}, "testing_criteria": []}), "ErrorResponse", 400)

    an_eval = new_eval(client, "errors")
    with pytest.raises(openai.BadRequestError) as no_model:
        client.evals.runs.create(an_eval.id, data_source=completions(model=""))
    assert no_model.value.body["param"] == "data_source.model"
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.create(an_eval.id, data_source=completions(model="no-such-model"))
    with pytest.raises(openai.BadRequestError) as no_items:
        client.evals.runs.create(an_eval.id, data_source={"type": "completions", "model": TINY})
    assert no_items.value.body["param"] == "data_source.source"
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.output_items.list("evalrun_missing", eval_id=an_eval.id)
    ok(raw.get("/evals", params={"limit": 0}), "ErrorResponse", 400)

    with OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            stranger.evals.list()


def _upload(raw: httpx.Client) -> dict:
    lines = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(12)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    response = raw.post("/files", files={"file": ("schema.jsonl", data)}, data={"purpose": "fine-tune"})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_other_v1_objects_match_openai_s_schemas_too(raw):
    job = ok(raw.post("/fine_tuning/jobs", json={"model": TINY, "training_file": _upload(raw)["id"]}), "FineTuningJob")
    assert job["status"] in ("validating_files", "queued")
    ok(raw.get("/fine_tuning/jobs"), "ListPaginatedFineTuningJobsResponse")
    ok(raw.get("/models"), "ListModelsResponse")
    ok(raw.get(f"/models/{TINY}"), "Model")
    ok(raw.get("/files/file-missing"), "ErrorResponse", 404)


def test_a_file_object_matches_openai_s_schema(raw):
    ok(raw.get(f"/files/{_upload(raw)['id']}"), "OpenAIFile")
