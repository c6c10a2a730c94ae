"""/api/evals for scripts: the same evals, runs and output items as /v1, in /api's conventions (201, 204, 422,
`{"detail", "code", "param"}` errors), a run with its progress and pass rates."""

from __future__ import annotations

from app.tables import EvalRun, EvalRunItem, EvalRunStatus
from tests.evals.conftest import STRING_CHECK, TINY


def test_an_eval_from_a_dataset_is_created_listed_renamed_and_deleted(api, dataset):
    created = api.post("/api/evals", json={"testing_criteria": [STRING_CHECK], "dataset_id": dataset.id})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["object"] == "eval" and body["dataset"] == {"id": dataset.id, "split": "validation"}
    assert body["name"] == f"{dataset.name} eval"
    item_schema = body["data_source_config"]["schema"]["properties"]["item"]
    assert {"messages", "reference", "example_id"} <= set(item_schema["properties"])

    second = api.post(
        "/api/evals",
        json={"name": "all of it", "testing_criteria": [], "dataset_id": dataset.id, "split": "all"},
    ).json()
    assert second["dataset"]["split"] == "all"
    listed = api.get("/api/evals").json()
    assert [e["id"] for e in listed["data"]] == [second["id"], body["id"]] and listed["has_more"] is False
    assert [e["id"] for e in api.get("/api/evals", params={"order": "asc", "limit": 1}).json()["data"]] == [body["id"]]

    renamed = api.patch(f"/api/evals/{body['id']}", json={"name": "held out", "metadata": {"k": "v"}}).json()
    assert (renamed["name"], renamed["metadata"]) == ("held out", {"k": "v"})
    assert api.get(f"/api/evals/{body['id']}").json()["name"] == "held out"
    assert api.delete(f"/api/evals/{body['id']}").status_code == 204
    gone = api.get(f"/api/evals/{body['id']}")
    assert gone.status_code == 404 and gone.json()["code"] == "eval_not_found"


def test_a_run_reports_its_progress_and_pass_rates_and_its_items(api, session, an_eval):
    created = api.post(f"/api/evals/{an_eval.id}/runs", json={"model": TINY, "name": "base"})
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["object"], run["status"], run["model"], run["name"]) == ("eval.run", "queued", TINY, "base")
    assert (run["n_items"], run["n_done"], run["purpose"]) == (4, 0, "eval")
    assert run["summary"]["pass_rate"] is None and run["data_source"]["source"]["dataset"]["split"] == "validation"
    assert run["report_url"].endswith(f"/evals/{an_eval.id}/runs/{run['id']}")

    # As the worker records a finished run: two items graded, one passed.
    row = session.get(EvalRun, run["id"])
    for index, (answer, status) in enumerate([("2", "pass"), ("7", "fail")]):
        sample = {"input": [], "output": [{"role": "assistant", "content": answer}], "model": TINY}
        passed = status == "pass"
        result = {"name": "exact", "type": "string_check", "score": float(passed), "passed": passed}
        session.add(
            EvalRunItem(run_id=row.id, item_index=index, item={}, sample=sample, results=[result], status=status)
        )
    row.status, row.n_done = EvalRunStatus.completed, 2
    row.result_counts = {"total": 2, "errored": 0, "failed": 1, "passed": 1}
    row.per_testing_criteria_results = [{"testing_criteria": "exact", "passed": 1, "failed": 1}]
    session.add(row)
    session.commit()

    done = api.get(f"/api/evals/{an_eval.id}/runs/{run['id']}").json()
    assert done["status"] == "completed" and done["summary"]["pass_rate"] == 0.5
    low, high = done["summary"]["interval"]
    assert 0 < low < 0.5 < high < 1
    assert done["summary"]["graders"][0]["name"] == "exact"
    items = api.get(f"/api/evals/{an_eval.id}/runs/{run['id']}/output_items").json()
    assert [i["sample"]["output"][0]["content"] for i in items["data"]] == ["2", "7"]
    failed = api.get(f"/api/evals/{an_eval.id}/runs/{run['id']}/output_items", params={"status": "fail"}).json()
    one = api.get(f"/api/evals/{an_eval.id}/runs/{run['id']}/output_items/{failed['data'][0]['id']}").json()
    assert one["results"][0]["passed"] is False and one["datasource_item_id"] == 1

    ended = api.post(f"/api/evals/{an_eval.id}/runs/{run['id']}/cancel")
    assert ended.status_code == 409 and ended.json()["code"] == "run_ended"
    other = api.post(f"/api/evals/{an_eval.id}/runs", json={"model": TINY}).json()
    assert api.post(f"/api/evals/{an_eval.id}/runs/{other['id']}/cancel").json()["status"] == "canceled"
    listed = api.get(f"/api/evals/{an_eval.id}/runs").json()["data"]
    assert [r["id"] for r in listed] == [other["id"], run["id"]]
    queued = api.get(f"/api/evals/{an_eval.id}/runs", params={"status": "canceled"}).json()["data"]
    assert [r["id"] for r in queued] == [other["id"]]
    assert api.delete(f"/api/evals/{an_eval.id}/runs/{other['id']}").status_code == 204
    assert api.get(f"/api/evals/{an_eval.id}/runs/{other['id']}").status_code == 404


def test_bad_requests_name_the_field(api, an_eval):
    bad = dict(STRING_CHECK, operation="contains")
    refused = api.post("/api/evals", json={"name": "bad", "testing_criteria": [bad]})
    assert refused.status_code == 400 and refused.json()["param"].endswith("operation")
    malformed = api.post("/api/evals", json={"testing_criteria": "none"})
    assert malformed.status_code == 422 and malformed.json()["param"] == "testing_criteria"
    no_model = api.post(f"/api/evals/{an_eval.id}/runs", json={"model": "no-such-model"})
    assert no_model.status_code == 404
    wrong_split = api.post(
        f"/api/evals/{an_eval.id}/runs",
        json={"model": TINY, "data_source": {"source": {"type": "dataset", "dataset_id": 1, "split": "test"}}},
    )
    assert wrong_split.status_code == 400 and wrong_split.json()["param"] == "data_source.source.split"
    assert api.get("/api/evals/eval_missing/runs").status_code == 404


def test_the_api_reference_lists_both_the_api_and_the_openai_routes(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths["/api/evals"]) and {"post", "get"} <= set(paths["/v1/evals"])
    run = paths["/v1/evals/{eval_id}/runs/{run_id}"]
    assert run["post"]["summary"].startswith("Cancel an eval run") and "delete" in run
    assert "dataset" in str(paths["/v1/evals"]["post"]["description"])
    assert api.get("/docs").status_code == 200
