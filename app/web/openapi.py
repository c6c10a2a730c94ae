"""The OpenAPI document of /api and /v1, true to what the routes answer: error shapes, links between operations."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.web.api_summaries import name_operations

# The error bodies app/web/http_errors.py writes: `{"detail", "code"}` on /api (`param` names the field, `details`
# lists every validation error or carries a refusal's data), OpenAI's own shape on /v1.
API_ERROR = {
    "title": "ApiError",
    "type": "object",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in words."},
        "code": {"type": ["string", "null"], "description": "A stable code, e.g. dataset_not_found."},
        "param": {"type": "string", "description": "The field at fault, when there is one."},
        "details": {"description": "Every validation error (a list), or the data of a refusal."},
    },
}
OPENAI_ERROR = {
    "title": "OpenAIError",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "description": "invalid_request_error, permission_error, server_error…"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
# What every operation of /api and /v1 may answer besides its own success; a wildcard covers the rest of a class.
ERROR_RESPONSES = {
    "401": "No valid API key: send `Authorization: Bearer <key>`.",
    "4XX": "Refused: invalid input (400; 422 for a malformed request on /api), not allowed now (403), not found "
    "(404), or in conflict with the current state (409).",
    "5XX": "OpenAI or a model failed (502), or is unavailable, as is a busy database (503); the disk is full (507).",
}


# Where the id an operation returns is used next, as OpenAPI links: the reference page shows them, and a fuzzer
# (tests/api/test_schemathesis.py) follows them to reach real rows. (source path, method, status, value) -> targets,
# each (path, method, parameter); "body.x" sets a field of the target's JSON body.
_DATASET = "/api/datasets/{dataset_id}"
_EXAMPLE = "/api/examples/{example_id}"
_API_JOB = "/api/jobs/{job_id}"
_V1_JOB = "/v1/fine_tuning/jobs/{job_id}"
_FILE = "/v1/files/{file_id}"
_DATASET_TARGETS = [
    (_DATASET, "get", "dataset_id"),
    (_DATASET, "patch", "dataset_id"),
    (_DATASET, "delete", "dataset_id"),
    (f"{_DATASET}/import", "post", "dataset_id"),
    (f"{_DATASET}/examples", "get", "dataset_id"),
    (f"{_DATASET}/examples", "post", "dataset_id"),
    (f"{_DATASET}/export", "get", "dataset_id"),
    (f"{_DATASET}/report", "get", "dataset_id"),
    ("/api/jobs", "post", "body.dataset_id"),
]
_EXAMPLE_TARGETS = [
    (_EXAMPLE, "get", "example_id"),
    (_EXAMPLE, "put", "example_id"),
    (_EXAMPLE, "delete", "example_id"),
]
_JOB_TARGETS = [
    (_API_JOB, "get", "job_id"),
    (f"{_API_JOB}/cancel", "post", "job_id"),
    (f"{_API_JOB}/rerun", "post", "job_id"),
    (f"{_API_JOB}/events", "get", "job_id"),
    (f"{_API_JOB}/checkpoints", "get", "job_id"),
    (_V1_JOB, "get", "job_id"),
    (f"{_V1_JOB}/cancel", "post", "job_id"),
    (f"{_V1_JOB}/pause", "post", "job_id"),
    (f"{_V1_JOB}/resume", "post", "job_id"),
    (f"{_V1_JOB}/events", "get", "job_id"),
    (f"{_V1_JOB}/checkpoints", "get", "job_id"),
]
_FILE_TARGETS = [
    (_FILE, "get", "file_id"),
    (_FILE, "delete", "file_id"),
    (f"{_FILE}/content", "get", "file_id"),
    ("/v1/fine_tuning/jobs", "post", "body.training_file"),
]
_MODEL_TARGETS = [
    ("/v1/models/{model_id}", "get", "model_id"),
    ("/v1/models/{model_id}", "delete", "model_id"),
    ("/api/models/{model_id}", "delete", "model_id"),
    ("/v1/chat/completions", "post", "body.model"),
]
LINKS: dict[tuple[str, str, str, str], list[tuple[str, str, str]]] = {
    ("/api/datasets", "post", "201", "$response.body#/id"): _DATASET_TARGETS,
    ("/api/datasets", "get", "200", "$response.body#/0/id"): _DATASET_TARGETS,
    (f"{_DATASET}/examples", "post", "201", "$response.body#/id"): _EXAMPLE_TARGETS,
    (f"{_DATASET}/examples", "get", "200", "$response.body#/items/0/id"): _EXAMPLE_TARGETS,
    ("/api/jobs", "post", "201", "$response.body#/id"): _JOB_TARGETS,
    ("/api/jobs", "get", "200", "$response.body#/data/0/id"): _JOB_TARGETS,
    ("/v1/fine_tuning/jobs", "post", "200", "$response.body#/id"): _JOB_TARGETS,
    ("/v1/fine_tuning/jobs", "get", "200", "$response.body#/data/0/id"): _JOB_TARGETS,
    ("/v1/files", "post", "200", "$response.body#/id"): _FILE_TARGETS,
    ("/v1/files", "get", "200", "$response.body#/data/0/id"): _FILE_TARGETS,
    ("/v1/models", "get", "200", "$response.body#/data/0/id"): _MODEL_TARGETS,
    ("/api/models", "get", "200", "$response.body#/data/0/id"): _MODEL_TARGETS,
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the bearer key declared so 'Authorize' works in the reference page."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "TUNEBOARD_API_KEY or a key from Settings"}
        }
        schema["security"] = [{"bearer": []}]
        _declare_errors(schema)
        _declare_links(schema)
        name_operations(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _declare_errors(schema: dict[str, Any]) -> None:
    """Every /api and /v1 operation's error answers, in the shape that path's errors really have.

    FastAPI documents a 422 with its own body, which Tuneboard never sends: /api answers 422 as ApiError and
    /v1 answers 400, as OpenAI does.
    """
    schemas = schema["components"].setdefault("schemas", {})
    schemas["ApiError"], schemas["OpenAIError"] = API_ERROR, OPENAI_ERROR
    for path, operations in schema["paths"].items():
        if not path.startswith(("/api/", "/v1/")):
            continue
        name = "OpenAIError" if path.startswith("/v1/") else "ApiError"
        body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
        for operation in operations.values():
            responses = operation["responses"]
            responses.pop("422", None)
            for status, description in ERROR_RESPONSES.items():
                responses.setdefault(status, {"description": description, "content": body})
    if "HTTPValidationError" not in json.dumps(schema["paths"]):
        schemas.pop("HTTPValidationError", None)  # and the item schema only it refers to
        schemas.pop("ValidationError", None)


def _declare_links(schema: dict[str, Any]) -> None:
    """The LINKS, on the operations that exist (a link to a missing one would make the document invalid)."""
    paths = schema["paths"]
    for (path, method, status, value), targets in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for target, target_method, parameter in targets:
            operation = paths.get(target, {}).get(target_method)
            if operation is None:
                continue
            link: dict[str, Any] = {"operationRef": _ref(target, target_method)}
            if parameter.startswith("body."):
                link["requestBody"] = {parameter.removeprefix("body."): value}
            else:
                link["parameters"] = {parameter: value}
            links[operation["operationId"]] = link


def _ref(path: str, method: str) -> str:
    """A JSON pointer to an operation (`/` in a key is written `~1`)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
