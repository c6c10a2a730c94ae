"""The dataset pages: list, create/rename/delete/duplicate, the example list with filters, bulk actions, import."""

from __future__ import annotations

import json
import re

import httpx
from sqlmodel import Session

from app.datasets.datasets import create_dataset, get_dataset
from app.datasets.examples import add_example, list_examples
from tests.conftest import API_KEY, FIXTURES

HX = {"HX-Request": "true"}


def chat(text: str, answer: str = "ok") -> dict:
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]}


def test_create_from_the_list_page_opens_the_new_dataset(client):
    response = client.post("/datasets", data={"name": "support", "description": "first try"}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "support" in page.text and "first try" in page.text
    assert 'href="/datasets/1/report"' in page.text and 'href="/jobs/new?dataset_id=1"' in page.text
    listing = client.get("/datasets").text
    assert 'href="/datasets/1"' in listing


def test_htmx_create_redirects_and_blank_name_shows_a_flash(client):
    ok = client.post("/datasets", data={"name": "x"}, headers=HX)
    assert ok.headers["HX-Redirect"] == "/datasets/1"
    refused = client.post("/datasets", data={"name": " "}, headers=HX)
    assert refused.status_code == 400 and refused.headers["HX-Retarget"] == "#flash"
    assert "needs a name" in refused.text


def test_list_shows_counts_and_rename_duplicate_delete_work_without_reload(client, session):
    dataset = create_dataset(session, "alpha")
    add_example(session, dataset.id, chat("q1"), split="train")
    add_example(session, dataset.id, {"messages": [{"role": "user", "content": "no answer"}]})
    listing = client.get("/datasets", headers=HX).text
    assert listing.startswith('<div id="datasets-list"')
    row = re.search(r'<tr id="dataset-1">.*?</tr>', listing, re.S).group(0)
    assert re.findall(r"<td>(\d+)</td>", row)[:3] == ["2", "1", "0"] and "invalid" in row
    renamed = client.post("/datasets/1/rename", data={"name": "beta"}, headers=HX)
    assert "beta" in renamed.text and renamed.text.startswith('<div id="datasets-list"')
    copied = client.post("/datasets/1/duplicate", headers={**HX, "HX-Current-URL": "http://t/datasets"})
    assert "beta (copy)" in copied.text
    assert list_examples(session, 2).total == 2
    confirm = client.get("/datasets/1/delete")
    assert "cannot be undone" in confirm.text and "2 examples" in confirm.text
    deleted = client.post("/datasets/1/delete", headers={**HX, "HX-Current-URL": "http://t/datasets"})
    assert "beta (copy)" in deleted.text and 'id="dataset-1"' not in deleted.text
    assert client.get("/datasets/1").status_code == 404


def test_dataset_page_pages_fifty_at_a_time_and_filters(client, session):
    dataset = create_dataset(session, "many")
    for i in range(120):
        add_example(session, dataset.id, chat(f"Question number {i}"), split="train" if i < 100 else None)
    first = client.get(f"/datasets/{dataset.id}").text
    assert first.count('name="ids"') == 50 and "1–50 of 120" in first
    third = client.get(f"/datasets/{dataset.id}?offset=100", headers=HX).text
    assert third.startswith('<div id="dataset-body"') and third.count('name="ids"') == 20
    assert "question number 119" in third.lower()
    searched = client.get(f"/datasets/{dataset.id}?q=number+11", headers=HX).text
    assert searched.count('name="ids"') == 11  # 11, 110..119
    no_split = client.get(f"/datasets/{dataset.id}?split=none", headers=HX).text
    assert no_split.count('name="ids"') == 20


def test_user_text_is_escaped_on_the_dataset_page(client, session):
    dataset = create_dataset(session, "<b>bold</b>")
    add_example(session, dataset.id, chat("<script>alert(1)</script>"))
    html = client.get(f"/datasets/{dataset.id}").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html


def test_bulk_actions_delete_set_split_and_copy(client, session):
    dataset = create_dataset(session, "src")
    target = create_dataset(session, "dst")
    ids = [add_example(session, dataset.id, chat(f"q{i}")).id for i in range(4)]
    body = client.post(
        f"/datasets/{dataset.id}/bulk",
        data={"action": "split", "ids": ids[:2], "target_split": "validation"},
        headers=HX,
    ).text
    assert "Set the split of 2 examples to validation" in body
    assert list_examples(session, dataset.id, split="validation").total == 2
    copied = client.post(
        f"/datasets/{dataset.id}/bulk",
        data={"action": "copy", "ids": ids[1:3], "target_dataset": target.id},
        headers=HX,
    ).text
    assert "Copied 2 examples" in copied
    assert [e.messages[0]["content"] for e in list_examples(session, target.id).items] == ["q1", "q2"]
    client.post(f"/datasets/{dataset.id}/bulk", data={"action": "delete", "ids": ids[:3]}, headers=HX)
    assert [e.id for e in list_examples(session, dataset.id).items] == [ids[3]]
    nothing = client.post(f"/datasets/{dataset.id}/bulk", data={"action": "delete"}, headers=HX)
    assert nothing.status_code == 400 and "Select at least one" in nothing.text


def test_split_randomly_is_reproducible_for_a_seed(client, session):
    dataset = create_dataset(session, "s")
    for i in range(40):
        add_example(session, dataset.id, chat(f"q{i}"))

    def validation_ids(seed):
        client.post(f"/datasets/{dataset.id}/split", data={"percent": "25", "seed": seed}, headers=HX)
        session.expire_all()
        return [e.id for e in list_examples(session, dataset.id, split="validation", limit=100).items]

    first = validation_ids("7")
    assert len(first) == 10
    assert validation_ids("7") == first
    assert validation_ids("8") != first
    assert list_examples(session, dataset.id, split="train").total == 30
    bad = client.post(f"/datasets/{dataset.id}/split", data={"percent": "120", "seed": "1"}, headers=HX)
    assert bad.status_code == 400 and "between 0 and 100" in bad.text


def test_page_import_lists_rejected_lines_and_offers_their_raw_text(client, session):
    dataset = create_dataset(session, "imp")
    data = json.dumps(chat("hi")).encode() + b"\n{oops\n\xff\xfe\n"
    result = client.post(f"/datasets/{dataset.id}/import", files={"file": ("x.jsonl", data)}, headers=HX)
    assert result.status_code == 200
    assert "Imported 1 example." in result.text
    assert "invalid_json" in result.text and "invalid_utf8" in result.text
    link = re.search(r'href="(/datasets/\d+/imports/[0-9a-f]+/rejected)"', result.text).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.content == b"{oops\n\xff\xfe\n"
    assert client.get(f"/datasets/{dataset.id}/imports/../../etc/rejected").status_code == 404
    plain = client.post(f"/datasets/{dataset.id}/import", files={"file": ("x.jsonl", data)})
    assert "Imported 1 example." in plain.text and "<html" in plain.text


def test_export_link_downloads_jsonl(client, session):
    dataset = create_dataset(session, "Mon set")
    add_example(session, dataset.id, chat("hi"), split="train")
    response = client.get(f"/datasets/{dataset.id}/export?split=train")
    assert response.headers["content-type"].startswith("application/jsonl")
    assert 'filename="mon-set-train.jsonl"' in response.headers["content-disposition"]
    assert json.loads(response.text) == chat("hi")


def test_import_and_export_over_real_http(live_server, settings, engine):
    with Session(engine) as session:
        dataset_id = create_dataset(session, "live").id
    headers = {"Authorization": f"Bearer {API_KEY}"}
    original = (FIXTURES / "toy_chat_fine_tuning.jsonl").read_bytes()
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
        imported = http.post(f"/api/datasets/{dataset_id}/import", files={"file": ("toy.jsonl", original)}).json()
        assert imported == {
            "imported": 5,
            "rejected": [],
            "rejected_count": 0,
            "rejected_url": None,
            "rejected_raw_url": None,
        }
        with http.stream("GET", f"/api/datasets/{dataset_id}/export?only_valid=false") as response:
            lines = list(response.iter_lines())
    assert [json.loads(t) for t in lines] == [json.loads(t) for t in original.decode().splitlines()]
    with Session(engine) as session:
        assert get_dataset(session, dataset_id).name == "live"
