"""The dataset Report of a file, without a server or a database (`tuneboard check`).

Each line goes through the import's own path (import_rows.prepare_line: the same rejections, format checks and
content hashes), tokens are counted in one batch as the Report counts them (tokens.count_many), and the numbers
come from the Report's own aggregation (report_totals.aggregate) over rows shaped as the Report's snapshot rows.
So a file checked here and the same file imported into a dataset give the same codes and token totals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.datasets.gc_pause import no_cyclic_gc
from app.datasets.import_rows import ROW_FIELDS, prepare_line, wrong_shape
from app.datasets.import_stream import BOM
from app.datasets.limits import Limits
from app.datasets.rejections import message_for
from app.datasets.validation.checks import CODES
from app.datasets.validation.modeltable import ModelInfo, resolve_model
from app.datasets.validation.report_groups import build_groups
from app.datasets.validation.report_quality import findings, merge_counts, problems_by_example, record_clusters
from app.datasets.validation.report_totals import Report, aggregate
from app.datasets.validation.tokens import TokenCounts, count_many
from app.tables.dataset import PREFERENCE, SUPERVISED

CHUNK = 5_000  # lines parsed before their tokens are handed to the counting thread
_PROBLEMS = ROW_FIELDS.index("problems")
_N_MESSAGES = ROW_FIELDS.index("n_messages")
_HASH = ROW_FIELDS.index("content_hash")
_VALID = ROW_FIELDS.index("valid")


@dataclass(frozen=True)
class LineProblem:
    """One finding on one line of a file: a stable code, error or warning, and a plain sentence."""

    line: int
    code: str
    level: str
    message: str
    message_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "line": self.line,
            "code": self.code,
            "level": self.level,
            "message": self.message,
            "message_index": self.message_index,
        }


@dataclass
class FileLines:
    """A file read as the import reads it: the examples (with their line numbers) and the rejected lines."""

    path: Path
    lines: int = 0
    numbers: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)  # import_rows.ROW_FIELDS order
    rejected: list[LineProblem] = field(default_factory=list)
    kind: str | None = None  # SUPERVISED or PREFERENCE: the first example's shape (None: no example yet)


@dataclass
class FileCheck:
    """`tuneboard check`'s answer: the Report of a file (and of its validation file), and every finding by line."""

    model: ModelInfo
    train: FileLines
    report: Report
    problems: list[LineProblem]
    validation: FileLines | None = None
    validation_report: Report | None = None
    validation_problems: list[LineProblem] = field(default_factory=list)

    @property
    def n_errors(self) -> int:
        """Lines rejected plus examples with errors, in both files."""
        return sum(p.level == "error" for p in self.all_problems) + sum(len(lines.rejected) for lines in self._files())

    @property
    def n_warnings(self) -> int:
        """Warnings of both files' examples and of the dataset as a whole (too few examples)."""
        dataset_level = sum(1 for r in self._reports() if "too_few_examples" in r.warnings)
        return sum(p.level == "warning" for p in self.all_problems) + dataset_level

    @property
    def all_problems(self) -> list[LineProblem]:
        """Findings on the examples of both files (rejected lines not included)."""
        return self.problems + self.validation_problems

    def _files(self) -> list[FileLines]:
        return [self.train] if self.validation is None else [self.train, self.validation]

    def _reports(self) -> list[Report]:
        return [self.report] if self.validation_report is None else [self.report, self.validation_report]

    def as_dict(self) -> dict[str, Any]:
        """The JSON of `tuneboard check --json`: the Report's API shape for each file, plus findings by line."""
        out: dict[str, Any] = {
            "model": self.model.name,
            "ok": self.n_errors == 0,
            "n_errors": self.n_errors,
            "n_warnings": self.n_warnings,
            "train": _file_dict(self.train, self.report, self.problems),
        }
        if self.validation is not None and self.validation_report is not None:
            out["validation"] = _file_dict(self.validation, self.validation_report, self.validation_problems)
        return out


def _file_dict(lines: FileLines, report: Report, problems: list[LineProblem]) -> dict[str, Any]:
    api = report.as_api()
    del api["dataset_id"]
    return {
        "file": str(lines.path),
        "lines": lines.lines,
        "rejected": [r.as_dict() for r in lines.rejected],
        "report": api | {"tokens_lost": report.tokens_lost},
        "problems": [p.as_dict() for p in problems],
    }


def split_lines(data: bytes) -> list[bytes]:
    """A JSONL file's lines as the import cuts them: a BOM dropped, `\\n` or `\\r\\n` ends, no final empty line."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the file ended with a line end
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def read_file(
    path: Path, limits: Limits | None = None, on_chunk: Callable[[list[dict]], None] | None = None
) -> FileLines:
    """Every line of a JSONL file through the import's path: examples and rejected lines with their numbers.

    `on_chunk` is given the records of every CHUNK lines as soon as they are read (to count their tokens meanwhile).
    """
    limits = limits or Limits()
    lines = split_lines(path.read_bytes())
    found = FileLines(path, lines=len(lines))
    for start in range(0, len(lines), CHUNK):
        done = len(found.records)
        _read_lines(found, lines[start : start + CHUNK], start + 1, limits)
        if on_chunk is not None:
            on_chunk(found.records[done:])
    return found


def _read_lines(found: FileLines, lines: list[bytes], first: int, limits: Limits) -> None:
    for number, body in enumerate(lines, start=first):
        prepared = prepare_line(body, limits)
        if prepared is None:
            continue  # a blank line
        record, row, detail = prepared
        if isinstance(row, str):
            found.rejected.append(LineProblem(number, row, "error", message_for(row, detail)))
            continue
        # As the import: the first example's shape is the file's (chat or preference pairs); the other is rejected.
        kind = SUPERVISED if len(row) == len(ROW_FIELDS) else PREFERENCE
        if found.kind is None:
            found.kind = kind
        elif kind != found.kind:
            found.rejected.append(
                LineProblem(number, "wrong_shape", "error", message_for("wrong_shape", wrong_shape(found.kind)))
            )
            continue
        assert record is not None  # prepare_line gives a record with every row
        found.numbers.append(number)
        found.records.append(record)
        found.rows.append(row)


def _read_and_count(
    path: Path, limits: Limits | None, info: ModelInfo, settings: Any
) -> tuple[FileLines, list[TokenCounts]]:
    """read_file, with each chunk's tokens counted in another thread while the next chunk is parsed.

    tiktoken releases the GIL while it encodes, so on two cores the check takes about as long as the longer of
    the two halves instead of their sum."""
    with ThreadPoolExecutor(1) as pool:
        pending: list[Future[list[TokenCounts]]] = []
        found = read_file(
            path, limits, lambda records: pending.append(pool.submit(count_many, records, info, settings))
        )
        return found, [c for future in pending for c in future.result()]


def _stored_problems(row: tuple) -> list[dict[str, Any]]:
    text = row[_PROBLEMS]
    return [] if text == "[]" else json.loads(text)


def _report_rows(found: FileLines, counts: list[TokenCounts], split: str | None, start: int) -> dict[int, tuple]:
    """Rows shaped as the Report's snapshot rows (report_groups.Row), keyed from `start`."""
    rows = {}
    for i, (row, c) in enumerate(zip(found.rows, counts, strict=True)):
        codes = tuple(sorted({p["code"] for p in _stored_problems(row)})) or None
        rows[start + i] = (row[_VALID], row[_N_MESSAGES], row[_HASH], split, c.total, c.assistant, c.trained, codes)
    return rows


def _line_problems(
    found: FileLines, counts: list[TokenCounts], info: ModelInfo, leaked: set[str] | None
) -> list[LineProblem]:
    """Each example's stored problems, then those the Report computes: over the context limit, a later copy of an
    earlier example, and (training file) an example also in the validation file."""
    out: list[LineProblem] = []
    seen: set[str] = set()
    limit = info.context_limit
    for number, row, c in zip(found.numbers, found.rows, counts, strict=True):
        for p in _stored_problems(row):
            out.append(LineProblem(number, p["code"], p["level"], p["message"], p.get("message_index")))
        if row[_VALID] and c.total > limit:
            message = f"The example has {c.total:,} tokens; {info.name} trains on at most {limit:,}."
            out.append(LineProblem(number, "over_context_limit", "warning", message))
        digest = row[_HASH]
        if digest in seen:
            out.append(LineProblem(number, "duplicate_example", "warning", CODES["duplicate_example"][1]))
        seen.add(digest)
        if leaked is not None and digest in leaked:
            out.append(LineProblem(number, "train_validation_leakage", "warning", CODES["train_validation_leakage"][1]))
    return out


def check_file(
    path: Path,
    model: str | None = None,
    *,
    validation: Path | None = None,
    settings: Any = None,
    limits: Limits | None = None,
) -> FileCheck:
    """The Report of a training file for `model` (and of a validation file, checked for leakage), line by line."""
    info = resolve_model(model, settings)
    with no_cyclic_gc():
        train, train_counts = _read_and_count(path, limits, info, settings)
        other, other_counts = (None, []) if validation is None else _read_and_count(validation, limits, info, settings)
    counts = train_counts + other_counts
    rows = _report_rows(train, train_counts, None, 0)
    if other is not None:
        rows |= _report_rows(other, other_counts, "validation", len(rows))
    groups = build_groups(rows)
    exact = all(c.exact for c in counts)
    report = aggregate(groups, info, "train", set(), exact, dataset_name=path.name)
    leaked = None if other is None else {row[_HASH] for row in other.rows}
    result = FileCheck(info, train, report, _line_problems(train, train_counts, info, leaked))
    if other is not None and validation is not None:
        result.validation = other
        result.validation_report = aggregate(groups, info, "validation", set(), exact, dataset_name=validation.name)
        result.validation_problems = _line_problems(other, other_counts, info, None)
    _add_quality(result, rows, record_clusters(rows, dict(enumerate(train.records + (other.records if other else [])))))
    return result


def _add_quality(result: FileCheck, rows: dict[int, tuple], clusters: list) -> None:
    """Near-duplicates and outliers (report_quality) in each file's report and on its lines."""
    numbers = result.train.numbers + (result.validation.numbers if result.validation else [])
    n_train = len(result.train.numbers)
    files = [(result.report, "train", result.problems)]
    if result.validation_report is not None:
        files.append((result.validation_report, "validation", result.validation_problems))
    for report, split, problems in files:
        report.quality = findings(rows, clusters, split)
        report.warnings = merge_counts(report.warnings, report.quality)

        def name(i: int, train: bool = split == "train") -> str:
            return f"line {numbers[i]}" + ("" if (i < n_train) == train else " of the other file")

        for i, found in sorted(problems_by_example(report.quality, name).items()):
            problems.extend(LineProblem(numbers[i], code, CODES[code][0], message) for code, message in found)
