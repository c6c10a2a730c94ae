"""OpenAI's own response schemas as test data: check a raw /v1 response against the object OpenAI documents.

The schemas live in tests/fixtures/openai_schemas.json, extracted (with every schema they reference) from OpenAI's
OpenAPI description; its `source` field names the repository, commit and file. To extract them again from a newer
description: `python -m tests.support.openai_schemas path/to/openapi.json <commit>`.

OpenAPI 3.1 schemas are JSON Schema 2020-12 plus annotations (`x-…`, `discriminator`, `example`) that a validator
ignores, so they are checked as they are, with `#/components/schemas/…` references resolved through a registry.
One reading differs from plain JSON Schema: `oneOf` is a union (at least one alternative matches), as OpenAI's SDK
generator reads it. Strictly "exactly one" would refuse OpenAI's own documented requests: a template message
`{"role": "user", "content": "{{item.q}}"}` matches both `EasyInputMessage` and `EvalItem`.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "openai_schemas.json"
BASE_URI = "urn:openai-openapi"
REPOSITORY = "https://github.com/openai/openai-openapi"

# The objects the tests check, by component name; extraction adds every schema they reference.
COMPONENTS = (
    "Eval",
    "EvalList",
    "EvalRun",
    "EvalRunList",
    "EvalRunOutputItem",
    "EvalRunOutputItemList",
    "CreateEvalRequest",
    "CreateEvalRunRequest",
    "ErrorResponse",
    "FineTuningJob",
    "ListPaginatedFineTuningJobsResponse",
    "OpenAIFile",
    "ListFilesResponse",
    "DeleteFileResponse",
    "Model",
    "ListModelsResponse",
    "DeleteModelResponse",
)
# Responses OpenAI describes inline in a path rather than as a component: (name here, method, path, status).
INLINE_RESPONSES = (
    ("DeleteEvalResponse", "delete", "/evals/{eval_id}", "200"),
    ("DeleteEvalRunResponse", "delete", "/evals/{eval_id}/runs/{run_id}", "200"),
    ("UpdateEvalRequest", "post", "/evals/{eval_id}", "body"),
)


class SchemaMismatch(AssertionError):
    """A response that does not match OpenAI's schema for it."""


# Draft 2020-12 with `oneOf` read as a union (see the module's docstring); every other keyword as the draft says.
OpenApiValidator = validators.extend(Draft202012Validator, {"oneOf": Draft202012Validator.VALIDATORS["anyOf"]})


@cache
def _document() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


@cache
def _validator(name: str) -> Any:
    document = _document()
    if name not in document["components"]["schemas"]:
        raise KeyError(f"{name} is not among the extracted schemas ({FIXTURE.name}); add it to COMPONENTS")
    registry: Registry = Registry().with_resource(BASE_URI, Resource(contents=document, specification=DRAFT202012))
    return OpenApiValidator({"$ref": f"{BASE_URI}#/components/schemas/{name}"}, registry=registry)


def source() -> dict[str, str]:
    """Where the extracted schemas come from (repository, commit, path)."""
    return dict(_document()["source"])


def errors(name: str, instance: Any) -> list[ValidationError]:
    """Every way `instance` departs from OpenAI's schema `name` (empty when it matches)."""
    return list(_validator(name).iter_errors(instance))


def validate(name: str, instance: Any) -> Any:
    """Raise SchemaMismatch, naming each offending field, unless `instance` matches OpenAI's schema `name`."""
    found = errors(name, instance)
    if found:
        lines = []
        for error in sorted(found, key=lambda e: list(map(str, e.absolute_path)))[:10]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            deepest = best_match(error.context) if error.context else None
            because = f" (closest: {deepest.message[:200]})" if deepest is not None else ""
            lines.append(f"  at {where}: {error.message[:300]}{because}")
        raise SchemaMismatch(f"{name}: {len(found)} mismatch(es)\n" + "\n".join(lines))
    return instance


def checked(response: Any, name: str, status: int = 200) -> Any:
    """The JSON body of an httpx response with this status, after checking it against OpenAI's schema `name`."""
    assert response.status_code == status, response.text
    return validate(name, response.json())


def _references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)


def extract(
    spec: dict[str, Any],
    commit: str,
    path: str,
    components: tuple[str, ...] = COMPONENTS,
    inline: tuple[tuple[str, str, str, str], ...] = INLINE_RESPONSES,
) -> dict[str, Any]:
    """The schemas named in `components` and `inline` from an OpenAPI description, with all they reference."""
    everything = spec["components"]["schemas"]
    chosen: dict[str, Any] = {}
    for name, method, route, status in inline:
        operation = spec["paths"][route][method]
        if status == "body":
            chosen[name] = operation["requestBody"]["content"]["application/json"]["schema"]
        else:
            chosen[name] = operation["responses"][status]["content"]["application/json"]["schema"]
    pending = list(components)
    for schema in list(chosen.values()):
        found: set[str] = set()
        _references(schema, found)
        pending += sorted(found)
    while pending:
        name = pending.pop()
        if name in chosen:
            continue
        chosen[name] = everything[name]
        found = set()
        _references(everything[name], found)
        pending += sorted(found - set(chosen))
    return {
        "source": {
            "repository": REPOSITORY,
            "commit": commit,
            "path": path,
            "openapi": spec.get("openapi", ""),
            "info_version": spec.get("info", {}).get("version", ""),
            "note": "components.schemas copied unchanged: "
            + ", ".join(components)
            + " and what they reference"
            + "".join(f"; {n} is the inline schema of {m.upper()} {r}" for n, m, r, _ in inline),
        },
        "components": {"schemas": dict(sorted(chosen.items()))},
    }


def main(argv: list[str]) -> None:
    """Write the fixture from a full OpenAPI description: `python -m tests.support.openai_schemas FILE COMMIT`."""
    spec_path, commit = argv[0], argv[1]
    path = argv[2] if len(argv) > 2 else "openapi description, read as JSON"
    document = extract(json.loads(Path(spec_path).read_text()), commit, path)
    FIXTURE.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"{FIXTURE}: {len(document['components']['schemas'])} schemas")


if __name__ == "__main__":
    main(sys.argv[1:])
