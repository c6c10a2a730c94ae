"""`tuneboard jobs`: create, list, get, cancel fine-tuning jobs, read their events and checkpoints, watch one."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.connection import api, confirm, stderr
from app.cli.output import JsonFlag, YesFlag, field, listing, out, print_json, show, when
from app.cli.watch import watch_job

jobs = typer.Typer(
    name="jobs",
    help="Fine-tuning jobs: start one, follow it live, read its events and checkpoints, cancel it.",
    no_args_is_help=True,
)

COLUMNS = [
    ("ID", field("id")),
    ("Model", field("model")),
    ("Status", field("status")),
    ("Tuned model", field("fine_tuned_model")),
    ("Created", lambda j: when(j.get("created_at"))),
]
FIELDS = [
    ("ID", field("id")),
    ("Status", field("status")),
    ("Base model", field("model")),
    ("Tuned model", field("fine_tuned_model")),
    ("Training file", field("training_file")),
    ("Validation file", field("validation_file")),
    ("Suffix", field("user_provided_suffix")),
    ("Hyperparameters", field("hyperparameters")),
    ("Seed", field("seed")),
    ("Trained tokens", field("trained_tokens")),
    ("Created", lambda j: when(j.get("created_at"))),
    ("Estimated finish", lambda j: when(j.get("estimated_finish"))),
    ("Finished", lambda j: when(j.get("finished_at"))),
    ("Error", lambda j: (j.get("error") or {}).get("message")),
]
JobId = Annotated[str, typer.Argument(help="The job id (ftjob-…).")]


def _file_id(client: Any, value: str | None) -> str | None:
    """A file id as given, or the id of a local file uploaded now (so `jobs create` can start from a path)."""
    if value is None or not Path(value).is_file():
        return value
    with Path(value).open("rb") as handle:
        created = client.files.create(file=(Path(value).name, handle), purpose="fine-tune")
    stderr.print(f"Uploaded {value} as {created.id}.", markup=False)  # stderr: --json output stays one document
    return str(created.id)


@jobs.command()
def create(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="The base model to fine-tune (see `models list`).")],
    training_file: Annotated[
        str, typer.Option("--training-file", "-t", help="Training file id, or a local JSONL path to upload first.")
    ],
    validation_file: Annotated[
        str | None, typer.Option("--validation-file", "-v", help="Validation file id or local JSONL path.")
    ] = None,
    suffix: Annotated[str | None, typer.Option(help="Added to the tuned model's name.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for a reproducible run.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: chosen from the dataset size).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: automatic).")] = None,
    learning_rate_multiplier: Annotated[float | None, typer.Option(help="Learning-rate multiplier.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job until it ends (as `jobs watch`).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a supervised fine-tuning job; prints the job id.

    With --watch the command follows the job and its exit status says how it ended (as `jobs watch`).
    """
    hyper = {"n_epochs": epochs, "batch_size": batch_size, "learning_rate_multiplier": learning_rate_multiplier}
    hyper = {k: v for k, v in hyper.items() if v is not None}
    with api(ctx) as client:
        extra: dict[str, Any] = {"suffix": suffix} if suffix else {}
        if seed is not None:
            extra["seed"] = seed
        validation = _file_id(client, validation_file)
        if validation:
            extra["validation_file"] = validation
        extra["method"] = {"type": "supervised", "supervised": {"hyperparameters": hyper}}
        job = client.fine_tuning.jobs.create(
            model=model, training_file=_file_id(client, training_file) or training_file, **extra
        )
        if as_json and not watch:
            print_json(job)
            return
        if not as_json:
            out.print(f"Created job [bold]{job.id}[/] ({job.status}) on {job.model}.")
        if watch:
            raise typer.Exit(watch_job(client, job.id, 2.0, as_json))


@jobs.command("list")
def list_jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many jobs, newest first.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List fine-tuning jobs, newest first."""
    with api(ctx) as client:
        items = list(islice(client.fine_tuning.jobs.list(limit=min(limit, 100)), limit))  # walks the pages
    listing(items, as_json, COLUMNS, "No jobs yet: start one with `tuneboard jobs create`.")


@jobs.command()
def get(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """Show one job: status, files, hyperparameters, tuned model, error."""
    with api(ctx) as client:
        show(client.fine_tuning.jobs.retrieve(job_id), as_json, FIELDS)


@jobs.command()
def cancel(ctx: typer.Context, job_id: JobId, yes: YesFlag = False, as_json: JsonFlag = False) -> None:
    """Cancel a queued or running job. Tuneboard refuses while maintenance is off."""
    confirm(f"Cancel job {job_id}?", yes)
    with api(ctx) as client:
        job = client.fine_tuning.jobs.cancel(job_id)
    if as_json:
        print_json(job)
    else:
        out.print(f"Cancelling job {job.id} (now {job.status}).")


@jobs.command()
def events(
    ctx: typer.Context,
    job_id: JobId,
    limit: Annotated[int, typer.Option(help="The latest this many events (more are fetched page by page).")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """A job's event log, oldest first (messages and metrics)."""
    with api(ctx) as client:
        pages = client.fine_tuning.jobs.list_events(job_id, limit=min(limit, 100))
        items = list(reversed(list(islice(pages, limit))))
    columns = [
        ("Time", lambda e: when(e.get("created_at"))),
        ("Level", field("level")),
        ("Message", field("message")),
    ]
    listing(items, as_json, columns, "No events yet.")


@jobs.command()
def checkpoints(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """A job's checkpoints, newest step first: each can be chatted with as a model."""
    with api(ctx) as client:
        items = list(client.fine_tuning.jobs.checkpoints.list(job_id, limit=100))
    columns = [
        ("Step", field("step_number")),
        ("Model", field("fine_tuned_model_checkpoint")),
        ("Train loss", lambda c: (c.get("metrics") or {}).get("train_loss")),
        ("Valid loss", lambda c: (c.get("metrics") or {}).get("valid_loss")),
        ("Created", lambda c: when(c.get("created_at"))),
    ]
    listing(items, as_json, columns, "No checkpoints yet.")


@jobs.command()
def watch(
    ctx: typer.Context,
    job_id: JobId,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the job.", min=0.1)] = 2.0,
    as_json: JsonFlag = False,
) -> None:
    """Follow a job live until it ends: status, progress with ETA, new events, latest losses.

    Exit status: 0 when the job succeeded, 1 when it failed, 3 when it was cancelled. With --json each new
    event is printed as one JSON line, then the final job.
    """
    with api(ctx) as client:
        raise typer.Exit(watch_job(client, job_id, interval, as_json))
