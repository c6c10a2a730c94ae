"""The dashboard's eval forms: graders from form fields (checked one by one as they are typed), a new eval from a
dataset or an uploaded JSONL of items, and a run of any model of the catalogue.

Form fields of grader i are named `g{i}_{field}` (g0_type, g0_name, g0_operation…).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.errors import Invalid
from app.evals.evals import create_eval, get_eval
from app.evals.graders import validate_testing_criteria
from app.evals.items import eval_folder, items_from_jsonl
from app.evals.runs import create_run
from app.tables import Eval, EvalRun

OUTPUT = "{{sample.output_text}}"
REFERENCE = "{{item.reference}}"
MAX_GRADERS = 20
SPLITS = {
    "": "validation split (all examples when there is none)",
    "validation": "validation split",
    "train": "training split",
    "all": "all examples",
}
JUDGE_SYSTEM = "You grade a model's answer against a reference. Reply with a single number from 0 to 1."
JUDGE_USER = f"Reference answer:\n{REFERENCE}\n\nModel's answer:\n{OUTPUT}"
LABEL_SYSTEM = "You classify a model's answer. Reply with one label only."


@dataclass(frozen=True)
class Field:
    """One input of a grader's fieldset."""

    key: str
    label: str
    default: str = ""
    choices: tuple[str, ...] = ()  # a select when given
    widget: str = "text"  # text | textarea | number | model


def _name(default: str) -> Field:
    return Field("name", "Name", default)


# Each grader type's fields in the order the form shows them (OpenAI's field names where they exist).
GRADER_FIELDS: dict[str, tuple[Field, ...]] = {
    "string_check": (
        _name("exact match"),
        Field("input", "Input", OUTPUT),
        Field("operation", "Operation", "eq", ("eq", "ne", "like", "ilike")),
        Field("reference", "Reference", REFERENCE),
    ),
    "text_similarity": (
        _name("similarity"),
        Field("input", "Input", OUTPUT),
        Field("reference", "Reference", REFERENCE),
        Field(
            "evaluation_metric",
            "Metric",
            "fuzzy_match",
            ("fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"),
        ),
        Field("pass_threshold", "Pass threshold (0–1)", "0.8", widget="number"),
    ),
    "json_check": (
        _name("valid JSON"),
        Field("input", "Input", OUTPUT),
        Field("required_keys", "Required keys (comma-separated)"),
        Field("schema", "JSON Schema (optional)", widget="textarea"),
    ),
    "regex_check": (
        _name("pattern"),
        Field("input", "Input", OUTPUT),
        Field("pattern", "Pattern"),
        Field("flags", "Flags (i, m, s)"),
        Field("operation", "Operation", "search", ("search", "match", "not_search")),
    ),
    "score_model": (
        _name("judge score"),
        Field("model", "Judge model", widget="model"),
        Field("system", "Instructions", JUDGE_SYSTEM, widget="textarea"),
        Field("prompt", "Prompt", JUDGE_USER, widget="textarea"),
        Field("range_min", "Lowest score", "0", widget="number"),
        Field("range_max", "Highest score", "1", widget="number"),
        Field("pass_threshold", "Pass threshold", "0.5", widget="number"),
    ),
    "label_model": (
        _name("judge label"),
        Field("model", "Judge model", widget="model"),
        Field("system", "Instructions", LABEL_SYSTEM, widget="textarea"),
        Field(
            "prompt",
            "Prompt",
            f"Reference: {REFERENCE}\nAnswer: {OUTPUT}\nIs the answer correct or wrong?",
            widget="textarea",
        ),
        Field("labels", "Labels (comma-separated)", "correct, wrong"),
        Field("passing_labels", "Passing labels", "correct"),
    ),
}
GRADER_LABELS = {
    "string_check": "String check",
    "text_similarity": "Text similarity",
    "json_check": "JSON check",
    "regex_check": "Regex check",
    "score_model": "Judge model: score",
    "label_model": "Judge model: label",
}
_FIELD_NAME = re.compile(r"^g(\d{1,2})_([a-z_]{1,40})$")


def grader_form(kind: str, index: int) -> dict[str, Any]:
    """A new grader's fieldset: its type, index and default values."""
    if kind not in GRADER_FIELDS:
        raise Invalid(f"Pick a grader type: {', '.join(GRADER_FIELDS)}.", param="type")
    if not 0 <= index < MAX_GRADERS:
        raise Invalid(f"An eval made here has at most {MAX_GRADERS} graders.", param="index")
    values = {f.key: f.default for f in GRADER_FIELDS[kind]}
    return {"kind": kind, "index": index, "fields": GRADER_FIELDS[kind], "values": values, "label": GRADER_LABELS[kind]}


def grader_values(form: dict[str, str]) -> list[dict[str, str]]:
    """The graders' raw form values by index, in index order (gaps left by removed graders closed)."""
    found: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _FIELD_NAME.match(key)
        if match and int(match.group(1)) < MAX_GRADERS:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [found[i] for i in sorted(found) if found[i].get("type")]


def _number(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text  # the grader's own check says what is wrong with it


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _messages(values: dict[str, str]) -> list[dict[str, str]]:
    system, prompt = values.get("system", "").strip(), values.get("prompt", "").strip()
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def grader_config(values: dict[str, str], position: int) -> dict[str, Any]:
    """One grader's config in OpenAI's shape, from its form values (checked afterwards, by the graders)."""
    kind = values.get("type", "")
    if kind not in GRADER_FIELDS:
        raise Invalid(f"Grader {position + 1}: pick a grader type.", param=f"g{position}.type")
    config: dict[str, Any] = {"type": kind, "name": values.get("name", "").strip()}
    if kind in ("string_check", "text_similarity"):
        config |= {"input": values.get("input", ""), "reference": values.get("reference", "")}
    if kind == "string_check":
        config["operation"] = values.get("operation", "")
    elif kind == "text_similarity":
        config["evaluation_metric"] = values.get("evaluation_metric", "")
        config["pass_threshold"] = _number(values.get("pass_threshold", ""))
    elif kind == "json_check":
        config |= {"input": values.get("input", "") or OUTPUT, "required_keys": _words(values.get("required_keys", ""))}
        if values.get("schema", "").strip():
            try:
                config["schema"] = json.loads(values["schema"])
            except (ValueError, RecursionError) as exc:
                raise Invalid(
                    f"Grader {position + 1}: the schema isn't JSON ({exc}).", param=f"g{position}.schema"
                ) from None
    elif kind == "regex_check":
        config |= {k: values.get(k, "") for k in ("input", "pattern", "flags", "operation")}
        config["input"] = config["input"] or OUTPUT
    elif kind == "score_model":
        config |= {"model": values.get("model", "").strip(), "input": _messages(values)}
        config["range"] = [_number(values.get("range_min", "0")), _number(values.get("range_max", "1"))]
        config["pass_threshold"] = _number(values.get("pass_threshold", ""))
    elif kind == "label_model":
        config |= {"model": values.get("model", "").strip(), "input": _messages(values)}
        config |= {
            "labels": _words(values.get("labels", "")),
            "passing_labels": _words(values.get("passing_labels", "")),
        }
    return config


def _worded(exc: Invalid, configs: list[dict[str, Any]]) -> Invalid:
    """An error about testing_criteria[i].field, worded for the form: "Grader 2 (exact): …"."""
    match = re.match(r"testing_criteria\[(\d+)\]\.?(.*)", exc.param or "")
    if not match or int(match.group(1)) >= len(configs):
        return exc
    index, field = int(match.group(1)), match.group(2)
    name = configs[index].get("name") or configs[index].get("type")
    where = f" ({field})" if field else ""
    return Invalid(f"Grader {index + 1} “{name}”{where}: {exc.message}", code=exc.code, param=f"g{index}.{field}")


def graders_from_form(form: dict[str, str]) -> list[dict[str, Any]]:
    """Every grader of the form as a checked config; Invalid names the grader and its field."""
    configs = [grader_config(values, i) for i, values in enumerate(grader_values(form))]
    try:
        return validate_testing_criteria(configs)
    except Invalid as exc:
        raise _worded(exc, configs) from None


def grader_problems(form: dict[str, str]) -> list[dict[str, Any]]:
    """What is wrong with each grader so far (for the live check): one entry per grader, problem None when fine."""
    out: list[dict[str, Any]] = []
    for i, values in enumerate(grader_values(form)):
        entry: dict[str, Any] = {"index": i, "name": values.get("name", "").strip(), "type": values.get("type", "")}
        entry["field"] = entry["problem"] = None
        try:
            validate_testing_criteria([grader_config(values, i)])
        except Invalid as exc:
            match = re.match(r"(?:testing_criteria\[\d+\]|g\d+)\.?(.*)", exc.param or "")
            entry["field"] = (match.group(1) if match else "") or None
            entry["problem"] = exc.message.split(": ", 1)[-1] if exc.message.startswith("Grader ") else exc.message
        out.append(entry)
    names = [e["name"] for e in out]
    for entry in out:
        if entry["problem"] is None and names.count(entry["name"]) > 1:
            entry["field"], entry["problem"] = "name", "Another grader has this name: give each its own."
    return out


# -- the items of an eval made from an upload ---------------------------------------------------------------------
def items_file(settings: Settings, eval_id: str):
    """Where an eval made from an uploaded JSONL keeps its items (its runs send them as `file_content`)."""
    return eval_folder(settings, eval_id) / "items.jsonl"


def save_items(settings: Settings, eval_id: str, items: list[dict[str, Any]]) -> None:
    """Write the uploaded items whole before the file gets its name."""
    target = items_file(settings, eval_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    with partial.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(target)


def stored_items(settings: Settings, eval_id: str) -> list[dict[str, Any]] | None:
    """The items uploaded with an eval, or None when it was not made from an upload."""
    path = items_file(settings, eval_id)
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def create_eval_from_form(
    session: Session, settings: Settings, form: dict[str, str], upload: Iterable[bytes] | None
) -> Eval:
    """A new eval from the form: graders, and items from a dataset's split or the uploaded JSONL (bad lines named)."""
    graders = graders_from_form(form)
    if not graders:
        raise Invalid("Add at least one grader: it decides whether an answer passes.", param="graders")
    name = form.get("name", "").strip() or None
    if form.get("source") == "upload":
        if upload is None:
            raise Invalid("Choose a JSONL file of items to upload.", param="file")
        items = items_from_jsonl(upload)
        row = create_eval(session, settings, name=name, testing_criteria=graders)
        try:
            save_items(settings, row.id, items)
        except BaseException:
            session.delete(row)
            session.commit()
            raise
        return row
    raw = form.get("dataset_id", "").strip()
    if not raw.isdigit():
        raise Invalid("Pick the dataset the items come from.", param="dataset_id")
    split = form.get("split", "")
    if split not in SPLITS:
        raise Invalid("Pick the validation split, the training split or all examples.", param="split")
    return create_eval(session, settings, name=name, testing_criteria=graders, dataset_id=int(raw), split=split or None)


def _sampling(form: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("temperature", "max_completion_tokens", "seed"):
        text = form.get(key, "").strip()
        if text:
            out[key] = _number(text)
    return out


def run_from_form(session: Session, settings: Settings, eval_id: str, form: dict[str, str]) -> EvalRun:
    """Queue a run of the chosen model on the eval's items, with the prompt template when one is given."""
    row = get_eval(session, eval_id)
    data_source: dict[str, Any] = {"type": "completions", "sampling_params": _sampling(form)}
    prompt, system = form.get("prompt", "").strip(), form.get("system", "").strip()
    if prompt:
        template = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        data_source["input_messages"] = {"type": "template", "template": template}
    if row.dataset_id is None:
        items = stored_items(settings, row.id)
        if items is not None:
            data_source["source"] = {"type": "file_content", "content": [{"item": item} for item in items]}
        else:  # made through the API: its runs bring their items; a new one answers those the latest run answered
            latest = session.exec(
                select(EvalRun).where(col(EvalRun.eval_id) == row.id).order_by(col(EvalRun.created_at).desc())
            ).first()
            if latest is None:
                raise Invalid("This eval has no items of its own yet: start its first run through the API.")
            data_source["source"] = latest.data_source.get("source")
            if not prompt and latest.data_source.get("input_messages"):
                data_source["input_messages"] = latest.data_source["input_messages"]
    return create_run(
        session, settings, row.id, model=form.get("model", ""), data_source=data_source, name=form.get("name") or None
    )
