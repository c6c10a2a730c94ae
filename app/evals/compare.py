"""Two runs of one eval side by side: pass rates per grader with their intervals, and the items that changed outcome.

- grader_rates(run) -> list[Rate]            (from the run's stored counts: cheap, for tables of runs)
- compare_runs(session, run_a_id, run_b_id) -> RunComparison
- output_text(sample), prompt_messages(item, sample): what a page shows of an item
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.errors import Invalid, NotFound
from app.evals.stats import wilson_interval
from app.tables import EvalRun, EvalRunItem

OVERALL = "All graders"  # the row of item-level outcomes (an item passes when every grader passed)


@dataclass(frozen=True)
class Rate:
    """A pass rate out of the graded items (errors are counted apart) with its Wilson 95% interval."""

    name: str
    passed: int
    failed: int
    errored: int = 0

    @property
    def graded(self) -> int:
        """Items that got a verdict (passed or failed)."""
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        """The share of graded items that passed; None when nothing was graded."""
        return self.passed / self.graded if self.graded else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The Wilson 95% interval of the rate; None when nothing was graded."""
        return wilson_interval(self.passed, self.graded) if self.graded else None


@dataclass(frozen=True)
class RatePair:
    """One grader's rate in run A and in run B (None where that run has no such grader)."""

    name: str
    a: Rate | None
    b: Rate | None

    @property
    def delta(self) -> float | None:
        """B's rate minus A's, when both have one."""
        if self.a is None or self.b is None or self.a.rate is None or self.b.rate is None:
            return None
        return self.b.rate - self.a.rate


def verdicts(row: EvalRunItem) -> dict[str, bool | None]:
    """Each grader's verdict on an item: passed, failed, or None when the grader could not grade it."""
    out: dict[str, bool | None] = {}
    for result in row.results or []:
        out[str(result.get("name", ""))] = None if result.get("error") else bool(result.get("passed"))
    return out


@dataclass(frozen=True)
class ChangedItem:
    """An item whose outcome differs between the runs (the item's, or a grader's), with both outputs."""

    item_index: int
    item: dict[str, Any]
    a: EvalRunItem
    b: EvalRunItem

    @property
    def flipped(self) -> list[str]:
        """The graders whose verdict differs between the runs."""
        a, b = verdicts(self.a), verdicts(self.b)
        return [name for name in dict.fromkeys([*a, *b]) if a.get(name) != b.get(name)]

    @property
    def direction(self) -> str:
        """`better` (B passes where A did not, or more of its graders do), `worse` (the reverse), or `changed`
        (errors involved, or as many graders flipped each way)."""
        if self.a.status != self.b.status:
            if self.b.status == "pass":
                return "better"
            if self.a.status == "pass":
                return "worse"
            return "changed"
        gained = sum(1 for v in verdicts(self.b).values() if v) - sum(1 for v in verdicts(self.a).values() if v)
        return "better" if gained > 0 else "worse" if gained < 0 else "changed"


@dataclass
class RunComparison:
    """What the compare page shows."""

    run_a: EvalRun
    run_b: EvalRun
    rates: list[RatePair]
    n_common: int
    changed: list[ChangedItem] = field(default_factory=list)

    def count(self, direction: str) -> int:
        """How many changed items went that way (better, worse, changed)."""
        return sum(1 for c in self.changed if c.direction == direction)


def overall_rate(run: EvalRun) -> Rate:
    """Item-level outcomes of a run from its result counts: passed, failed, errored."""
    counts = run.result_counts or {}
    return Rate(
        OVERALL, int(counts.get("passed", 0)), int(counts.get("failed", 0)), errored=int(counts.get("errored", 0))
    )


def grader_rates(run: EvalRun) -> list[Rate]:
    """The run's overall rate, then one per grader, from the counts the run keeps as it goes."""
    rates = [overall_rate(run)]
    for entry in run.per_testing_criteria_results or []:
        name = str(entry.get("testing_criteria", ""))
        rates.append(Rate(name, int(entry.get("passed", 0)), int(entry.get("failed", 0))))
    return rates


def _rates_from_items(items: list[EvalRunItem]) -> list[Rate]:
    """Rates computed over the given items only (the items both runs have, so the two sides count alike)."""
    status = {s: sum(1 for i in items if i.status == s) for s in ("pass", "fail", "error")}
    rates = [Rate(OVERALL, status["pass"], status["fail"], errored=status["error"])]
    per: dict[str, list[int]] = {}
    for item in items:
        for result in item.results or []:
            counts = per.setdefault(str(result.get("name", "")), [0, 0, 0])
            if result.get("error"):
                counts[2] += 1
            elif result.get("passed"):
                counts[0] += 1
            else:
                counts[1] += 1
    rates += [Rate(name, p, f, errored=e) for name, (p, f, e) in per.items()]
    return rates


def get_run_or_404(session: Session, run_id: str, param: str = "run_id") -> EvalRun:
    """The run with that id; NotFound naming the parameter otherwise."""
    run = session.get(EvalRun, run_id)
    if run is None:
        raise NotFound(f"No eval run with id '{run_id}'.", code="run_not_found", param=param)
    return run


def run_items(session: Session, run_id: str) -> dict[int, EvalRunItem]:
    """Every stored item of a run by its index."""
    rows = session.exec(select(EvalRunItem).where(col(EvalRunItem.run_id) == run_id))
    return {row.item_index: row for row in rows}


def same_eval_runs(session: Session, run_a_id: str, run_b_id: str) -> tuple[EvalRun, EvalRun]:
    """Both runs, refused unless they are two different runs of one eval (items match by index only then)."""
    run_a = get_run_or_404(session, run_a_id, "a")
    run_b = get_run_or_404(session, run_b_id, "b")
    if run_a.id == run_b.id:
        raise Invalid("Pick two different runs to compare.", param="b")
    if run_a.eval_id != run_b.eval_id:
        raise Invalid("These runs belong to different evals: only runs of the same eval can be compared.", param="b")
    return run_a, run_b


def pick_pair(
    session: Session, eval_id: str, a: str = "", b: str = "", runs: list[str] | None = None
) -> tuple[str, str]:
    """The two runs to compare, as (A, B): given as a and b, or as two ticked runs (the older one is A)."""
    if not (a and b):
        chosen = [r for r in runs or [] if r]
        if len(chosen) != 2:
            raise Invalid("Select exactly two runs to compare.", param="run")
        pair = sorted((get_run_or_404(session, r, "run") for r in chosen), key=lambda r: (r.created_at, r.id))
        a, b = pair[0].id, pair[1].id
    for run_id, param in ((a, "a"), (b, "b")):
        if get_run_or_404(session, run_id, param).eval_id != eval_id:
            raise NotFound(f"No eval run with id '{run_id}' in this eval.", code="run_not_found", param=param)
    return a, b


def compare_runs(session: Session, run_a_id: str, run_b_id: str) -> RunComparison:
    """Pass rates of both runs over the items both have, and the items whose outcome, or a grader's verdict,
    changed from A to B."""
    run_a, run_b = same_eval_runs(session, run_a_id, run_b_id)
    items_a, items_b = run_items(session, run_a.id), run_items(session, run_b.id)
    common = sorted(set(items_a) & set(items_b))
    rates_a = {r.name: r for r in _rates_from_items([items_a[i] for i in common])}
    rates_b = {r.name: r for r in _rates_from_items([items_b[i] for i in common])}
    names = list(rates_a) + [n for n in rates_b if n not in rates_a]
    pairs = [RatePair(n, rates_a.get(n), rates_b.get(n)) for n in names]
    changed = [
        ChangedItem(i, items_a[i].item or {}, items_a[i], items_b[i])
        for i in common
        if items_a[i].status != items_b[i].status or verdicts(items_a[i]) != verdicts(items_b[i])
    ]
    return RunComparison(run_a, run_b, pairs, len(common), changed)


def output_text(sample: dict[str, Any] | None) -> str:
    """The model's answer in a stored sample: its output messages' text, joined."""
    parts = []
    for message in (sample or {}).get("output") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


def prompt_messages(item: dict[str, Any] | None, sample: dict[str, Any] | None) -> list[dict[str, str]]:
    """The conversation the model was given: the sample's input when stored, else the item's messages."""
    messages = (sample or {}).get("input") or (item or {}).get("messages") or []
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        out.append({"role": str(message.get("role", "")), "content": "" if content is None else str(content)})
    return out
