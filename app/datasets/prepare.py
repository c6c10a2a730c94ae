"""`tuneboard prepare`: fix what can be fixed safely in a training file, split it, and say what changed.

Safe fixes only: a BOM and CRLF line ends dropped, whitespace around message text trimmed, legacy
prompt/completion lines turned into chat (as the import turns them), CSV (system,user,assistant) read as the
import reads it, and exact duplicates (same content hash as the Report's duplicate check) dropped. Lines that
cannot become valid examples are left out and listed with their numbers and reasons; nothing is guessed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.datasets.file_check import LineProblem, read_file, split_lines
from app.datasets.import_csv import CsvReceiver
from app.datasets.import_stream import BOM
from app.datasets.limits import Limits
from app.datasets.rejections import Rejections
from app.datasets.splitting import random_split
from app.datasets.validation.checks import content_hash
from app.datasets.validation.preference import check_example, is_preference_record, pair_hash

# What each fix is called in the summary.
FIXES = {
    "bom": "removed the byte order mark at the start of the file",
    "crlf": "changed Windows (CRLF) line ends to LF",
    "whitespace": "trimmed whitespace around message text",
    "prompt_completion": "turned legacy prompt/completion lines into chat messages",
    "csv": "converted CSV rows (system,user,assistant) to JSONL",
    "duplicate": "dropped exact duplicates of an earlier example",
}


@dataclass
class Preparation:
    """What `prepare` made of a file: the examples kept (split), the fixes by kind and the lines it could not fix."""

    source: Path
    unit: str  # "line" (JSONL) or "row" (CSV)
    train: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    fixes: Counter = field(default_factory=Counter)
    fixed_lines: dict[str, list[int]] = field(default_factory=dict)  # fix -> the line numbers it changed
    rejected: list[LineProblem] = field(default_factory=list)  # file lines that cannot become examples
    unfixable: list[LineProblem] = field(default_factory=list)  # examples with errors, numbered by `unit`
    written: list[Path] = field(default_factory=list)

    def note(self, fix: str, number: int | None = None) -> None:
        """Count one fix (on a line, when it is about one)."""
        self.fixes[fix] += 1
        if number is not None:
            self.fixed_lines.setdefault(fix, []).append(number)

    def as_dict(self) -> dict[str, Any]:
        """The JSON of `tuneboard prepare --json`."""
        return {
            "source": str(self.source),
            "train": len(self.train),
            "validation": len(self.validation),
            "fixes": {
                k: {"count": n, "what": FIXES[k], "lines": self.fixed_lines.get(k, [])} for k, n in self.fixes.items()
            },
            "unit": self.unit,
            "rejected_lines": [p.as_dict() for p in self.rejected],
            "unfixable": [p.as_dict() for p in self.unfixable],
            "written": [str(p) for p in self.written],
        }


def _trimmed(record: dict[str, Any]) -> bool:
    """Trim whitespace around each message's text (content strings and text parts); True if anything changed."""
    changed = False
    messages = record.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str) and content != content.strip():
            message["content"] = content.strip()
            changed = True
        elif isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, dict)
                    and isinstance(part.get("text"), str)
                    and part["text"] != part["text"].strip()
                ):
                    part["text"] = part["text"].strip()
                    changed = True
    return changed


def prepare_file(
    path: Path, *, validation_percent: float = 10.0, seed: int | str = 0, limits: Limits | None = None
) -> Preparation:
    """Fix, deduplicate and split a JSONL or CSV file (nothing written: see write_preparation)."""
    limits = limits or Limits()
    data = path.read_bytes()
    csv_file = path.suffix.lower() == ".csv"
    result = Preparation(path, "row" if csv_file else "line")
    numbered = _csv_examples(data, result, limits) if csv_file else _jsonl(path, data, result, limits)
    kept: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, record in numbered:
        if _trimmed(record):
            result.note("whitespace", number)
        check = check_example(record)  # a chat example or a preference pair (the file holds one kind)
        if not check.valid:
            for p in check.problems:
                if p.level == "error":
                    result.unfixable.append(LineProblem(number, p.code, p.level, p.message, p.message_index))
            continue
        digest = pair_hash(record) if is_preference_record(record) else content_hash(record)
        if digest in seen:
            result.note("duplicate", number)
            continue
        seen.add(digest)
        kept.append((number, record))
    validation, _ = random_split(range(len(kept)), validation_percent, seed)
    picked = set(validation)
    for i, (_, record) in enumerate(kept):
        (result.validation if i in picked else result.train).append(record)
    return result


def _jsonl(path: Path, data: bytes, result: Preparation, limits: Limits) -> list[tuple[int, dict[str, Any]]]:
    """The examples of a JSONL file with their line numbers; BOM, CRLF and legacy lines noted, bad lines listed."""
    if data.startswith(BOM):
        result.note("bom")
    for number, line in enumerate(split_lines(data), start=1):
        legacy = b'"prompt"' in line and b'"messages"' not in line
        if legacy:
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "messages" not in obj and "prompt" in obj and "completion" in obj:
                result.note("prompt_completion", number)
    body = data[len(BOM) :] if data.startswith(BOM) else data
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.endswith(b"\r"):
            result.note("crlf", number)
    found = read_file(path, limits)
    result.rejected += found.rejected
    return list(zip(found.numbers, found.records, strict=True))


def _csv_examples(data: bytes, result: Preparation, limits: Limits) -> list[tuple[int, dict[str, Any]]]:
    """The examples of a CSV file as the import reads it (header system,user,assistant), numbered by data row.

    Rows the import rejects keep the number of the file line they start on."""
    rejections = Rejections(None)
    receiver = CsvReceiver(limits, rejections, None, None)
    receiver.feed(data)
    prepared = receiver.finish()
    examples: list[tuple[int, dict[str, Any]]] = []
    for batch in prepared.rows.batches():
        for row in batch:
            examples.append((len(examples) + 1, {"messages": json.loads(row[0])}))
    prepared.close()
    for number, _ in examples:
        result.note("csv", number)
    for r in rejections.sample:
        result.rejected.append(LineProblem(r.line, r.code, "error", r.message))
    return examples


def output_paths(source: Path, out: Path | None = None) -> tuple[Path, Path]:
    """Where the training and validation files go: FILE_train.jsonl and FILE_validation.jsonl beside the file."""
    folder = out if out is not None else source.parent
    return folder / f"{source.stem}_train.jsonl", folder / f"{source.stem}_validation.jsonl"


def write_preparation(result: Preparation, out: Path | None = None) -> list[Path]:
    """Write the training file (and the validation file when it has examples), one JSON object a line, UTF-8."""
    train_path, validation_path = output_paths(result.source, out)
    train_path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for target, records in ((train_path, result.train), (validation_path, result.validation)):
        if records or target is train_path:
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            target.write_text(text, encoding="utf-8", newline="\n")
            written.append(target)
    result.written = written
    return written
