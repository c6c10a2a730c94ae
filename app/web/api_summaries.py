"""A short summary for every /api and /v1 operation in the reference at /docs, in place of FastAPI's
summaries made from function names ("Create", "Report Api"). The route's docstring stays the description."""

from __future__ import annotations

import re
from typing import Any

_D = "/api/datasets/{dataset_id}"
_JOB = "/api/jobs/{job_id}"
_FT = "/v1/fine_tuning/jobs"
_EV = "/api/evals/{eval_id}"
_RUN = "/api/evals/{eval_id}/runs/{run_id}"
_V1EV = "/v1/evals/{eval_id}"
_V1RUN = "/v1/evals/{eval_id}/runs/{run_id}"

SUMMARIES: dict[tuple[str, str], str] = {
    ("get", "/healthz"): "Check the server and its database",
    ("get", "/api/base-models"): "List base models with their size and memory fit",
    ("post", "/api/base-models"): "Add a base model from the Hugging Face Hub, a directory or a GGUF file",
    ("get", "/api/base-models/downloads/{name}"): "Get a base model download's progress",
    ("post", "/api/base-models/downloads/{name}/cancel"): "Cancel a base model download",
    ("delete", "/api/base-models/{name}"): "Delete an added base model",
    ("get", "/api/datasets"): "List datasets",
    ("post", "/api/datasets"): "Create a dataset",
    ("get", _D): "Get a dataset",
    ("patch", _D): "Rename or describe a dataset",
    ("delete", _D): "Delete a dataset",
    ("post", f"{_D}/import"): "Import a JSONL or CSV file into a dataset",
    ("get", f"{_D}/imports/{{import_id}}/rejected"): "List an import's rejected lines",
    ("get", f"{_D}/imports/{{import_id}}/rejected/raw"): "Download an import's rejected lines",
    ("get", f"{_D}/examples"): "List a dataset's examples",
    ("post", f"{_D}/examples"): "Add an example to a dataset",
    ("get", f"{_D}/export"): "Export a dataset as JSONL",
    ("get", "/api/examples/{example_id}"): "Get an example",
    ("put", "/api/examples/{example_id}"): "Replace an example",
    ("delete", "/api/examples/{example_id}"): "Delete an example",
    ("get", f"{_D}/report"): "Get a dataset's validation report",
    ("get", f"{_D}/fixes"): "List the bulk fixes with how many examples each would change",
    ("get", f"{_D}/fixes/{{name}}"): "Preview a bulk fix",
    ("post", f"{_D}/fixes/{{name}}"): "Apply a bulk fix as one undoable step",
    ("get", f"{_D}/revisions"): "List a dataset's bulk fixes",
    ("post", f"{_D}/revisions/{{revision_id}}/undo"): "Undo a bulk fix",
    ("post", "/api/jobs"): "Launch a fine-tuning job",
    ("get", "/api/jobs"): "List jobs",
    ("post", "/api/jobs/import-openai"): "Import jobs from the OpenAI account",
    ("get", _JOB): "Get a job",
    ("post", f"{_JOB}/cancel"): "Cancel a job",
    ("post", f"{_JOB}/rerun"): "Run a job again",
    ("get", f"{_JOB}/events"): "List a job's events",
    ("get", f"{_JOB}/checkpoints"): "List a job's checkpoints",
    ("get", f"{_JOB}/example_losses"): "List the examples the model could not learn, and the loss spikes",
    ("post", f"{_JOB}/checkpoints/{{checkpoint_id}}/promote"): "Use a checkpoint as the job's tuned model",
    ("get", "/api/models"): "List base models, tuned models and checkpoints",
    ("delete", "/api/models/{model_id}"): "Delete a tuned model",
    ("get", "/api/models/{model_id}/export"): "Export a tuned model (adapter, merged or GGUF)",
    ("get", "/api/settings/maintenance"): "Get the maintenance switch",
    ("put", "/api/settings/maintenance"): "Turn the maintenance switch on or off",
    ("post", "/v1/files"): "Upload a training file (OpenAI)",
    ("get", "/v1/files"): "List files (OpenAI)",
    ("get", "/v1/files/{file_id}"): "Retrieve a file (OpenAI)",
    ("delete", "/v1/files/{file_id}"): "Delete a file (OpenAI)",
    ("get", "/v1/files/{file_id}/content"): "Download a file's content (OpenAI)",
    ("post", _FT): "Create a fine-tuning job (OpenAI)",
    ("get", _FT): "List fine-tuning jobs (OpenAI)",
    ("get", f"{_FT}/{{job_id}}"): "Retrieve a fine-tuning job (OpenAI)",
    ("post", f"{_FT}/{{job_id}}/cancel"): "Cancel a fine-tuning job (OpenAI)",
    ("post", f"{_FT}/{{job_id}}/pause"): "Pause a fine-tuning job (OpenAI; refused)",
    ("post", f"{_FT}/{{job_id}}/resume"): "Resume a fine-tuning job (OpenAI; refused)",
    ("get", f"{_FT}/{{job_id}}/events"): "List a fine-tuning job's events (OpenAI)",
    ("get", f"{_FT}/{{job_id}}/checkpoints"): "List a fine-tuning job's checkpoints (OpenAI)",
    ("get", "/v1/models"): "List models (OpenAI)",
    ("get", "/v1/models/{model_id}"): "Retrieve a model (OpenAI)",
    ("delete", "/v1/models/{model_id}"): "Delete a tuned model (OpenAI)",
    ("post", "/v1/chat/completions"): "Create a chat completion (OpenAI)",
    ("post", "/api/evals"): "Create an eval",
    ("get", "/api/evals"): "List evals",
    ("get", _EV): "Get an eval",
    ("patch", _EV): "Rename an eval or change its metadata",
    ("delete", _EV): "Delete an eval",
    ("post", f"{_EV}/runs"): "Run an eval on a model",
    ("get", f"{_EV}/runs"): "List an eval's runs",
    ("get", _RUN): "Get an eval run",
    ("post", f"{_RUN}/cancel"): "Cancel an eval run",
    ("delete", _RUN): "Delete an eval run",
    ("get", f"{_RUN}/output_items"): "List an eval run's graded items",
    ("get", f"{_RUN}/output_items/{{output_item_id}}"): "Get an eval run's graded item",
    ("post", "/v1/evals"): "Create an eval (OpenAI)",
    ("get", "/v1/evals"): "List evals (OpenAI)",
    ("get", _V1EV): "Retrieve an eval (OpenAI)",
    ("post", _V1EV): "Update an eval (OpenAI)",
    ("delete", _V1EV): "Delete an eval (OpenAI)",
    ("post", f"{_V1EV}/runs"): "Create an eval run (OpenAI)",
    ("get", f"{_V1EV}/runs"): "List an eval's runs (OpenAI)",
    ("get", _V1RUN): "Retrieve an eval run (OpenAI)",
    ("post", _V1RUN): "Cancel an eval run (OpenAI's reference)",
    ("post", f"{_V1RUN}/cancel"): "Cancel an eval run (OpenAI)",
    ("delete", _V1RUN): "Delete an eval run (OpenAI)",
    ("get", f"{_V1RUN}/output_items"): "List an eval run's output items (OpenAI)",
    ("get", f"{_V1RUN}/output_items/{{output_item_id}}"): "Retrieve an eval run's output item (OpenAI)",
}


def generated_summary(operation: dict[str, Any], path: str, method: str) -> str:
    """The summary FastAPI makes from the route's function name (its default unique operationId, less the path)."""
    name = operation.get("operationId", "").removesuffix(re.sub(r"\W", "_", path) + "_" + method)
    return name.replace("_", " ").title()


def name_operations(schema: dict[str, Any]) -> None:
    """Give each operation its summary from SUMMARIES, unless its route's decorator set one of its own."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            summary = SUMMARIES.get((method, path))
            if summary and operation.get("summary") == generated_summary(operation, path, method):
                operation["summary"] = summary
