"""Preference pairs from the browser: "prefer this answer" in the compare view, a blind review's votes, and
"make rejected answers" from a supervised dataset (the tiny model answers, in the background)."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from sqlmodel import Session, col, select

from app.datasets import validation
from app.engine.testing import build_tiny_model
from app.errors import Invalid
from app.evals import reviews
from app.main import create_app
from app.playground import preferences
from app.tables import Dataset, Example
from app.tables.dataset import PREFERENCE
from app.tables.migrate import upgrade
from tests.conftest import browser_client, make_settings
from tests.evals.pages_support import two_runs
from tests.support.builders import make_dataset

TINY = "tiny-llama"
TINY_B = "tiny-llama-b"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {TINY: build_tiny_model(root / TINY), TINY_B: build_tiny_model(root / TINY_B, seed=1)}


@pytest.fixture
def pg(tmp_path, tiny_models):
    settings = make_settings(tmp_path / "data", local_models=tiny_models)
    upgrade(settings)
    app = create_app(settings)
    client = browser_client(app)
    yield client, app
    client.__exit__(None, None, None)


def compared(system: bool = False) -> list[dict]:
    """A compare-view conversation: two turns, each model answering in its own column."""
    return [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello from A", "column": 0},
        {"role": "assistant", "content": "Hello from B", "column": 1},
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "4", "column": 0},
        {"role": "assistant", "content": "Maybe 5", "column": 1},
    ]


def flash_of(response) -> str:
    return unquote(response.cookies.get("tb_flash") or "")


def test_the_pair_is_the_preferred_column_s_conversation_and_both_answers_to_the_last_turn():
    record = preferences.pair_record(json.dumps(compared()), system="Be brief.", preferred=1, rejected=0)
    assert record["input"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello from B"},
        {"role": "user", "content": "What is 2 plus 2?"},
    ]
    assert record["preferred_output"] == [{"role": "assistant", "content": "Maybe 5"}]
    assert record["non_preferred_output"] == [{"role": "assistant", "content": "4"}]
    assert "tools" not in record["input"]
    tools = json.dumps([{"name": "add", "parameters": {"type": "object", "properties": {}}}])
    with_tools = preferences.pair_record(json.dumps(compared()), tools=tools)
    assert with_tools["input"]["tools"][0]["function"]["name"] == "add"


def test_a_pair_needs_two_answers_to_the_last_turn():
    waiting = [*compared(), {"role": "user", "content": "And 3 plus 3?"}, {"role": "assistant", "content": "6"}]
    with pytest.raises(Invalid, match="Model 2 has not answered"):
        preferences.pair_record(json.dumps(waiting))
    with pytest.raises(Invalid, match="different answers"):
        preferences.pair_record(json.dumps(compared()), preferred=1, rejected=1)
    with pytest.raises(Invalid, match="chat first"):
        preferences.pair_record("[]")
    with pytest.raises(Invalid, match="could not be read"):
        preferences.pair_record("{not json")


def test_prefer_saves_the_pair_to_a_new_preference_dataset_and_says_where(pg):
    client, app = pg
    form = {"messages": json.dumps(compared()), "preferred": 0, "rejected": 1, "dataset_id": "new", "new_name": "Picks"}
    response = client.post("/playground/prefer", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    with Session(app.state.engine) as session:
        dataset = session.exec(select(Dataset).where(col(Dataset.name) == "Picks")).one()
        example = session.exec(select(Example).where(col(Example.dataset_id) == dataset.id)).one()
    assert dataset.kind == PREFERENCE
    assert example.preferred_output == [{"role": "assistant", "content": "4"}]
    assert example.non_preferred_output == [{"role": "assistant", "content": "Maybe 5"}]
    assert example.messages[-1] == {"role": "user", "content": "What is 2 plus 2?"}
    assert example.to_record()["input"]["messages"] == example.messages
    assert example.valid and example.problems == []  # checked on arrival, as OpenAI checks a DPO line
    assert flash_of(response) == "Saved to Picks (example 1)"
    assert f'href="/examples/{example.id}">example 1</a>' in response.text
    assert f'href="/datasets/{dataset.id}">Picks</a>' in response.text
    # The next pair goes to the same dataset, as its second example.
    form["dataset_id"], form["preferred"], form["rejected"] = str(dataset.id), 1, 0
    again = client.post("/playground/prefer", data=form, headers={"HX-Request": "true"})
    assert flash_of(again) == "Saved to Picks (example 2)"
    # The compare view offers it; the "save as training example" list (supervised only) does not.
    page = client.get("/playground/compare").text
    assert f'<option value="{dataset.id}">Picks</option>' in page and "/static/playground_prefer.js" in page
    assert page.count(">Picks</option>") == 1


def test_a_pair_is_refused_by_a_supervised_dataset(pg):
    client, app = pg
    with Session(app.state.engine) as session:
        dataset_id = make_dataset(session, n_train=1, name="chats").id
    form = {"messages": json.dumps(compared()), "preferred": 0, "rejected": 1, "dataset_id": str(dataset_id)}
    response = client.post("/playground/prefer", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 400 and "supervised dataset" in response.text
    with Session(app.state.engine) as session:
        assert len(session.exec(select(Example).where(col(Example.dataset_id) == dataset_id)).all()) == 1


def test_a_blind_review_s_decided_votes_become_pairs_with_the_winner_preferred(pg):
    client, app = pg
    with Session(app.state.engine, expire_on_commit=False) as session:
        _, base, tuned = two_runs(session)
        review = reviews.create_review(session, base.id, tuned.id)
        reviews.cast_vote(session, review.id, 0, "a")
        reviews.cast_vote(session, review.id, 2, "b")
        reviews.cast_vote(session, review.id, 3, "tie")
    form_html = client.get(f"/reviews/{review.id}/preference-pairs").text
    assert "2 votes picked a side" in form_html
    results = client.get(f"/reviews/{review.id}/results").text
    assert f'hx-get="/reviews/{review.id}/preference-pairs"' in results
    response = client.post(
        f"/reviews/{review.id}/preference-pairs",
        data={"dataset_id": "new", "new_name": "Reviewed"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and flash_of(response) == "Saved 2 preference pairs to Reviewed"
    with Session(app.state.engine) as session:
        dataset = session.exec(select(Dataset).where(col(Dataset.name) == "Reviewed")).one()
        pairs = session.exec(select(Example).where(col(Example.dataset_id) == dataset.id)).all()
    by_prompt = {p.messages[-1]["content"]: p for p in pairs}
    # Item 0: both answered "0"; A won. Item 2: base said "no idea", tuned "4"; B won.
    assert by_prompt["What is 2 plus 2?"].preferred_output[0]["content"] == "4"
    assert by_prompt["What is 2 plus 2?"].non_preferred_output[0]["content"] == "no idea"
    assert set(by_prompt) == {"What is 0 plus 0?", "What is 2 plus 2?"}


def test_make_rejected_answers_writes_a_pair_per_usable_example_in_order(pg):
    client, app = pg
    with Session(app.state.engine, expire_on_commit=False) as session:
        source = make_dataset(session, n_train=3, n_validation=1, n_broken=1, name="arith")
    page = client.get(f"/datasets/{source.id}")
    assert f'href="/datasets/{source.id}/rejected-answers"' in page.text
    form = client.get(f"/datasets/{source.id}/rejected-answers").text
    assert "4 examples can be used; 1 example left out" in form
    response = client.post(
        f"/datasets/{source.id}/rejected-answers",
        data={"model": TINY, "target": "new", "new_name": "", "temperature": "0", "max_tokens": "4"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    task_id = response.headers["location"].rsplit("/", 1)[1]
    task = app.state.rejected_answers.join(task_id, timeout=120)
    assert task.status == "succeeded", task.message
    assert (task.written, task.failed, task.skipped, task.total) == (4, 0, 1, 4)
    with Session(app.state.engine) as session:
        target = session.get(Dataset, task.target_id)
        pairs = session.exec(
            select(Example).where(col(Example.dataset_id) == task.target_id).order_by(col(Example.position))
        ).all()
    assert target is not None and target.kind == PREFERENCE and target.name == f"arith · rejected by {TINY}"
    assert [p.preferred_output[0]["content"] for p in pairs] == ["0", "2", "4", "2000"]
    assert pairs[0].messages == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 0 plus 0?"},
    ]
    assert all(p.non_preferred_output[0]["role"] == "assistant" for p in pairs)
    assert [p.split for p in pairs] == [None, None, None, "validation"]
    assert pairs[1].note == f"rejected answer by {TINY} (example 2 of arith)"
    done = client.get(f"/rejected-answers/{task_id}", headers={"HX-Request": "true"}).text
    assert "Done: 4 pairs written." in done and 'hx-trigger="every 1s"' not in done
    assert f'href="/datasets/{task.target_id}" id="rejected-open"' in done
    # A preference dataset offers no "make rejected answers"; its own form refuses to start.
    assert "rejected-answers" not in client.get(f"/datasets/{task.target_id}").text
    refused = client.post(f"/datasets/{task.target_id}/rejected-answers", data={"model": TINY})
    assert refused.status_code == 400 and "preference dataset already" in refused.text


def test_make_rejected_answers_refuses_an_unknown_model_and_a_dataset_without_answers(pg):
    client, app = pg
    with Session(app.state.engine, expire_on_commit=False) as session:
        source = make_dataset(session, n_train=1, name="one")
        broken = make_dataset(session, n_train=0, n_broken=2, name="broken")
    unknown = client.post(f"/datasets/{source.id}/rejected-answers", data={"model": "no-such-model"})
    assert unknown.status_code == 404
    empty = client.post(f"/datasets/{broken.id}/rejected-answers", data={"model": TINY})
    assert empty.status_code == 400 and "nothing to make rejected answers for" in empty.text
    bad = client.post(f"/datasets/{source.id}/rejected-answers", data={"model": TINY, "temperature": "9"})
    assert bad.status_code == 400 and "temperature" in bad.text
    with Session(app.state.engine) as session:
        assert not session.exec(select(Dataset).where(col(Dataset.kind) == PREFERENCE)).all()
    assert client.get("/rejected-answers/nope").status_code == 404


LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}


def test_rejected_answers_see_their_example_s_tools_and_keep_the_source_order(pg):
    client, app = pg
    with Session(app.state.engine, expire_on_commit=False) as session:
        source = make_dataset(session, n_train=1, name="with tools")
        rows = [
            Example(
                dataset_id=source.id,
                position=1,
                messages=[
                    {"role": "user", "content": "Where is order 7?"},
                    {"role": "assistant", "content": "Order 7 shipped yesterday."},
                ],
                tools=[LOOKUP],
            ),
            Example(
                dataset_id=source.id,
                position=2,
                messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            ),
        ]
        for row in rows:
            validation.apply_check(row)
            session.add(row)
        session.commit()
    response = client.post(
        f"/datasets/{source.id}/rejected-answers",
        data={"model": TINY, "temperature": "0", "max_tokens": "4"},
        follow_redirects=False,
    )
    task = app.state.rejected_answers.join(response.headers["location"].rsplit("/", 1)[1], timeout=120)
    assert task.status == "succeeded", task.message
    with Session(app.state.engine) as session:
        pairs = session.exec(
            select(Example).where(col(Example.dataset_id) == task.target_id).order_by(col(Example.position))
        ).all()
    assert [p.preferred_output[0]["content"] for p in pairs] == ["0", "Order 7 shipped yesterday.", "Hello!"]
    assert [p.tools for p in pairs] == [None, [LOOKUP], None]


def test_with_three_models_the_dialog_asks_which_answer_is_rejected(pg):
    client, _ = pg
    html = client.get(f"/playground/compare?model={TINY}&model={TINY_B}&model={TINY}").text
    assert '<select name="rejected" id="pg-prefer-rejected">' in html
    two = client.get(f"/playground/compare?model={TINY}&model={TINY_B}").text
    assert '<input type="hidden" name="rejected" id="pg-prefer-rejected" value="1">' in two
    assert 'id="pg-prefer"' not in client.get("/playground").text  # one model: nothing to prefer it over
    third = [*compared(), {"role": "assistant", "content": "Four", "column": 2}]
    form = {"messages": json.dumps(third), "preferred": 2, "rejected": 1, "dataset_id": "new"}
    response = client.post("/playground/prefer", data=form, headers={"HX-Request": "true"})
    assert flash_of(response) == f"Saved to {preferences.DEFAULT_NAME} (example 1)"


def test_a_model_that_cannot_load_fails_the_run_in_plain_words(tmp_path, tiny_models):
    settings = make_settings(tmp_path / "data", local_models={"broken": tmp_path / "no-model-here"})
    upgrade(settings)
    app = create_app(settings)
    client = browser_client(app)
    try:
        with Session(app.state.engine, expire_on_commit=False) as session:
            source = make_dataset(session, n_train=2, name="two")
        response = client.post(
            f"/datasets/{source.id}/rejected-answers", data={"model": "broken"}, follow_redirects=False
        )
        assert response.status_code == 303
        task_id = response.headers["location"].rsplit("/", 1)[1]
        task = app.state.rejected_answers.join(task_id, timeout=60)
        assert task.status == "failed" and task.written == 0 and task.message
        page = client.get(f"/rejected-answers/{task_id}").text
        assert "Failed: 0 pairs written." in page and "flash-error" in page
    finally:
        client.__exit__(None, None, None)
