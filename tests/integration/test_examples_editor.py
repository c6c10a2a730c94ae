"""The example editor: one row per message, lossless form round trip, live checks, stale saves refused."""

from __future__ import annotations

import json
import re

import pytest

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example, get_example, list_examples, record_from_form
from app.datasets.forms import editor_rows, top_level_texts
from app.errors import Invalid
from tests.conftest import FIXTURES

HX = {"HX-Request": "true"}


def form_of(record: dict) -> dict:
    """The fields the editor page would post for this record, untouched."""
    rows = editor_rows(record)
    texts = top_level_texts(record)
    return {
        "msg_role": [r["role"] for r in rows],
        "msg_content": [r["content"] for r in rows],
        "msg_kind": [r["kind"] for r in rows],
        "msg_weight": [r["weight"] for r in rows],
        "msg_tool_calls": [r["tool_calls"] for r in rows],
        "msg_more": [r["more"] for r in rows],
        "tools": texts["tools"],
        "extra": texts["extra"],
    }


def all_fixture_records():
    for name in (
        "toy_chat_fine_tuning.jsonl",
        "weighted_multiturn_marv.jsonl",
        "daneel_shop_tools_validation_set.jsonl",
    ):
        for text in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            yield json.loads(text)


def test_editor_form_round_trips_every_real_example_unchanged():
    odd = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "bob"},
            {
                "role": "assistant",
                "content": None,
                "weight": 0.5,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1"},
        ],
        "tools": None,
        "parallel_tool_calls": False,
    }
    for record in [*all_fixture_records(), odd]:
        assert record_from_form(form_of(record)) == record


def test_broken_json_box_names_the_message_and_the_field():
    form = form_of({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    form["msg_tool_calls"][1] = '[{"id": 1,'
    with pytest.raises(Invalid) as caught:
        record_from_form(form)
    assert caught.value.param == "messages[1].tool_calls"
    assert caught.value.message.startswith("Message 2: tool_calls is not valid JSON")
    form["msg_tool_calls"][1] = ""
    form["tools"] = '{"not": "a list"}'
    with pytest.raises(Invalid, match="Tools must be a list"):
        record_from_form(form)


@pytest.fixture
def example(session):
    dataset = create_dataset(session, "ed")
    record = next(r for r in all_fixture_records() if any("tool_calls" in m for m in r["messages"]))
    return add_example(
        session,
        dataset.id,
        {**record, "messages": [{"role": "system", "content": "\nstarts with a newline"}, *record["messages"][1:]]},
    )


def test_editor_page_shows_one_row_per_message_with_its_controls(client, example):
    html = client.get(f"/examples/{example.id}").text
    assert html.count('class="message-row"') == len(example.messages) + 1  # + the hidden row template
    assert html.count('name="msg_role"') == len(example.messages) + 1
    assert 'name="msg_tool_calls"' in html and 'name="tools"' in html
    assert f'name="version" value="{example.version}"' in html
    assert "<textarea" in html and "\n\nstarts with a newline</textarea>" in html
    assert "/static/editor.js" in html and "<script>" not in html


def test_saving_from_the_editor_bumps_the_version(client, session, example):
    form = form_of(example.to_record())
    form["msg_content"][1] = "changed question"
    response = client.post(
        f"/examples/{example.id}", data={**form, "version": "1", "split": "train", "note": "checked"}, headers=HX
    )
    assert response.status_code == 200 and "Saved (version 2)" in response.text
    session.expire_all()
    saved = get_example(session, example.id)
    assert saved.messages[1]["content"] == "changed question"
    assert (saved.version, saved.split, saved.note) == (2, "train", "checked")
    assert saved.tools == example.tools


def test_stale_save_shows_a_conflict_and_changes_nothing(client, session, example):
    form = form_of(example.to_record())
    client.post(f"/examples/{example.id}", data={**form, "version": "1"}, headers=HX)
    form["msg_content"][1] = "my careful edit"
    stale = client.post(f"/examples/{example.id}", data={**form, "version": "1"}, headers=HX)
    assert stale.status_code == 409
    assert stale.headers["HX-Retarget"] == "#flash"  # the editor (and the person's text) is not replaced
    assert "changed elsewhere" in stale.text and "still in the editor" in stale.text
    session.expire_all()
    assert get_example(session, example.id).messages[1]["content"] != "my careful edit"


def test_invalid_json_save_is_refused_with_a_clear_message(client, example):
    form = form_of(example.to_record())
    form["tools"] = "[{"
    response = client.post(f"/examples/{example.id}", data={**form, "version": "1"}, headers=HX)
    assert response.status_code == 400 and "Tools is not valid JSON" in response.text


def test_live_check_points_problems_at_their_message_and_counts_tokens(client, example):
    form = form_of({"messages": [{"role": "user", "content": "hello"}, {"role": "wizard", "content": "x"}]})
    html = client.post(f"/examples/{example.id}/check", data=form, headers=HX).text
    assert 'data-message-index="1"' in html and "Message 2 has role" in html
    assert "Message 2: Message 2" not in html and "<strong>Message 2:</strong> Message 2" not in html
    assert "Tokens:" in html
    form["msg_more"][0] = "{bad"
    broken = client.post(f"/datasets/{example.dataset_id}/examples/check", data=form, headers=HX).text
    assert 'data-message-index="0"' in broken and "other fields is not valid JSON" in broken


def test_live_check_names_each_message_once_and_prefixes_messages_that_do_not(client, example):
    """Issue #17: "Message 1: Message 1 has empty content" said the message twice."""
    form = form_of({"messages": [{"role": "user", "content": " "}, {"role": "user", "content": "x"}]})
    html = client.post(f"/examples/{example.id}/check", data=form, headers=HX).text
    assert "Message 1 has empty content" in html and "Message 1:</strong> Message 1" not in html
    assert "Message 2:</strong> Messages 1 and 2" not in html
    assert "<strong>Message 2:</strong> The last message is not" in html


def test_new_example_duplicate_and_delete(client, session, example):
    page = client.get(f"/datasets/{example.dataset_id}/examples/new").text
    assert page.count('name="msg_role"') == 4 and "Create example" in page
    form = form_of({"messages": [{"role": "user", "content": "new q"}, {"role": "assistant", "content": "new a"}]})
    created = client.post(f"/datasets/{example.dataset_id}/examples", data=form, headers=HX)
    new_id = int(re.fullmatch(r"/examples/(\d+)", created.headers["HX-Redirect"]).group(1))
    assert get_example(session, new_id).messages[0]["content"] == "new q"
    copy = client.post(f"/examples/{example.id}/duplicate", headers=HX)
    copy_id = int(copy.headers["HX-Redirect"].rsplit("/", 1)[1])
    order = [e.id for e in list_examples(session, example.dataset_id).items]
    assert order == [example.id, copy_id, new_id]
    gone = client.post(f"/examples/{example.id}/delete", headers=HX)
    assert gone.headers["HX-Redirect"] == f"/datasets/{example.dataset_id}"
    assert client.get(f"/examples/{example.id}").status_code == 404
