"""What the job pages need: the filtered list, the new fine-tune form (values, estimate, launch) and job actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from app.config import Settings
from app.datasets.validation.estimate_words import estimate_rows
from app.datasets.validation.launch import launch_check
from app.datasets.validation.modeltable import default_model, load_table, resolve_model
from app.datasets.validation.report import ReportCache
from app.engine.catalog import BaseModelInfo, list_base_models
from app.errors import Conflict, Invalid, NotFound
from app.jobs import monitoring, naming
from app.jobs.jobs import (
    JobRequest,
    cancel_job,
    create_job,
    delete_tuned_model,
    get_job,
    list_checkpoints,
    list_jobs,
    rerun_job,
)
from app.jobs.method_form import dataset_kind, method_request, method_section
from app.providers.base import HYPERPARAMETERS
from app.providers.registry import provider_names
from app.settings.maintenance import maintenance_enabled
from app.settings.store import OPENAI_API_KEY, get_value
from app.tables import Dataset, Eval, Example, Job, JobStatus, Snapshot, TunedModel
from app.tables.common import fits_db_int

PAID_PROVIDERS = ("openai",)
LIST_LIMIT = 100
EVALS_OFFERED = 100  # existing evals listed in the form, newest first
MAKE_EVAL = "validation"  # eval_choice: make an eval from the validation examples at launch (app.evals.job_evals)
NO_EVAL = "none"


@dataclass(frozen=True)
class EvalSource:
    """Where an eval made at launch takes its items: a dataset's split, and how many examples that is."""

    dataset_id: int
    split: str  # validation (the training dataset's held-out split) | all (a separate validation dataset)
    n_examples: int


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number is None or fits_db_int(number) else None  # too large to be any row's id


def jobs_overview(
    session: Session, *, status: str = "", provider: str = "", dataset_id: str = "", selected: str = ""
) -> dict:
    """The jobs list context: filtered jobs (via the jobs service), their friendly names and ages, dataset names,
    the selected job and whether any job is live."""
    jobs, has_more = list_jobs(
        session,
        status=status or None,
        provider=provider or None,
        dataset_id=_int_or_none(dataset_id),
        after=None,
        limit=LIST_LIMIT,
        metadata=None,
    )
    datasets = session.exec(select(Dataset).order_by(Dataset.name)).all()
    return {
        "jobs": jobs,
        "has_more": has_more,
        "datasets": datasets,
        "dataset_names": {d.id: d.name for d in datasets},
        "filters": {"status": status, "provider": provider, "dataset_id": dataset_id},
        "statuses": list(JobStatus),
        "providers": provider_names(),
        "active": any(not j.status.is_terminal for j in jobs),
        "names": naming.job_names(session, jobs),
        "ages": {j.id: naming.relative_time(j.created_at) for j in jobs},
        "selected": selected,
        "counts": {s.value: sum(1 for j in jobs if j.status == s) for s in JobStatus},
    }


def base_models(settings: Settings, provider: str) -> list[str]:
    """Base models offered for a provider: the local engine's catalog, or the model table's OpenAI models."""
    if provider == "local":
        return [m.name for m in list_base_models(settings)]
    return [m["name"] for m in load_table()["models"] if m.get("provider") == provider]


def form_values(values: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The form's values with defaults filled in (strings, exactly as typed, so nothing is lost on a refusal)."""
    out = {k: ("" if v is None else str(v)) for k, v in values.items() if k != "csrf_token"}
    out.setdefault("provider", "local")
    out.setdefault("validation", "split")
    if not out.get("model"):
        out["model"] = settings.default_base_model if out["provider"] == "local" else ""
    for key in HYPERPARAMETERS:
        out.setdefault(key, "auto")
    return out


def parse_hyperparameters(values: dict[str, Any]) -> dict[str, Any]:
    """Each hyperparameter as "auto" or a positive number; Invalid names the field that is wrong."""
    out: dict[str, Any] = {}
    for key in HYPERPARAMETERS:
        raw = str(values.get(key, "auto") or "auto").strip().lower()
        if raw == "auto":
            out[key] = "auto"
            continue
        try:
            number = float(raw) if key == "learning_rate_multiplier" else int(raw)
        except ValueError:
            raise Invalid(f'{key.replace("_", " ")} must be "auto" or a number; got {raw!r}.', param=key) from None
        if number <= 0:
            raise Invalid(f"{key.replace('_', ' ')} must be greater than 0.", param=key)
        out[key] = number
    return out


def job_request_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The form as keyword arguments of the jobs service's JobRequest."""
    dataset_id = _int_or_none(values.get("dataset_id"))
    if dataset_id is None:
        raise Invalid("Choose a dataset to train on.", param="dataset_id")
    validation = values.get("validation") or "split"
    validation_dataset_id = None
    if validation not in ("split", "none"):
        validation_dataset_id = _int_or_none(validation)
        if validation_dataset_id is None:
            raise Invalid("Choose the validation split or another dataset.", param="validation")
    seed = values.get("seed", "").strip() if isinstance(values.get("seed"), str) else values.get("seed")
    if seed not in (None, "") and _int_or_none(seed) is None:
        raise Invalid("Seed must be a whole number.", param="seed")
    return {
        "dataset_id": dataset_id,
        "validation_dataset_id": validation_dataset_id,
        "use_validation_split": validation == "split",
        "provider": values.get("provider") or "local",
        "model": (values.get("model") or "").strip(),
        "hyperparameters": parse_hyperparameters(values),
        "suffix": (values.get("suffix") or "").strip() or None,
        "seed": _int_or_none(seed),
        "method": method_request(values),
    }


def launch_preview(
    session: Session, settings: Settings, values: dict[str, Any], report_cache: ReportCache | None = None
) -> dict[str, Any] | None:
    """The validation report's launch check for the form's values: estimate (with labelled rows), refusals and
    warnings."""
    dataset_id = _int_or_none(values.get("dataset_id"))
    if dataset_id is None:
        return None
    try:
        fields = job_request_fields(values)
        model = fields["model"] or (settings.default_base_model if fields["provider"] == "local" else "")
        if not model:
            model = default_model()
        check = launch_check(
            session,
            dataset_id,
            model,
            validation_dataset_id=fields["validation_dataset_id"],
            split="train",
            settings=settings,
            cache=report_cache,
            hyperparameters=fields["hyperparameters"],
        )
    except (Invalid, NotFound) as exc:
        return {"error": exc.message, "estimate": None, "rows": [], "refusals": [], "warnings": []}
    details = check.as_dict()
    report = check.report
    return {
        "error": None,
        "estimate": details.get("estimate"),
        "rows": estimate_rows(check.estimate, report.model if report else None, exact=bool(report and report.exact)),
        "refusals": [f.message for f in check.refusals],
        "warnings": [f.message for f in check.warnings],
    }


def eval_source(session: Session, values: dict[str, Any]) -> EvalSource | None:
    """The validation examples an eval made at launch would use: the separate validation dataset when one is chosen,
    else the training dataset's validation split; None when there are none."""
    dataset_id = _int_or_none(values.get("dataset_id"))
    validation = values.get("validation") or "split"
    if validation not in ("split", "none"):
        source, split = _int_or_none(validation), "all"
        query = select(func.count()).select_from(Example).where(Example.dataset_id == source)
    else:
        source, split = dataset_id, "validation"
        query = (
            select(func.count()).select_from(Example).where(Example.dataset_id == source, Example.split == "validation")
        )
    if source is None:
        return None
    n = session.exec(query).one()
    return EvalSource(source, split, n) if n else None


def eval_choice(values: dict[str, Any]) -> str:
    """The form's "Evaluate each checkpoint" choice: MAKE_EVAL, NO_EVAL or an existing eval's id."""
    return str(values.get("eval_choice") or NO_EVAL).strip() or NO_EVAL


def _eval_section(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """The eval choice with its default: on (an eval from the validation examples) when there are any. A choice
    made for one dataset and validation source is reset to the default when either changes."""
    source = eval_source(session, values)
    signature = f"{values.get('dataset_id', '')}:{values.get('validation', '')}"
    if not values.get("eval_choice") or values.get("eval_for") != signature:
        values["eval_choice"] = MAKE_EVAL if source else NO_EVAL
    evals = session.exec(select(Eval).order_by(col(Eval.created_at).desc()).limit(EVALS_OFFERED)).all()
    return {"source": source, "signature": signature, "evals": evals}


def model_for_provider(settings: Settings, provider: str, model: str) -> str:
    """The base model to show after the provider changed: the provider's default when `model` belongs to another
    provider (SmolLM2 under OpenAI, gpt-4o-mini under local); a name typed for this provider stays."""
    offered = base_models(settings, provider)
    if not model or model in offered:
        return model or (offered[0] if offered else "")
    try:
        belongs = resolve_model(model, settings).provider
    except Invalid:
        return model  # a name the table does not know: the person's own choice
    if belongs == provider:
        return model
    if provider == "local":
        return settings.default_base_model
    table_default = default_model()
    return table_default if table_default in offered else (offered[0] if offered else model)


def form_context(
    session: Session, settings: Settings, values: dict[str, Any], report_cache: ReportCache | None = None
) -> dict[str, Any]:
    """Everything the new fine-tune form shows for the given values (the base model follows a provider change)."""
    values = form_values(values, settings)
    provider = values["provider"]
    values["model"] = model_for_provider(settings, provider, values["model"])
    method = method_section(dataset_kind(session, _int_or_none(values.get("dataset_id"))), values)
    eval_section = _eval_section(session, values)
    return {
        "values": values,
        "eval_section": eval_section,
        "method_section": method,
        "preview": launch_preview(session, settings, values, report_cache),
        "datasets": session.exec(select(Dataset).order_by(Dataset.name)).all(),
        "providers": provider_names(),
        "base_models": base_models(settings, provider),
        "paid": provider in PAID_PROVIDERS,
        "openai_ready": bool(get_value(session, OPENAI_API_KEY) or settings.openai_api_key),
    }


def _ticked(value: Any) -> bool:
    return value in ("on", "1", "true", "yes")


def launch(
    session: Session,
    settings: Settings,
    values: dict[str, Any],
    report_cache: ReportCache | None = None,
    eval_id: str | None = None,
) -> Job:
    """Create the job; a paid provider needs the "I understand this costs money" box ticked. `eval_id`: the eval
    made for this launch (app.evals.job_evals), else the form's choice of an existing eval, if any."""
    values = form_values(values, settings)
    fields = job_request_fields(values)
    if fields["provider"] in PAID_PROVIDERS and not _ticked(values.get("confirm_paid")):
        raise Invalid(
            "This provider bills your account. Tick the confirmation box to launch.",
            param="confirm_paid",
            code="confirmation_required",
        )
    choice = eval_choice(values)
    if eval_id is None and choice == MAKE_EVAL:
        # Making an eval belongs to app.evals (above jobs): the form is sent to its door, POST /jobs/new.
        raise Invalid(
            "An eval from the validation split is made by POST /jobs/new; here give an existing eval's id.",
            param="eval_choice",
        )
    if eval_id is None and choice != NO_EVAL:
        eval_id = choice
    request = JobRequest(**fields, accept_warnings=_ticked(values.get("accept_warnings")), eval_id=eval_id)
    return create_job(session, settings, request, report_cache)


def job_page_context(session: Session, job_id: str) -> dict[str, Any]:
    """The job page: summary, recent events, metrics series, checkpoints and whether actions are allowed."""
    job = get_job(session, job_id)
    events = monitoring.recent_events(session, job_id)
    checkpoints = list_checkpoints(session, job_id)
    summary = monitoring.job_summary(session, job)
    return {
        "job": job,
        "name": naming.job_names(session, [job])[job.id],
        "summary": summary,
        "events": events,
        "after_seq": events[-1].seq if events else 0,
        "points": monitoring.metric_series(session, job_id),
        "checkpoints": checkpoints,
        "checkpoint_metrics": monitoring.checkpoint_metric_keys(checkpoints),
        "tuned_model": session.get(TunedModel, job.fine_tuned_model) if job.fine_tuned_model else None,
        "maintenance": maintenance_enabled(session),
    }


def job_split_context(session: Session, job_id: str, *, with_list: bool = True) -> dict[str, Any]:
    """The jobs page with one job selected: its page context, and the list beside it unless only the job is wanted."""
    ctx = job_page_context(session, job_id)
    if with_list:
        ctx.update(jobs_overview(session, selected=job_id))
        ctx["list_query"] = f"selected={job_id}"
    return ctx


def cancel(session: Session, settings: Settings, job_id: str) -> Job:
    """Cancel a job through the jobs service (which refuses while maintenance is off)."""
    return cancel_job(session, job_id)


def rerun(session: Session, settings: Settings, job_id: str) -> Job:
    """A new job with the same settings."""
    return rerun_job(session, settings, job_id)


def delete_job_model(session: Session, settings: Settings, job_id: str) -> None:
    """Delete the tuned model a job produced (the jobs service refuses while maintenance is off)."""
    job = get_job(session, job_id)
    if not job.fine_tuned_model:
        raise Invalid("This job has no tuned model to delete.", param="job_id")
    model = session.get(TunedModel, job.fine_tuned_model)
    if model is not None and model.deleted_at is not None:
        when = model.deleted_at.strftime("%Y-%m-%d %H:%M")
        raise Conflict(f"The tuned model {model.id} was already deleted on {when} UTC.", code="model_deleted")
    delete_tuned_model(session, settings, job.fine_tuned_model)


def base_models_view(settings: Settings) -> list[BaseModelInfo]:
    """The local base models with their architecture and the CPU fast paths that serve them."""
    return list_base_models(settings)


def tuned_models_view(session: Session) -> list[dict[str, Any]]:
    """Tuned models (not deleted), newest first, with their job, base model, dataset and snapshot."""
    rows = session.exec(
        select(TunedModel).where(col(TunedModel.deleted_at).is_(None)).order_by(col(TunedModel.created_at).desc())
    ).all()
    names = naming.model_names(session, [m.id for m in rows])
    out: list[dict[str, Any]] = []
    for model in rows:
        job = session.get(Job, model.job_id) if model.job_id else None
        snapshot = session.get(Snapshot, job.training_snapshot_id) if job and job.training_snapshot_id else None
        dataset = session.get(Dataset, job.dataset_id) if job and job.dataset_id else None
        name = names.get(model.id, model.id)
        out.append({"model": model, "name": name, "job": job, "snapshot": snapshot, "dataset": dataset})
    return out


def delete_model(session: Session, settings: Settings, model_id: str) -> None:
    """Delete a tuned model by id (the jobs service refuses while maintenance is off)."""
    delete_tuned_model(session, settings, model_id)


def deleted_model(session: Session, model_id: str) -> TunedModel | None:
    """The tuned model with this id if it was deleted (for the "deleted" message), else None."""
    model = session.get(TunedModel, model_id) if model_id else None
    return model if model is not None and model.deleted_at is not None else None
