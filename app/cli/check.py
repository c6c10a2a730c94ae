"""`tuneboard check` and `tuneboard prepare`: the dashboard's validation of a file, and its safe fixes, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.config import Settings
from app.datasets.file_check import FileCheck, FileLines, LineProblem, check_file
from app.datasets.limits import Limits
from app.datasets.prepare import FIXES, Preparation, prepare_file, write_preparation
from app.datasets.validation.report_totals import Report
from app.errors import DomainError

SHOWN = 40  # findings listed per file on the terminal (--json lists them all)


def register(cli: typer.Typer) -> None:
    """Add the `check` and `prepare` commands to the `tuneboard` application."""
    cli.command(
        "check", epilog="Example: tuneboard check train.jsonl --validation validation.jsonl --model gpt-4o-mini"
    )(check)
    cli.command("prepare", epilog="Example: tuneboard prepare data.csv --validation-fraction 0.2 --seed 42")(prepare)


def check(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A JSONL training file.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model to count tokens and estimate for (default: the model table's)."),
    ] = None,
    validation: Annotated[
        Path | None,
        typer.Option(
            "--validation",
            exists=True,
            dir_okay=False,
            readable=True,
            help="A validation file: checked, and for leaks.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON (for scripts).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")] = False,
) -> None:
    """Validate a training file as the dashboard's Report does, without a server or a database.

    Every line gets the dashboard's format checks (same codes and messages), tokens are counted with the model's
    tokenizer, and the report gives statistics, the default epochs and the cost or training-time estimate,
    duplicates, and train/validation leakage against --validation. Exit status: 0 when clean, 1 when there are
    errors (or warnings, with --strict), 2 for a bad command line or an unknown model.
    """
    settings = Settings()
    try:
        result = check_file(file, model, validation=validation, settings=settings, limits=Limits.of(settings))
    except DomainError as exc:
        Console(stderr=True).print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_check(Console(highlight=False), result)
    failed = result.n_errors > 0 or (strict and result.n_warnings > 0)
    raise typer.Exit(1 if failed else 0)


def _print_check(console: Console, result: FileCheck) -> None:
    console.print(f"Model: [bold]{result.model.name}[/bold] (training context {result.model.context_limit:,} tokens)")
    _print_file(console, result.train, result.report, result.problems)
    if result.validation is not None and result.validation_report is not None:
        _print_file(console, result.validation, result.validation_report, result.validation_problems)
    verdict = "[green]No errors.[/green]" if result.n_errors == 0 else f"[red]{result.n_errors:,} error(s).[/red]"
    console.print(f"\n{verdict} {result.n_warnings:,} warning(s).")


def _print_file(console: Console, lines: FileLines, report: Report, problems: list[LineProblem]) -> None:
    console.rule(f"{lines.path.name} ({report.split})")
    console.print(
        f"{lines.lines:,} lines: {report.n_examples:,} examples, {report.n_valid:,} valid, "
        f"{len(lines.rejected):,} rejected lines."
    )
    if report.errors or report.warnings or lines.rejected:
        table = Table("Code", "Level", "Examples", title="Problems", title_justify="left")
        for code, n in report.errors.items():
            table.add_row(code, "[red]error[/red]", f"{n:,}")
        for code, n in report.warnings.items():
            table.add_row(code, "[yellow]warning[/yellow]", f"{n:,}")
        rejected: dict[str, int] = {}
        for r in lines.rejected:
            rejected[r.code] = rejected.get(r.code, 0) + 1
        for code, n in rejected.items():
            table.add_row(code, "[red]error (line rejected)[/red]", f"{n:,}")
        console.print(table)
    _print_stats(console, report)
    findings = sorted(lines.rejected + problems, key=lambda p: p.line)
    for p in findings[:SHOWN]:
        colour = "red" if p.level == "error" else "yellow"
        console.print(f"  line {p.line}: [{colour}]{p.code}[/{colour}] {p.message}")
    if len(findings) > SHOWN:
        console.print(f"  … and {len(findings) - SHOWN:,} more (--json lists them all).")


def _print_stats(console: Console, report: Report) -> None:
    if report.tokens is None:
        return
    table = Table("", "total", "min", "median", "mean", "p95", "max", title="Statistics", title_justify="left")
    for name, s in (
        ("tokens", report.tokens),
        ("assistant tokens", report.assistant_tokens),
        ("messages", report.messages),
    ):
        if s is not None:
            table.add_row(
                name, f"{s.total:,}", f"{s.min:,}", f"{s.median:g}", f"{s.mean:g}", f"{s.p95:g}", f"{s.max:,}"
            )
    console.print(table)
    e = report.estimate
    cost = "" if e.cost_usd is None else f", about ${e.cost_usd:,.2f}"
    seconds = [
        f"{label} ~{v / 60:,.0f} min"
        for label, v in (("CPU", e.training_seconds_cpu), ("GPU", e.training_seconds_gpu))
        if v
    ]
    timing = f", training {' / '.join(seconds)}" if seconds else ""
    exact = "" if report.exact else " (approximate token counts: the model's own tokenizer is not available)"
    console.print(
        f"Estimate: {e.n_epochs} epochs × {e.billing_tokens:,} tokens = {e.charged_tokens:,} charged tokens"
        f"{cost}{timing}{exact}."
    )


def prepare(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A JSONL or CSV file.")],
    out: Annotated[
        Path | None, typer.Option("--out", file_okay=False, help="Folder for the output files (default: the file's).")
    ] = None,
    validation_fraction: Annotated[
        float, typer.Option("--validation-fraction", min=0.0, max=1.0, help="Share of examples for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split: the same seed gives the same split.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON (for scripts).")] = False,
) -> None:
    """Fix what can be fixed safely, drop exact duplicates, and split into FILE_train.jsonl and FILE_validation.jsonl.

    Fixes: a byte order mark, Windows line ends, whitespace around message text, legacy prompt/completion lines
    (turned into chat), CSV with the columns system,user,assistant (turned into JSONL). The split is the dashboard's
    "Split randomly" (the same seed gives the same split). Lines that cannot become valid examples are left out and
    listed with their numbers and reasons. Exit status 1 when something was left out. Run `tuneboard check` on
    the output for warnings and the estimate.
    """
    settings = Settings()
    try:
        result = prepare_file(file, validation_percent=validation_fraction * 100, seed=seed, limits=Limits.of(settings))
    except DomainError as exc:
        Console(stderr=True).print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from exc
    write_preparation(result, out)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_preparation(Console(highlight=False), result)
    raise typer.Exit(1 if result.rejected or result.unfixable else 0)


def _print_preparation(console: Console, result: Preparation) -> None:
    for fix, n in result.fixes.items():
        lines = result.fixed_lines.get(fix, [])
        where = f" ({result.unit}{'s' if len(lines) > 1 else ''} {_numbers(lines)})" if lines else ""
        console.print(f"[green]Fixed[/green]: {FIXES[fix]}: {n:,}{where}.")
    if not result.fixes:
        console.print("Nothing needed fixing.")
    left_out = [("line", p) for p in result.rejected] + [(result.unit, p) for p in result.unfixable]
    for unit, p in left_out[:SHOWN]:
        console.print(f"[red]Left out[/red] {unit} {p.line}: {p.code}: {p.message}")
    if len(left_out) > SHOWN:
        console.print(f"… and {len(left_out) - SHOWN:,} more left out (--json lists them all).")
    console.print(f"{len(result.train):,} training and {len(result.validation):,} validation examples written:")
    for path in result.written:
        console.print(f"  {path}")


def _numbers(numbers: list[int], shown: int = 10) -> str:
    text = ", ".join(str(n) for n in numbers[:shown])
    return text + (f" and {len(numbers) - shown:,} more" if len(numbers) > shown else "")
