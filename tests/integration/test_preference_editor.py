"""The editor for a preference pair: the shared conversation as message rows, the two answers side by side, a
lossless form round trip, live validation with the pair's rules, and add / save / delete through the pages."""

from __future__ import annotations

import io
import json
import re

import pytest
from sqlmodel import select

from app.datasets.datasets import create_dataset
from app.datasets.examples import get_example, list_examples, record_from_form, split_randomly
from app.datasets.exporter import export_jsonl
from app.datasets.forms import editor_rows, top_level_texts
from app.datasets.importer import import_jsonl
from app.datasets.pair_forms import answer_boxes, conversation_of
from app.datasets.validation import count_tokens
from app.datasets.validation.preference import chat_views
from app.tables.dataset import PREFERENCE, Dataset
from tests.conftest import FIXTURES

HX = {"HX-Request": "true"}
SAMPLE = (FIXTURES / "dpo_signoff.jsonl").read_bytes()
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def form_of(record: dict) -> dict:
    """The fields the editor page posts for this pair, untouched."""
    chat = conversation_of(record)
    rows, texts = editor_rows(chat), top_level_texts(chat)
    form = {
        "kind": "preference",
        "msg_role": [r["role"] for r in rows],
        "msg_content": [r["content"] for r in rows],
        "msg_kind": [r["kind"] for r in rows],
        "msg_weight": [r["weight"] for r in rows],
        "msg_tool_calls": [r["tool_calls"] for r in rows],
        "msg_more": [r["more"] for r in rows],
        "tools": texts["tools"],
        "extra": texts["extra"],
    }
    for box in answer_boxes(record):
        form[f"{box['prefix']}_content"] = box["content"]
        form[f"{box['prefix']}_tool_calls"] = box["tool_calls"]
    return form


def test_the_form_round_trips_pairs_unchanged():
    odd = {
        "input": {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "bob"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        "preferred_output": [{"role": "assistant", "tool_calls": [CALL]}],
        "non_preferred_output": [{"role": "assistant", "content": "no\nidea"}],
        "metadata": {"from": "playground"},
    }
    for record in [*(json.loads(t) for t in SAMPLE.decode().splitlines()), odd]:
        assert record_from_form(form_of(record)) == record


@pytest.fixture
def pair(session):
    dataset = create_dataset(session, "pairs", kind=PREFERENCE)
    import_jsonl(session, dataset.id, io.BytesIO(SAMPLE), filename="dpo.jsonl")
    return list_examples(session, dataset.id).items[0]


def test_the_editor_shows_the_conversation_and_both_answers_side_by_side(client, pair):
    html = client.get(f"/examples/{pair.id}").text
    assert 'name="kind" value="preference"' in html and 'class="pair-answers"' in html
    # system and user (and the new-row template): the answers are not message rows
    assert html.count('name="msg_role"') == 3
    preferred = re.search(r'name="preferred_content"[^>]*>\n(.*?)</textarea>', html, re.S).group(1)
    rejected = re.search(r'name="rejected_content"[^>]*>\n(.*?)</textarea>', html, re.S).group(1)
    assert preferred == "The capital of France is Paris. Best wishes, Tuneboard" and rejected == "paris"
    assert "Imported from line 1 of dpo.jsonl" in html


def test_saving_an_edited_answer_keeps_a_pair_and_bumps_the_version(client, session, pair):
    form = form_of(pair.to_record())
    form["rejected_content"] = "Paris, I think."
    response = client.post(f"/examples/{pair.id}", data={**form, "version": "1"}, headers=HX)
    assert response.status_code == 200 and "Saved (version 2)" in response.text
    session.expire_all()
    saved = get_example(session, pair.id)
    assert saved.non_preferred_output == [{"role": "assistant", "content": "Paris, I think."}]
    assert saved.messages == pair.messages and saved.valid


def test_the_live_check_applies_the_pair_rules_and_counts_both_sequences(client, pair):
    form = form_of(pair.to_record())
    html = client.post(f"/examples/{pair.id}/check", data=form, headers=HX).text
    assert "No problems found" in html
    total = int(re.search(r"Tokens: ([\d,]+) in all", html).group(1).replace(",", ""))
    form["msg_role"] = [*form["msg_role"], "assistant"]
    for key, value in (("msg_content", "Hm."), ("msg_kind", "text"), ("msg_weight", ""), ("msg_tool_calls", "")):
        form[key] = [*form[key], value]
    form["msg_more"] = [*form["msg_more"], ""]
    form["preferred_content"] = ""
    html = client.post(f"/examples/{pair.id}/check", data=form, headers=HX).text
    assert "input_last_message_not_user" in html and "preference_output_missing_content" in html
    assert total > 40  # the input counted with each answer


def test_a_new_pair_is_added_from_a_blank_editor_and_deleted_again(client, session, pair):
    page = client.get(f"/datasets/{pair.dataset_id}/examples/new").text
    assert 'name="preferred_content"' in page and page.count('name="msg_role"') == 3
    form = {
        "kind": "preference",
        "msg_role": ["user"],
        "msg_content": ["Say hi."],
        "msg_kind": ["text"],
        "msg_weight": [""],
        "msg_tool_calls": [""],
        "msg_more": [""],
        "preferred_content": "Hi! Best wishes, Tuneboard",
        "rejected_content": "hi",
    }
    created = client.post(f"/datasets/{pair.dataset_id}/examples", data=form, follow_redirects=False)
    assert created.status_code in (303, 200)
    session.expire_all()
    items = list_examples(session, pair.dataset_id).items
    new = items[-1]
    assert len(items) == 7 and new.valid and new.preferred_output[0]["content"].startswith("Hi!")
    deleted = client.post(f"/examples/{new.id}/delete", follow_redirects=False)
    assert deleted.status_code in (303, 200)
    session.expire_all()
    assert list_examples(session, pair.dataset_id).total == 6


def test_a_chat_example_is_refused_in_a_preference_dataset(client, pair):
    form = {"msg_role": ["user", "assistant"], "msg_content": ["q", "a"], "msg_kind": ["text", "text"]}
    response = client.post(f"/datasets/{pair.dataset_id}/examples", data=form, headers=HX)
    assert response.status_code == 400 and "preference pairs" in response.text


def test_the_dataset_pages_show_the_kind_and_the_preferred_answer(client, pair):
    listing = client.get("/datasets").text
    assert "kind-preference" in listing and 'name="kind"' in listing
    page = client.get(f"/datasets/{pair.dataset_id}").text
    assert "preference (DPO)" in page and "✓ The capital of France is Paris" in page
    assert client.get(f"/datasets/{pair.dataset_id}/report").status_code == 200
    found = client.get(f"/datasets/{pair.dataset_id}?q=best+wishes").text
    assert found.count('class="preview-user"') == 6


def test_the_new_dataset_form_makes_a_preference_dataset(client):
    response = client.post("/datasets", data={"name": "prefs", "kind": "preference"}, follow_redirects=True)
    assert "preference (DPO)" in response.text and "examples/new" in response.text


def test_the_api_creates_lists_and_fills_a_preference_dataset(api):
    made = api.post("/api/datasets", json={"name": "api pairs", "kind": "preference"})
    assert made.status_code == 201 and made.json()["kind"] == "preference"
    dataset_id = made.json()["id"]
    pair = json.loads(SAMPLE.splitlines()[0])
    added = api.post(f"/api/datasets/{dataset_id}/examples", json={**pair, "split": "train"})
    assert added.status_code == 201, added.text
    assert added.json()["preferred_output"] == pair["preferred_output"] and added.json()["valid"]
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    refused = api.post(f"/api/datasets/{dataset_id}/examples", json=chat)
    assert refused.status_code == 400 and "preference pairs" in refused.text
    assert [d["kind"] for d in api.get("/api/datasets").json()] == ["preference"]
    assert api.post("/api/datasets", json={"name": "x"}).json()["kind"] == "supervised"
    exported = api.get(f"/api/datasets/{dataset_id}/export").text
    assert json.loads(exported) == pair


def test_a_v1_files_upload_of_pairs_makes_a_preference_dataset(api, session):
    chat = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    files = {"file": ("dpo.jsonl", SAMPLE + chat)}
    created = api.post("/v1/files", data={"purpose": "fine-tune"}, files=files).json()
    assert created["status"] == "processed" and "line 7" in created["status_details"]
    [dataset] = session.exec(select(Dataset)).all()
    assert dataset.kind == PREFERENCE


def test_the_report_counts_each_pair_as_its_input_with_each_answer(api, session, pair):
    records = [json.loads(t) for t in SAMPLE.decode().splitlines()]
    expected = [sum(count_tokens(v).total for v in chat_views(r)) for r in records]
    body = api.get(f"/api/datasets/{pair.dataset_id}/report", params={"split": "all"}).json()
    assert body["n_examples"] == 6 and body["n_valid"] == 6 and body["errors"] == {}
    assert (body["tokens"]["min"], body["tokens"]["max"]) == (min(expected), max(expected))
    assert body["estimate"]["billing_tokens"] == sum(expected)


def test_a_random_split_and_a_split_export_keep_the_pairs(client, session, pair):
    counts = split_randomly(session, pair.dataset_id, 50, 1)
    assert counts == {"train": 3, "validation": 3}
    train = b"".join(export_jsonl(session, pair.dataset_id, "train")).decode().splitlines()
    validation = b"".join(export_jsonl(session, pair.dataset_id, "validation")).decode().splitlines()
    assert sorted(train + validation) == sorted(SAMPLE.decode().splitlines())


def test_the_dashboard_upload_of_pairs_says_the_dataset_now_holds_pairs(client, session):
    dataset = create_dataset(session, "fresh")
    files = {"file": ("dpo.jsonl", SAMPLE)}
    html = client.post(f"/datasets/{dataset.id}/import", files=files, headers=HX).text
    assert "Imported 6 examples" in html and "The file holds preference pairs" in html
    chat = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    refused = client.post(f"/datasets/{dataset.id}/import", files={"file": ("chat.jsonl", chat)}, headers=HX)
    assert refused.status_code == 400 and "This dataset holds preference pairs" in refused.text
