"""What the API commands print: JSON for scripts (--json), rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(highlight=False)
Column = tuple[str, Callable[[dict[str, Any]], Any]]


def plain(obj: Any) -> Any:
    """An SDK object (or a list of them) as plain JSON-ready data."""
    if isinstance(obj, list | tuple):
        return [plain(o) for o in obj]
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json") if callable(dump) else obj


def print_json(data: Any) -> None:
    """One JSON document on stdout (not wrapped, not coloured: a script reads it)."""
    print(json.dumps(plain(data), indent=2, ensure_ascii=False), flush=True)


def when(ts: Any) -> str:
    """A Unix timestamp as local date and time ('' for none)."""
    if not isinstance(ts, int | float) or not ts:
        return ""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def size(n: Any) -> str:
    """A byte count people read (1.2 MB)."""
    if not isinstance(n, int | float):
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def field(name: str) -> Callable[[dict[str, Any]], Any]:
    """A column reading one key."""
    return lambda row: row.get(name)


def table(rows: Iterable[Any], columns: Sequence[Column], title: str | None = None, empty: str = "Nothing.") -> None:
    """Rows (SDK objects or dicts) as a table with these columns."""
    data = [plain(r) for r in rows]
    if not data:
        out.print(empty)
        return
    grid = Table(title=title, title_justify="left")
    for header, _ in columns:
        grid.add_column(header, overflow="fold")
    for row in data:
        grid.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    out.print(grid)


def record(obj: Any, fields: Sequence[Column]) -> None:
    """One object as a two-column table of its fields."""
    row = plain(obj)
    grid = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, get in fields:
        value = get(row)
        if value not in (None, "", [], {}):
            grid.add_row(label, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    out.print(grid)


def show(obj: Any, as_json: bool, fields: Sequence[Column]) -> None:
    """One object: JSON with --json, else the record table."""
    if as_json:
        print_json(obj)
    else:
        record(obj, fields)


def listing(items: list[Any], as_json: bool, columns: Sequence[Column], empty: str) -> None:
    """A list: {"data": [...]} with --json (OpenAI's envelope), else a table."""
    if as_json:
        print_json({"object": "list", "data": plain(items)})
    else:
        table(items, columns, empty=empty)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (OpenAI's shapes) instead of a table, for scripts.")]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
