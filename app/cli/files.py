"""`tuneboard files`: upload, list, get, download and delete training files (/v1/files)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.connection import api, confirm, fail
from app.cli.output import JsonFlag, YesFlag, field, listing, out, print_json, show, size, when

files = typer.Typer(
    name="files",
    help="Training files on the server: upload JSONL, list, inspect, download and delete them.",
    no_args_is_help=True,
)

COLUMNS = [
    ("ID", field("id")),
    ("Name", field("filename")),
    ("Purpose", field("purpose")),
    ("Size", lambda f: size(f.get("bytes"))),
    ("Created", lambda f: when(f.get("created_at"))),
]
FIELDS = [*COLUMNS, ("Status", field("status"))]


@files.command()
def upload(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The JSONL file to upload.", exists=True, dir_okay=False)],
    purpose: Annotated[str, typer.Option(help="What the file is for (OpenAI's purpose).")] = "fine-tune",
    as_json: JsonFlag = False,
) -> None:
    """Upload a training or validation file (JSONL); prints its file id for `jobs create`.

    On Tuneboard the file also becomes a dataset you can browse and edit in the dashboard.
    """
    with api(ctx) as client, path.open("rb") as handle:
        # The purpose is passed through as typed: servers may know purposes this SDK's Literal does not.
        options: dict[str, Any] = {"purpose": purpose}
        created = client.files.create(file=(path.name, handle), **options)
    if as_json:
        print_json(created)
    else:
        out.print(f"Uploaded {path.name} as [bold]{created.id}[/] ({size(created.bytes)}).")


@files.command("list")
def list_files(
    ctx: typer.Context,
    purpose: Annotated[str | None, typer.Option(help="Only files with this purpose.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many files, newest first.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List uploaded files, newest first."""
    with api(ctx) as client:
        kwargs: dict[str, Any] = {"purpose": purpose} if purpose else {}
        items = list(islice(client.files.list(limit=min(limit, 100), **kwargs), limit))  # walks the pages
    listing(items, as_json, COLUMNS, "No files yet: upload one with `tuneboard files upload FILE.jsonl`.")


@files.command()
def get(
    ctx: typer.Context, file_id: Annotated[str, typer.Argument(help="The file id (file-…).")], as_json: JsonFlag = False
) -> None:
    """Show one file's details."""
    with api(ctx) as client:
        show(client.files.retrieve(file_id), as_json, FIELDS)


@files.command()
def download(
    ctx: typer.Context,
    file_id: Annotated[str, typer.Argument(help="The file id (file-…).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write it (default: the file's own name, here).", dir_okay=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Download a file's content exactly as it was uploaded (result files too)."""
    with api(ctx) as client:
        target = output or Path(Path(client.files.retrieve(file_id).filename).name or file_id)
        if target.exists() and not force:
            raise fail(f"{target} exists; pass --force to overwrite it or -o to choose another name.")
        client.files.content(file_id).write_to_file(target)
    written = {"id": file_id, "path": str(target), "bytes": target.stat().st_size}
    if as_json:
        print_json(written)
    else:
        out.print(f"Wrote {target} ({size(written['bytes'])}).")


@files.command()
def delete(
    ctx: typer.Context,
    file_id: Annotated[str, typer.Argument(help="The file id (file-…).")],
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete a file. Tuneboard refuses while maintenance is off; the dataset it became stays."""
    confirm(f"Delete file {file_id}?", yes)
    with api(ctx) as client:
        deleted = client.files.delete(file_id)
    if as_json:
        print_json(deleted)
    else:
        out.print(f"Deleted file {deleted.id}.")
