"""The API reference names every operation in words, not by its function's name ("Create", "Report Api")."""

from __future__ import annotations

from app.web.api_summaries import SUMMARIES, generated_summary


def test_every_api_operation_has_a_written_summary_and_a_description(client):
    spec = client.get("/openapi.json").json()
    operations = [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 40
    for method, path, op in operations:
        assert op["summary"] != generated_summary(op, path, method), (method, path, op["summary"])
        assert op["summary"] == SUMMARIES[(method, path)] or (method, path) not in SUMMARIES
        assert op.get("description"), (method, path)
    by_path = {(m, p): op["summary"] for m, p, op in operations}
    assert by_path[("post", "/api/jobs")] == "Launch a fine-tuning job"
    assert by_path[("get", "/api/datasets/{dataset_id}/report")] == "Get a dataset's validation report"


def test_the_summary_table_names_only_operations_that_exist(client):
    spec = client.get("/openapi.json").json()
    known = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert set(SUMMARIES) <= known


def test_the_generated_summary_is_recognised():
    op = {"operationId": "report_api_api_datasets__dataset_id__report_get"}
    assert generated_summary(op, "/api/datasets/{dataset_id}/report", "get") == "Report Api"
