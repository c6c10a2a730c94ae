"""OpenAI's chat completion schemas as test data: check a raw /v1/chat/completions answer (whole or a streamed
chunk) against the objects OpenAI documents.

The schemas live in tests/fixtures/openai_chat_schemas.json, in the same format as openai_schemas.json (a `source`
naming repository, commit and file, then `components.schemas` copied unchanged with every schema they reference),
extracted from github.com/openai/openai-openapi at commit f85dbe2: `python -m tests.support.openai_chat_schemas
path/to/openapi.json f85dbe2`.

The chat schemas still mark some fields OpenAPI 3.0's way, `"nullable": true` beside a `type` or a `$ref` (a
chunk's `finish_reason`, `logprobs` and `usage`, which OpenAI itself sends as null), so here `nullable` admits null
past `type`, `enum` and `$ref`, as OpenAI's SDK generator reads it; `oneOf` is a union (at least one alternative
matches), as in the other schema fixture's validator. Every other keyword is JSON Schema 2020-12.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support import openai_schemas

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "openai_chat_schemas.json"
BASE_URI = "urn:openai-openapi-chat"
REPOSITORY = "https://github.com/openai/openai-openapi"
COMPONENTS = ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ErrorResponse")


def _nullable(keyword: str) -> Any:
    """The draft's check of `keyword`, letting null through where the schema says `nullable: true`."""
    check = Draft202012Validator.VALIDATORS[keyword]

    def checked(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema)

    return checked


OpenApiValidator = validators.extend(
    Draft202012Validator,
    {
        "oneOf": Draft202012Validator.VALIDATORS["anyOf"],
        **{keyword: _nullable(keyword) for keyword in ("type", "enum", "$ref")},
    },
)


class SchemaMismatch(AssertionError):
    """A response that does not match OpenAI's schema for it."""


@cache
def _validator(name: str) -> Any:
    document = json.loads(FIXTURE.read_text())
    if name not in document["components"]["schemas"]:
        raise KeyError(f"{name} is not among the extracted schemas ({FIXTURE.name}); add it to COMPONENTS")
    registry: Registry = Registry().with_resource(BASE_URI, Resource(contents=document, specification=DRAFT202012))
    return OpenApiValidator({"$ref": f"{BASE_URI}#/components/schemas/{name}"}, registry=registry)


def validate(name: str, instance: Any) -> Any:
    """Raise SchemaMismatch, naming each offending field, unless `instance` matches OpenAI's schema `name`."""
    found = list(_validator(name).iter_errors(instance))
    if found:
        lines = []
        for error in found[:10]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            deepest = best_match(error.context) if error.context else None
            because = f" (closest: {deepest.message[:200]})" if deepest is not None else ""
            lines.append(f"  at {where}: {error.message[:300]}{because}")
        raise SchemaMismatch(f"{name}: {len(found)} mismatch(es)\n" + "\n".join(lines))
    return instance


def extract(spec: dict[str, Any], commit: str, path: str) -> dict[str, Any]:
    """The schemas named in COMPONENTS from an OpenAPI description, with every schema they reference."""
    return openai_schemas.extract(spec, commit, path, components=COMPONENTS, inline=())


def main(argv: list[str]) -> None:
    """Write the fixture from a full OpenAPI description: `python -m tests.support.openai_chat_schemas FILE COMMIT`."""
    spec_path, commit = argv[0], argv[1]
    path = argv[2] if len(argv) > 2 else "openapi.yaml (converted to JSON)"
    document = extract(json.loads(Path(spec_path).read_text()), commit, path)
    FIXTURE.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"{FIXTURE}: {len(document['components']['schemas'])} schemas")


if __name__ == "__main__":
    main(sys.argv[1:])
