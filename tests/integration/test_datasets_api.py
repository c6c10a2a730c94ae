"""The /api/datasets JSON API: shapes and status codes as documented, over the same services as the pages."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.conftest import API_KEY, FIXTURES

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def make(api, name="api-set") -> int:
    response = api.post("/api/datasets", json={"name": name})
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == name and isinstance(body["id"], int)
    return body["id"]


def test_dataset_crud_answers_with_documented_codes(api):
    dataset_id = make(api)
    listed = api.get("/api/datasets").json()
    assert [d["id"] for d in listed] == [dataset_id]
    assert listed[0]["counts"] == {"examples": 0, "train": 0, "validation": 0, "invalid": 0}
    patched = api.patch(f"/api/datasets/{dataset_id}", json={"name": "renamed", "description": "d"}).json()
    assert (patched["name"], patched["description"]) == ("renamed", "d")
    assert api.get(f"/api/datasets/{dataset_id}").json()["name"] == "renamed"
    assert api.delete(f"/api/datasets/{dataset_id}").status_code == 204
    missing = api.get(f"/api/datasets/{dataset_id}")
    assert missing.status_code == 404 and missing.json()["code"] == "dataset_not_found"


def test_blank_dataset_name_is_refused_with_a_clear_message(api):
    response = api.post("/api/datasets", json={"name": "   "})
    assert response.status_code == 400
    assert "needs a name" in response.json()["detail"]


def test_import_returns_imported_count_and_rejected_lines(api):
    dataset_id = make(api)
    data = (json.dumps(CHAT) + "\nnot json\n" + json.dumps({"prompt": "p", "completion": "c"}) + "\n").encode()
    response = api.post(f"/api/datasets/{dataset_id}/import", files={"file": ("d.jsonl", data)})
    assert response.status_code == 200
    body = response.json()
    assert body["imported"] == 2
    assert body["rejected"] == [{"line": 2, "code": "invalid_json", "message": body["rejected"][0]["message"]}]
    assert body["rejected_count"] == 1
    assert api.get(f"/api/datasets/{dataset_id}").json()["counts"]["examples"] == 2
    listed = api.get(body["rejected_url"])
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/jsonl")
    assert [json.loads(t) for t in listed.text.splitlines()] == body["rejected"]
    assert api.get(body["rejected_raw_url"]).content == b"not json\n"


def test_csv_import_through_the_api(api):
    dataset_id = make(api)
    data = b"system,user,assistant\nBe nice.,Hi,Hello\n"
    body = api.post(f"/api/datasets/{dataset_id}/import?format=csv", files={"file": ("d.csv", data)}).json()
    assert body == {"imported": 1, "rejected": [], "rejected_count": 0, "rejected_url": None, "rejected_raw_url": None}


def test_examples_list_filters_and_pages(api):
    dataset_id = make(api)
    for i in range(7):
        record = {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "ok"}]}
        split = "train" if i % 2 else "validation"
        assert api.post(f"/api/datasets/{dataset_id}/examples", json={**record, "split": split}).status_code == 201
    page = api.get(f"/api/datasets/{dataset_id}/examples?offset=2&limit=3").json()
    assert page["total"] == 7
    assert [item["messages"][0]["content"] for item in page["items"]] == ["question 2", "question 3", "question 4"]
    assert {"id", "messages", "split", "valid", "version"} <= set(page["items"][0])
    assert api.get(f"/api/datasets/{dataset_id}/examples?split=train").json()["total"] == 3
    found = api.get(f"/api/datasets/{dataset_id}/examples?q=QUESTION 5").json()
    assert [i["messages"][0]["content"] for i in found["items"]] == ["question 5"]
    assert api.get(f"/api/datasets/{dataset_id}/examples?q=100%25").json()["total"] == 0


def test_example_put_with_stale_version_is_refused_with_409(api):
    dataset_id = make(api)
    created = api.post(f"/api/datasets/{dataset_id}/examples", json={**CHAT, "tools": []}).json()
    assert created["version"] == 1 and created["tools"] == []
    changed = {"messages": [{"role": "user", "content": "changed"}, {"role": "assistant", "content": "yes"}]}
    updated = api.put(f"/api/examples/{created['id']}", json={**changed, "version": 1})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    stale = api.put(f"/api/examples/{created['id']}", json={**CHAT, "version": 1})
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version" and "changed elsewhere" in stale.json()["detail"]
    assert api.get(f"/api/examples/{created['id']}").json()["messages"] == changed["messages"]
    assert api.delete(f"/api/examples/{created['id']}").status_code == 204
    assert api.get(f"/api/examples/{created['id']}").status_code == 404


def test_invalid_example_is_stored_and_flagged(api):
    dataset_id = make(api)
    body = api.post(f"/api/datasets/{dataset_id}/examples", json={"messages": [{"role": "user", "content": "?"}]})
    assert body.status_code == 201
    assert body.json()["valid"] is False and body.json()["problems"]


def test_export_streams_application_jsonl_by_split(api):
    dataset_id = make(api)
    with (FIXTURES / "pirate_training_set.jsonl").open("rb") as f:
        api.post(f"/api/datasets/{dataset_id}/import", files={"file": ("p.jsonl", f)})
    ids = [e["id"] for e in api.get(f"/api/datasets/{dataset_id}/examples").json()["items"]]
    example = api.get(f"/api/examples/{ids[0]}").json()
    api.put(f"/api/examples/{ids[0]}", json={"messages": example["messages"], "version": 1, "split": "validation"})
    response = api.get(f"/api/datasets/{dataset_id}/export?split=validation")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jsonl")
    assert [json.loads(t) for t in response.text.splitlines()] == [{"messages": example["messages"]}]
    everything = api.get(f"/api/datasets/{dataset_id}/export").text.splitlines()
    original = (FIXTURES / "pirate_training_set.jsonl").read_text().splitlines()
    assert [json.loads(t) for t in everything] == [json.loads(t) for t in original]


def test_api_needs_the_bearer_key(app):
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/datasets").status_code == 401


def test_openapi_page_documents_the_dataset_api(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert {
        "/api/datasets",
        "/api/datasets/{dataset_id}",
        "/api/datasets/{dataset_id}/import",
        "/api/datasets/{dataset_id}/examples",
        "/api/examples/{example_id}",
        "/api/datasets/{dataset_id}/export",
    } <= set(paths)


def post_in_chunks(api, url: str, body: bytes, content_type: str, chunk: int) -> tuple[int, dict]:
    """POST `body` straight to the app, `chunk` bytes per ASGI message, as a server receives a slow upload."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {API_KEY}".encode()),
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    sent: list[dict] = []

    async def receive():
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def call():
        await api.app(scope, receive, send)

    api.portal.call(call)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def test_import_reads_a_multipart_upload_as_it_arrives_and_counts_lines_across_chunks(api):
    dataset_id = make(api)
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"question {i} " + "x" * 200},
                    {"role": "assistant", "content": "ok"},
                ]
            }
        )
        for i in range(6000)
    ]
    lines[4320] = "{not json"
    data = ("\r\n".join(lines) + "\r\n").encode()  # over a megabyte: several hand-overs to the importer
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nbefore\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
            f"Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        + data
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="after"\r\n\r\nlater\r\n--{boundary}--\r\n'
        ).encode()
    )
    status, result = post_in_chunks(
        api, f"/api/datasets/{dataset_id}/import", body, f"multipart/form-data; boundary={boundary}", chunk=7777
    )
    assert status == 200
    assert result["imported"] == 5999
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(4321, "invalid_json")]
    stored = api.get(f"/api/datasets/{dataset_id}/examples?offset=5998&limit=1").json()["items"]
    assert stored[0]["messages"][0]["content"].startswith("question 5999 ")


def test_import_without_a_file_field_is_refused_like_any_missing_field(api):
    dataset_id = make(api)
    wrong_name = api.post(f"/api/datasets/{dataset_id}/import", files={"upload": ("d.jsonl", b"{}\n")})
    not_multipart = api.post(
        f"/api/datasets/{dataset_id}/import", content=b"{}\n", headers={"content-type": "application/jsonl"}
    )
    for response in (wrong_name, not_multipart):
        assert response.status_code == 422
        assert response.json()["param"] == "file" and response.json()["details"][0]["loc"] == ["body", "file"]
    assert api.get(f"/api/datasets/{dataset_id}").json()["counts"]["examples"] == 0


def test_import_into_a_missing_dataset_is_404_even_with_a_file(api):
    response = api.post("/api/datasets/999999/import", files={"file": ("d.jsonl", json.dumps(CHAT).encode())})
    assert response.status_code == 404 and response.json()["code"] == "dataset_not_found"


def test_an_upload_that_ends_in_the_middle_of_the_file_imports_nothing(api):
    dataset_id = make(api)
    body = (
        b'--cut\r\nContent-Disposition: form-data; name="file"; filename="cut.jsonl"\r\n\r\n'
        + (json.dumps(CHAT) + "\n").encode() * 50
    )  # no closing boundary: the rest never came
    status, result = post_in_chunks(
        api, f"/api/datasets/{dataset_id}/import", body, "multipart/form-data; boundary=cut", chunk=1000
    )
    assert status == 422 and "ended in the middle" in result["detail"]
    assert api.get(f"/api/datasets/{dataset_id}").json()["counts"]["examples"] == 0
