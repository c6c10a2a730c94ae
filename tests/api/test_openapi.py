"""The served OpenAPI document tells the truth about errors and links (the fuzzer checks the answers themselves)."""

from __future__ import annotations

import pytest

from app.web.openapi import LINKS


@pytest.fixture
def schema(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_api_and_v1_operation_declares_its_errors_in_that_path_s_shape(schema):
    for path, method, operation in _operations(schema):
        if not path.startswith(("/api/", "/v1/")):
            continue
        shape = "OpenAIError" if path.startswith("/v1/") else "ApiError"
        for status in ("401", "4XX", "5XX"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": f"#/components/schemas/{shape}"}, (method, path, status)
        # FastAPI's own 422 body is never sent: /api's 422 is an ApiError, /v1 answers 400.
        assert "422" not in operation["responses"], (method, path)


def test_no_operation_refers_to_fastapi_s_validation_error_body(schema):
    assert "HTTPValidationError" not in str(schema)


def test_error_shapes_match_what_the_api_sends(api, schema):
    api_error = api.get("/api/datasets/999").json()
    assert set(api_error) <= set(schema["components"]["schemas"]["ApiError"]["properties"])
    v1_error = api.get("/v1/files/file-missing").json()
    assert set(v1_error["error"]) == set(
        schema["components"]["schemas"]["OpenAIError"]["properties"]["error"]["required"]
    )


def test_every_link_leads_to_an_operation_of_the_document(schema):
    declared = 0
    for _, _, operation in _operations(schema):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                path, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
                assert method in schema["paths"][path.replace("~1", "/").replace("~0", "~")]
                declared += 1
    assert declared == sum(len(targets) for targets in LINKS.values())


def test_ids_and_offsets_carry_their_bounds(schema):
    parameters = {
        p["name"]: p["schema"] for p in schema["paths"]["/api/datasets/{dataset_id}/examples"]["get"]["parameters"]
    }
    assert parameters["dataset_id"]["maximum"] == 2**63 - 1 and parameters["dataset_id"]["minimum"] == 1
    assert parameters["offset"]["maximum"] == 2**63 - 1
