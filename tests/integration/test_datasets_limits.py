"""Hostile and careless input to imports, the editor, /api and /v1/files: bounded memory, clear refusals, no 500.

Issue #15: rejected lines all held in memory and returned; no size limits (a 50 MB line, a 20 MB example);
`1e400` stored and exported as `Infinity`; a CSV cell over 128 KB, 100,000-deep JSON in the editor and a
version of `²` answered with server errors.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.datasets.rejections import SAMPLE
from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, make_settings
from tests.integration.test_examples_editor import form_of

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
HX = {"HX-Request": "true"}


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def chat(*contents: str) -> dict:
    roles = ["user", "assistant"]
    return {"messages": [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]}


def make(api, name="limits") -> int:
    return api.post("/api/datasets", json={"name": name}).json()["id"]


def upload(api, dataset_id: int, data: bytes, name: str = "d.jsonl", **params):
    response = api.post(f"/api/datasets/{dataset_id}/import", params=params, files={"file": (name, data)})
    assert response.status_code == 200, response.text[:300]
    return response.json()


@pytest.fixture
def small_limits(tmp_path):
    """An app with tiny limits, so that tests need no megabytes, and an API client for it."""
    settings = make_settings(
        tmp_path / "data", max_line_bytes=1000, max_example_bytes=600, max_message_chars=300, max_upload_bytes=20_000
    )
    upgrade(settings)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


# -- rejected lines: counted, a sample returned, all of them in the downloads --------------------------------


def test_an_import_returns_a_bounded_sample_and_lists_every_rejected_line_in_a_download(api):
    dataset_id = make(api)
    n = SAMPLE * 3
    data = line(CHAT) + b"x\n" * n + line(CHAT)
    result = upload(api, dataset_id, data)
    assert result["imported"] == 2 and result["rejected_count"] == n
    assert len(result["rejected"]) == SAMPLE
    assert [r["line"] for r in result["rejected"]] == list(range(2, SAMPLE + 2))
    listed = [json.loads(t) for t in api.get(result["rejected_url"]).text.splitlines()]
    assert [r["line"] for r in listed] == list(range(2, n + 2))
    assert all(r["code"] == "invalid_json" and "not valid JSON" in r["message"] for r in listed)
    assert listed[:SAMPLE] == result["rejected"]
    assert api.get(result["rejected_raw_url"]).content == b"x\n" * n


def test_the_page_shows_the_count_and_links_both_downloads(client, api):
    dataset_id = make(api)
    response = client.post(f"/datasets/{dataset_id}/import", files={"file": ("d.jsonl", b"x\n" * 1500)}, headers=HX)
    assert "1,500 lines rejected" in response.text
    assert "The first 200 are listed" in response.text
    reasons = client.get(
        next(p for p in response.text.split('"') if p.startswith(f"/datasets/{dataset_id}/imports/") and "reasons" in p)
    )
    assert reasons.status_code == 200 and len(reasons.text.splitlines()) == 1500


def test_a_failed_import_leaves_no_rejection_files(api, settings):
    dataset_id = make(api)
    response = api.post(
        f"/api/datasets/{dataset_id}/import", params={"format": "csv"}, files={"file": ("d.csv", b"a,b\nx\n")}
    )
    assert response.status_code == 400 and response.json()["code"] == "csv_missing_header"
    assert not list((settings.data_dir / "imports").glob("**/*.*"))


def test_rejection_downloads_of_an_unknown_import_are_404(api):
    dataset_id = make(api)
    for suffix in ("", "/raw"):
        response = api.get(f"/api/datasets/{dataset_id}/imports/0123456789abcdef/rejected{suffix}")
        assert response.status_code == 404 and response.json()["code"] == "import_not_found"
    assert api.get(f"/api/datasets/{dataset_id}/imports/..%2f..%2fx/rejected").status_code == 404


# -- size limits ---------------------------------------------------------------------------------------------


def test_default_limits_reject_a_long_line_a_large_example_and_a_long_message_by_line(api):
    dataset_id = make(api)
    long_line = line(chat("q", "a" * 3_000_000))  # 3 MB: over max_line_bytes (2 MiB)
    large = line(chat(*["b" * 200_000] * 6))  # 1.2 MB: under the line limit, over max_example_bytes (1 MiB)
    long_message = line(chat("c" * 300_000, "ok"))  # over max_message_chars (256,000)
    result = upload(api, dataset_id, line(CHAT) + long_line + large + long_message + line(CHAT))
    assert result["imported"] == 2
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [
        (2, "line_too_long"),
        (3, "example_too_large"),
        (4, "message_too_long"),
    ]
    messages = [r["message"] for r in result["rejected"]]
    assert "2,097,152 bytes" in messages[0] and "max_line_bytes" in messages[0]
    assert "1,048,576" in messages[1] and "max_example_bytes" in messages[1]
    assert "Message 1 has 300,000 characters" in messages[2] and "max_message_chars" in messages[2]
    # The long line is never held whole, yet its bytes are kept for download, exactly.
    assert api.get(result["rejected_raw_url"]).content == long_line + large + long_message


def test_a_line_over_the_limit_is_rejected_wherever_the_upload_cuts_it(small_limits):
    api = small_limits
    dataset_id = make(api)
    good = line(chat("q", "a"))
    data = good + b'{"messages": "' + b"z" * 5000 + b'"}\n' + good + b"y" * 1500
    result = upload(api, dataset_id, data)
    assert result["imported"] == 2
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(2, "line_too_long"), (4, "line_too_long")]
    assert "1,000 bytes" in result["rejected"][0]["message"]


def test_limits_set_by_settings_apply_to_examples_and_messages(small_limits):
    api = small_limits
    dataset_id = make(api)
    result = upload(api, dataset_id, line(chat("q" * 301, "a")) + line(chat("q" * 250, "a" * 250, "b")))
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(1, "message_too_long"), (2, "example_too_large")]


def test_the_api_and_the_editor_refuse_over_limit_examples_naming_the_field(api, client):
    dataset_id = make(api)
    created = api.post(f"/api/datasets/{dataset_id}/examples", json=CHAT).json()
    too_long = api.post(f"/api/datasets/{dataset_id}/examples", json=chat("x" * 300_000, "ok"))
    assert too_long.status_code == 400
    assert too_long.json()["param"] == "messages[0].content" and too_long.json()["code"] == "message_too_long"
    too_large = api.put(f"/api/examples/{created['id']}", json={**chat(*["y" * 200_000] * 6), "version": 1})
    assert too_large.status_code == 400 and too_large.json()["code"] == "example_too_large"
    assert "max_example_bytes" in too_large.json()["detail"]
    form = {**form_of(chat("q", "z" * 300_000)), "version": "1"}
    saved = client.post(f"/examples/{created['id']}", data=form, headers=HX)
    assert saved.status_code == 400 and "Message 2 has 300,000 characters" in saved.text
    checked = client.post(f"/examples/{created['id']}/check", data=form, headers=HX)
    assert checked.status_code == 200 and 'data-param="messages[1].content"' in checked.text
    assert api.get(f"/api/examples/{created['id']}").json()["version"] == 1


def test_an_upload_over_max_upload_bytes_is_refused_with_413(small_limits):
    api = small_limits
    dataset_id = make(api)
    body = line(chat("q", "a")) * 2000  # ~80 kB, over 20,000 bytes (plus the form's allowance)
    for response in (
        api.post(f"/api/datasets/{dataset_id}/import", files={"file": ("big.jsonl", body * 20)}),
        api.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("big.jsonl", body * 20)}),
    ):
        assert response.status_code == 413
        assert "max_upload_bytes" in response.text
    assert api.get("/v1/files").json()["data"] == []
    assert api.get(f"/api/datasets/{dataset_id}").json()["counts"]["examples"] == 0


def test_a_file_over_max_upload_bytes_within_the_form_allowance_is_refused_by_the_import(small_limits):
    api = small_limits
    dataset_id = make(api)
    response = api.post(f"/api/datasets/{dataset_id}/import", files={"file": ("big.jsonl", b"x\n" * 15_000)})
    assert response.status_code == 400 and response.json()["code"] == "file_too_large"
    files = api.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("big.jsonl", b"x\n" * 15_000)})
    assert files.status_code == 400 and files.json()["error"]["code"] == "file_too_large"


def test_v1_files_apply_the_line_limits_and_say_which_line(small_limits):
    api = small_limits
    data = line(chat("q", "a")) + line(chat("q" * 400, "a"))
    created = api.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("t.jsonl", data)}).json()
    assert created["status"] == "processed"
    assert "rejected 1 lines: line 2: Message 1 has 400 characters" in created["status_details"]


# -- numbers JSON cannot carry -------------------------------------------------------------------------------


def test_non_finite_numbers_are_rejected_at_import_and_never_exported(api):
    dataset_id = make(api)
    lines = [
        b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "x": 1e400}',
        b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": NaN}]}',
        b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "y": -Infinity}',
    ]
    result = upload(api, dataset_id, b"\n".join(lines) + b"\n" + line(CHAT))
    assert result["imported"] == 1
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(n, "non_finite_number") for n in (1, 2, 3)]
    assert "1e400" in result["rejected"][0]["message"]
    exported = api.get(f"/api/datasets/{dataset_id}/export?only_valid=false").text
    assert [json.loads(t) for t in exported.splitlines()] == [CHAT]


def test_the_api_and_the_editor_refuse_non_finite_numbers(api, client):
    dataset_id = make(api)
    body = b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 1e400}]}'
    refused = api.post(
        f"/api/datasets/{dataset_id}/examples", content=body, headers={"content-type": "application/json"}
    )
    assert refused.status_code == 400 and refused.json()["param"] == "messages[1].weight"
    assert refused.json()["code"] == "non_finite_number"
    created = api.post(f"/api/datasets/{dataset_id}/examples", json=CHAT).json()
    form = {**form_of(CHAT), "extra": '{"score": 1e400}', "version": "1"}
    saved = client.post(f"/examples/{created['id']}", data=form, headers=HX)
    assert saved.status_code == 400 and "1e400" in saved.text
    assert api.get(f"/api/datasets/{dataset_id}").json()["counts"]["examples"] == 1


# -- server errors that become clear 4xx ------------------------------------------------------------------


def test_a_csv_cell_over_128_kb_imports_and_a_cell_over_the_line_limit_is_a_rejected_line(api):
    dataset_id = make(api)
    big = "b" * 200_000  # over the csv module's default field limit (131,072)
    huge = "h" * 1_500_000  # two lines of it: one cell over 2 MiB
    data = f'system,user,assistant\n,{big},ok\n,"{huge}\n{huge}",ok\n,after,ok\n'.encode()
    result = upload(api, dataset_id, data, "d.csv")
    assert result["imported"] == 2
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(3, "csv_unreadable")]
    assert "a cell is longer than" in result["rejected"][0]["message"]
    items = api.get(f"/api/datasets/{dataset_id}/examples").json()["items"]
    assert [i["messages"][0]["content"][:3] for i in items] == ["bbb", "aft"]


def test_a_csv_line_over_the_line_limit_is_rejected_by_number(small_limits):
    api = small_limits
    dataset_id = make(api)
    data = b"system,user,assistant\n,q,a\n," + b"w" * 2000 + b",a\n,q2,a2\n"
    result = upload(api, dataset_id, data, "d.csv")
    assert result["imported"] == 2
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(3, "line_too_long")]


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deep_json_in_the_editor_is_a_clear_400_not_a_server_error(api, client, depth):
    dataset_id = make(api)
    created = api.post(f"/api/datasets/{dataset_id}/examples", json=CHAT).json()
    deep = "[" * depth + "]" * depth
    form = {**form_of(CHAT), "extra": '{"deep": ' + deep + "}", "version": "1"}
    saved = client.post(f"/examples/{created['id']}", data=form, headers=HX)
    assert saved.status_code == 400 and "levels deep" in saved.text
    checked = client.post(f"/examples/{created['id']}/check", data=form, headers=HX)
    assert checked.status_code == 200 and "levels deep" in checked.text
    new = client.post(f"/datasets/{dataset_id}/examples", data=form, headers=HX)
    assert new.status_code == 400
    put = api.put(
        f"/api/examples/{created['id']}",
        content=('{"version": 1, "messages": [{"role": "user", "content": ' + deep + "}]}").encode(),
        headers={"content-type": "application/json"},
    )
    assert put.status_code == 400


@pytest.mark.parametrize("version", ["²", "١", "1.5", "-1"])
def test_an_editor_version_that_is_not_a_whole_number_is_a_400(api, client, version):
    dataset_id = make(api)
    created = api.post(f"/api/datasets/{dataset_id}/examples", json=CHAT).json()
    saved = client.post(f"/examples/{created['id']}", data={**form_of(CHAT), "version": version}, headers=HX)
    assert saved.status_code == 400 and "whole number" in saved.text
    assert api.get(f"/api/examples/{created['id']}").json()["version"] == 1
