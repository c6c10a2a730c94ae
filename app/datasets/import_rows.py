"""The CPU half of an import: lines → parsed, checked, serialised rows. No database, no SQLAlchemy.

Rows come out as plain tuples in ROW_FIELDS order, ready for one executemany per batch (no ORM objects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.datasets.json_limits import MAX_JSON_DEPTH, nesting_depth_exceeds
from app.datasets.limits import Limits, longest_message, stored_size, too_large_text, too_long_text
from app.datasets.validation.checks import (
    NonFiniteNumber,
    check_record,
    content_hash,
    json_encoder,
    search_text,
    strict_json_loads,
)
from app.datasets.validation.preference import check_preference, input_of, pair_extra, pair_hash, pair_search_text
from app.tables.dataset import PREFERENCE, SUPERVISED

# A prepared row: the example's own column values, in this order (the writer adds dataset, position, stamps).
ROW_FIELDS = (
    "messages",
    "tools",
    "extra",
    "problems",
    "token_counts",
    "n_errors",
    "n_warnings",
    "n_messages",
    "content_hash",
    "search_text",
    "valid",
)
_dumps = json_encoder()  # the same text as json.dumps(value)
_NO_PROBLEMS = "[]"
_SEARCH_TEXT = ROW_FIELDS.index("search_text")  # the only column stored as raw text (the JSON ones are ASCII)
_VALID, _PROBLEMS = ROW_FIELDS.index("valid"), ROW_FIELDS.index("problems")
TOKEN_COUNTS = ROW_FIELDS.index("token_counts")
# An imported row: ROW_FIELDS, then the number of the file line it came from (migration 0008).
IMPORT_FIELDS = (*ROW_FIELDS, "source_line")
# A preference (DPO) example's row: ROW_FIELDS (its input as messages and tools), then its two answers.
PAIR_FIELDS = (*ROW_FIELDS, "preferred_output", "non_preferred_output")
PAIR_IMPORT_FIELDS = (*PAIR_FIELDS, "source_line")
# How many values a prepared row of each kind has: a file's rows are all of one kind.
ROW_WIDTH = {SUPERVISED: len(ROW_FIELDS), PREFERENCE: len(PAIR_FIELDS)}
INVALID_SAMPLE = 1000  # imported-but-invalid lines listed by number in an import's result


@dataclass
class LineNotes:
    """What an import's summary tells beyond the examples: blank lines skipped, and the lines imported as invalid
    examples (all counted, the first INVALID_SAMPLE listed with their file line and first error)."""

    blank: int = 0
    invalid_count: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (file line, code, message)

    def row(self, number: int, row: tuple) -> None:
        """Note a prepared row from file line `number` (only invalid ones are kept)."""
        if row[_VALID]:
            return
        self.invalid_count += 1
        if len(self.invalid) < INVALID_SAMPLE:
            errors = [p for p in json.loads(row[_PROBLEMS]) if p["level"] == "error"]
            first = errors[0] if errors else {"code": "", "message": ""}
            self.invalid.append((number, first["code"], first["message"]))


def parse_line(text: str) -> tuple[dict[str, Any], None, str] | tuple[None, str, str]:
    """A JSONL line as a record, or (None, code, detail) when it cannot become an example."""
    try:
        obj = strict_json_loads(text)
    except NonFiniteNumber as exc:
        return None, "non_finite_number", f"found {str(exc)[:40]}"
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, "invalid_json", detail
    except RecursionError:
        return None, "too_deep", ""
    if not isinstance(obj, dict):
        return None, "not_an_object", ""
    # Nesting deeper than the limit needs more opening brackets than the limit: counting them is C-fast, so
    # ordinary lines never pay for the walk.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_depth_exceeds(obj):
        return None, "too_deep", ""
    if "messages" in obj:
        if not isinstance(obj["messages"], list):
            return None, "messages_not_a_list", ""
        return obj, None, ""
    if "input" in obj or "preferred_output" in obj or "non_preferred_output" in obj:
        return preference_line(obj)
    if "prompt" in obj and "completion" in obj:
        prompt, completion = obj.pop("prompt"), obj.pop("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            return None, "invalid_prompt_completion", ""
        # Legacy completions often start with a space that only separated them from the prompt.
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion.strip()}]
        return {"messages": messages, **obj}, None, ""
    return None, "missing_messages", ""


def preference_line(obj: dict[str, Any]) -> tuple[dict[str, Any], None, str] | tuple[None, str, str]:
    """A DPO-shaped object as a record (a missing answer becomes an empty list, flagged by the checks), or
    (None, code, detail) when its input or an answer cannot be stored."""
    given = obj.get("input")
    if not isinstance(given, dict) or not isinstance(given.get("messages"), list):
        return None, "input_not_a_conversation", ""
    for key in ("preferred_output", "non_preferred_output"):
        if key not in obj:
            obj[key] = []
        elif not isinstance(obj[key], list):
            return None, "answer_not_a_list", f"`{key}` is a JSON {type(obj[key]).__name__}"
    return obj, None, ""


def prepare_record(record: dict[str, Any]) -> tuple:
    """One record's row values in ROW_FIELDS order: JSON already serialised, validation columns computed."""
    tools = record.get("tools")
    if len(record) == 1 or (len(record) == 2 and "tools" in record and tools is not None):
        extra = None  # the common shapes: {"messages"} or {"messages", "tools"}
    else:
        extra = {k: v for k, v in record.items() if k != "messages" and k != "tools"}
        if "tools" in record and tools is None:
            extra["tools"] = None  # an explicit null survives export
        extra = extra or None
    # The record as Example.to_record() would rebuild it has the same keys and values: check it directly.
    # (validation.apply_check computes the same columns for the ORM path; a test holds the two together.)
    check = check_record(record)
    if check.problems:
        problems_text = _dumps([p.as_dict() for p in check.problems])
        n_errors, n_warnings, valid = check.n_errors, check.n_warnings, check.valid
    else:  # most rows: no need to count levels three times over an empty list
        problems_text, n_errors, n_warnings, valid = _NO_PROBLEMS, 0, 0, True
    messages = _dumps(record["messages"])
    return (
        messages,
        None if tools is None else _dumps(tools),
        None if extra is None else _dumps(extra),
        problems_text,
        None,
        n_errors,
        n_warnings,
        check.n_messages,
        content_hash(record, messages),
        search_text(record["messages"]),
        valid,
    )


def prepare_pair(record: dict[str, Any]) -> tuple:
    """One preference record's row values in PAIR_FIELDS order (parse_line made its input and answers lists)."""
    messages, tools = input_of(record)
    extra = pair_extra(record)  # the input's keys besides messages and tools ride in it too
    check = check_preference(record)
    problems = _dumps([p.as_dict() for p in check.problems]) if check.problems else _NO_PROBLEMS
    return (
        _dumps(messages),
        None if tools is None else _dumps(tools),
        _dumps(extra) if extra else None,
        problems,
        None,
        check.n_errors,
        check.n_warnings,
        check.n_messages,
        pair_hash(record),
        pair_search_text(record),
        check.valid,
        _dumps(record["preferred_output"]),
        _dumps(record["non_preferred_output"]),
    )


def record_kind(record: dict[str, Any]) -> str:
    """SUPERVISED or PREFERENCE: the kind of dataset a parsed record belongs in."""
    return SUPERVISED if "messages" in record else PREFERENCE


def over_limits(record: dict[str, Any], row: tuple, limits: Limits) -> tuple[str, str] | None:
    """(code, sentence) when a prepared record is over the message or example size limits, else None."""
    if "messages" in record:
        found = longest_message(record["messages"], limits.message_chars)
    else:  # a preference pair: its input's messages, then the preferred and the rejected answer
        messages = input_of(record)[0]
        found = longest_message(
            [*messages, *record["preferred_output"], *record["non_preferred_output"]], limits.message_chars
        )
    if found is not None:
        return "message_too_long", too_long_text(*found, limits)
    size = stored_size(row[0], row[1], row[2])
    if len(row) > len(ROW_FIELDS):
        size += len(row[-2]) + len(row[-1])
    if size > limits.example_bytes:
        return "example_too_large", too_large_text(size, limits)
    return None


def line_too_long(limits: Limits) -> str:
    """The sentence for a line over max_line_bytes."""
    return f"The line is longer than {limits.line_bytes:,} bytes, the limit (setting max_line_bytes)."


def prepare_line(body: bytes, limits: Limits) -> tuple[dict[str, Any] | None, tuple | str, str] | None:
    """One raw line (without its line end): (record, row, "") when it becomes an example, (None, code, detail)
    when it is rejected, None when it is blank (it carries no example)."""
    if len(body) > limits.line_bytes:
        return None, "line_too_long", line_too_long(limits)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "invalid_utf8", f"byte {exc.start + 1} cannot be decoded"
    if not text or text.isspace():
        return None
    record, code, detail = parse_line(text)
    if record is None:
        return None, code or "", detail
    row = prepare_record(record) if "messages" in record else prepare_pair(record)
    if "\\u" in text and not _storable(row[_SEARCH_TEXT]):
        # A \ud800-\udfff escape with no partner: valid JSON syntax, but no character UTF-8 (nor the database)
        # can store. Only an escape can make one, so lines without "\u" skip the check.
        return None, "invalid_utf8", "it escapes an unpaired surrogate (\\ud800-\\udfff)"
    # A message has at most as many characters as its line has bytes, and an example's stored JSON fewer than
    # four bytes per byte of its line (a two-byte character becomes a six-byte \uXXXX; prompt/completion lines
    # gain role keys): most lines skip the check.
    if len(body) > limits.message_chars or 4 * len(body) > limits.example_bytes:
        problem = over_limits(record, row, limits)
        if problem is not None:
            return None, problem[0], problem[1]
    return record, row, ""


def prepare_lines(
    lines: list[bytes],
    first_number: int,
    limits: Limits | None = None,
    notes: LineNotes | None = None,
    kind: str = SUPERVISED,
) -> tuple[list[tuple], list[tuple[int, str, bytes, str]]]:
    """Rows of the good lines (in order, IMPORT_FIELDS: each ends with its line number) and (line number, code,
    bytes, detail) of the rejected ones.

    `lines` are raw lines without their line ends; blank lines are skipped and count as lines. `notes`, when
    given, counts the blank lines and lists the lines that became invalid examples. `kind` is the file's: a line
    of the other shape (a chat line in a preference file, or the reverse) is rejected as `wrong_shape`.
    """
    limits = limits or Limits()
    width = ROW_WIDTH[kind]
    rows: list[tuple] = []
    rejected: list[tuple[int, str, bytes, str]] = []
    for number, body in enumerate(lines, start=first_number):
        prepared = prepare_line(body, limits)
        if prepared is None:
            if notes is not None:
                notes.blank += 1
            continue
        _, row, detail = prepared
        if isinstance(row, str):  # a rejection's code
            rejected.append((number, row, body, detail))
        elif len(row) != width:
            rejected.append((number, "wrong_shape", body, wrong_shape(kind)))
        else:
            rows.append((*row, number))
            if notes is not None and not row[_VALID]:
                notes.row(number, row)
    return rows, rejected


def wrong_shape(kind: str) -> str:
    """Why a line of the other shape than its file's is rejected."""
    if kind == PREFERENCE:
        return "it is a chat example (`messages`), but the file holds preference pairs (`input`, `preferred_output`)"
    return "it is a preference pair (`input`, `preferred_output`), but the file holds chat examples (`messages`)"


def line_kind(body: bytes) -> str | None:
    """The kind of a raw line that parses as an example, else None (blank, bad or not an example)."""
    try:
        record = parse_line(body.decode("utf-8"))[0] if body.strip() else None
    except UnicodeDecodeError:
        return None
    return None if record is None else record_kind(record)


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
