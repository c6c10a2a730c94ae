"""Blind pairwise reviews of two runs: one vote per item both answered, shown in a random order, left or right.

- create_review(session, run_a_id, run_b_id, judge="human") -> PairwiseReview
- next_vote(session, review_id) -> ReviewItem | None       (the next unvoted item, in the stored random order)
- cast_vote(session, review_id, item_index, choice, reason="") -> PairwiseVote   (choice: a | b | tie)
- review_results(session, review_id) -> ReviewResults     (wins, losses and ties of A; win rate ± interval)
- judge_review(session, settings, chat_engine, review_id, judge_model) -> ReviewResults   (a model votes instead)
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from app.config import Settings
from app.engine.chat_types import ChatParams
from app.engine.inference import ChatEngine
from app.errors import Conflict, Invalid, NotFound
from app.evals.answering import Judges
from app.evals.compare import output_text, prompt_messages, run_items, same_eval_runs
from app.evals.stats import win_rate
from app.jobs.model_catalog import resolve_model
from app.tables import EvalRun, EvalRunItem, PairwiseReview, PairwiseVote
from app.tables.common import utcnow

CHOICES = ("a", "b", "tie")
SIDES = ("left", "right", "tie")
# Greedy and short: "1", "2" or "tie", with a little room for a model that adds a word.
JUDGE_PARAMS = ChatParams(temperature=0.0, top_p=1.0, max_tokens=16)


@dataclass(frozen=True)
class ReviewItem:
    """One item as the reviewer sees it: the prompt and two answers, by side only (which run is which stays hidden)."""

    review: PairwiseReview
    vote: PairwiseVote
    position: int  # 1-based, in the order shown
    total: int
    prompt: list[dict[str, str]]
    reference: str | None
    left: str
    right: str


@dataclass(frozen=True)
class ReviewResults:
    """A review's outcome for run A against run B, ties counted as half a win."""

    review: PairwiseReview
    run_a: EvalRun
    run_b: EvalRun
    wins: int
    losses: int
    ties: int
    pending: int
    rate: float | None
    interval: tuple[float, float] | None

    @property
    def voted(self) -> int:
        """Items with a choice."""
        return self.wins + self.losses + self.ties

    @property
    def total(self) -> int:
        """Items in the review."""
        return self.voted + self.pending

    @property
    def winner(self) -> str | None:
        """`a` or `b` when the interval leaves no doubt at 95%, `tie` when it does, None before any vote."""
        if self.interval is None:
            return None
        low, high = self.interval
        return "a" if low > 0.5 else "b" if high < 0.5 else "tie"


def _answered(row: EvalRunItem) -> bool:
    return row.status != "error" and not (row.sample or {}).get("error")


def create_review(
    session: Session, run_a_id: str, run_b_id: str, judge: str = "human", rng: random.Random | None = None
) -> PairwiseReview:
    """A review over every item both runs answered, in a random order, each with a random side for run A."""
    run_a, run_b = same_eval_runs(session, run_a_id, run_b_id)
    for run in (run_a, run_b):
        if not run.status.is_terminal:
            raise Conflict(f"The run {run.name or run.id} is still {run.status.value}: wait for it to end.")
    items_a, items_b = run_items(session, run_a.id), run_items(session, run_b.id)
    common = [i for i in sorted(set(items_a) & set(items_b)) if _answered(items_a[i]) and _answered(items_b[i])]
    if not common:
        raise Invalid("The two runs have no item that both answered: there is nothing to review.", param="b")
    rng = rng or random.SystemRandom()
    rng.shuffle(common)
    review = PairwiseReview(run_a_id=run_a.id, run_b_id=run_b.id, judge=judge.strip() or "human")
    session.add(review)
    session.flush()
    # Rows in the shuffled order: their ids are the order items are shown in.
    for index in common:
        session.add(PairwiseVote(review_id=review.id, item_index=index, a_first=rng.random() < 0.5))
        session.flush()
    session.commit()
    return review


def get_review(session: Session, review_id: str) -> PairwiseReview:
    """The review with that id; NotFound otherwise."""
    review = session.get(PairwiseReview, review_id)
    if review is None:
        raise NotFound(f"No review with id '{review_id}'.", code="review_not_found", param="review_id")
    return review


def reviews_of_eval(session: Session, eval_id: str) -> list[PairwiseReview]:
    """The reviews of an eval's runs, newest first."""
    run_ids = select(EvalRun.id).where(col(EvalRun.eval_id) == eval_id)
    query = select(PairwiseReview).where(col(PairwiseReview.run_a_id).in_(run_ids))
    return list(session.exec(query.order_by(col(PairwiseReview.created_at).desc())))


def _votes(session: Session, review_id: str) -> list[PairwiseVote]:
    return list(session.exec(select(PairwiseVote).where(col(PairwiseVote.review_id) == review_id).order_by("id")))


def _answers(session: Session, review: PairwiseReview, item_index: int) -> tuple[EvalRunItem, EvalRunItem]:
    rows = {}
    for run_id in (review.run_a_id, review.run_b_id):
        query = select(EvalRunItem).where(col(EvalRunItem.run_id) == run_id, col(EvalRunItem.item_index) == item_index)
        row = session.exec(query).first()
        if row is None:
            raise NotFound(f"The item {item_index} of run {run_id} is gone.", code="item_not_found")
        rows[run_id] = row
    return rows[review.run_a_id], rows[review.run_b_id]


def pair_of(session: Session, review: PairwiseReview, vote: PairwiseVote, position: int, total: int) -> ReviewItem:
    """A vote's item as shown: run A's answer on the side its stored order says."""
    item_a, item_b = _answers(session, review, vote.item_index)
    text_a, text_b = output_text(item_a.sample), output_text(item_b.sample)
    reference = (item_a.item or {}).get("reference")
    return ReviewItem(
        review=review,
        vote=vote,
        position=position,
        total=total,
        prompt=prompt_messages(item_a.item, item_a.sample),
        reference=reference if isinstance(reference, str) else None,
        left=text_a if vote.a_first else text_b,
        right=text_b if vote.a_first else text_a,
    )


def next_vote(session: Session, review_id: str) -> ReviewItem | None:
    """The first item without a choice, in the review's order; None once every item has one."""
    review = get_review(session, review_id)
    votes = _votes(session, review.id)
    for position, vote in enumerate(votes, start=1):
        if vote.choice is None:
            return pair_of(session, review, vote, position, len(votes))
    return None


def choice_for_side(session: Session, review_id: str, item_index: int, side: str) -> str:
    """Turn what the reviewer clicked (left, right, tie) into a choice between the runs (a, b, tie)."""
    if side not in SIDES:
        raise Invalid("Pick left, right or tie.", param="side")
    if side == "tie":
        return "tie"
    vote = _vote(session, review_id, item_index)
    return "a" if (side == "left") == vote.a_first else "b"


def _vote(session: Session, review_id: str, item_index: int) -> PairwiseVote:
    query = select(PairwiseVote).where(
        col(PairwiseVote.review_id) == review_id, col(PairwiseVote.item_index) == item_index
    )
    vote = session.exec(query).first()
    if vote is None:
        raise NotFound(f"The item {item_index} is not part of this review.", code="vote_not_found", param="item_index")
    return vote


def vote_side(session: Session, review_id: str, item_index: int, side: str) -> PairwiseVote:
    """Record what the reviewer clicked (left, right or tie) as a choice between the runs."""
    return cast_vote(session, review_id, item_index, choice_for_side(session, review_id, item_index, side))


def cast_vote(session: Session, review_id: str, item_index: int, choice: str, reason: str = "") -> PairwiseVote:
    """Record (or change) the choice for one item; the review is completed once every item has one."""
    if choice not in CHOICES:
        raise Invalid("The choice must be a, b or tie.", param="choice")
    review = get_review(session, review_id)
    vote = _vote(session, review.id, item_index)
    vote.choice = choice
    vote.reason = reason[:2000]
    vote.created_at = utcnow()
    session.add(vote)
    session.flush()
    pending = session.exec(
        select(func.count())
        .select_from(PairwiseVote)
        .where(col(PairwiseVote.review_id) == review.id, col(PairwiseVote.choice).is_(None))
    ).one()
    review.status = "completed" if pending == 0 else "open"
    session.add(review)
    session.commit()
    return vote


def review_results(session: Session, review_id: str) -> ReviewResults:
    """Wins, losses and ties of run A, and its win rate (ties as half) with the 95% interval."""
    review = get_review(session, review_id)
    run_a, run_b = session.get(EvalRun, review.run_a_id), session.get(EvalRun, review.run_b_id)
    if run_a is None or run_b is None:
        raise NotFound("A run of this review is gone.", code="run_not_found")
    choices = [v.choice for v in _votes(session, review.id)]
    wins, losses, ties = choices.count("a"), choices.count("b"), choices.count("tie")
    rate, interval = _win_rate(wins, losses, ties)
    return ReviewResults(review, run_a, run_b, wins, losses, ties, choices.count(None), rate, interval)


def _win_rate(wins: int, losses: int, ties: int) -> tuple[float | None, tuple[float, float] | None]:
    if wins + losses + ties == 0:
        return None, None
    result = win_rate(wins, losses, ties)
    return result.value, (result.low, result.high)


def votes_shown(session: Session, review_id: str) -> list[tuple[PairwiseVote, ReviewItem]]:
    """Every vote with its item, in the order shown (the results page lists them, names revealed)."""
    review = get_review(session, review_id)
    votes = _votes(session, review.id)
    return [(v, pair_of(session, review, v, n, len(votes))) for n, v in enumerate(votes, start=1)]


JUDGE_SYSTEM = (
    "You compare two answers to the same conversation and decide which one better answers its last message: "
    "correct, complete, following the instructions and the expected format. Length alone is no merit. "
    "Reply with one word only: 1 if Answer 1 is better, 2 if Answer 2 is better, tie if they are equally good."
)
_VERDICT = re.compile(r"\b(1|2|tie)\b", re.IGNORECASE)


def judge_messages(pair: ReviewItem, first: str, second: str) -> list[dict[str, str]]:
    """The judge's prompt for one item: the conversation, the reference when there is one, then the two answers."""
    conversation = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in pair.prompt)
    parts = [f"Conversation:\n{conversation}"]
    if pair.reference:
        parts.append(f"Reference answer (written by a person):\n{pair.reference}")
    parts += [f"Answer 1:\n{first}", f"Answer 2:\n{second}", "Which answer is better? Reply 1, 2 or tie."]
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_verdict(reply: str) -> str | None:
    """`1`, `2` or `tie` from the judge's reply (its first such word), None when it names none."""
    found = _VERDICT.search(reply)
    return found.group(1).lower() if found else None


def _order_choice(verdict: str | None, a_first: bool) -> str | None:
    if verdict in (None, "tie"):
        return verdict
    return "a" if (verdict == "1") == a_first else "b"


def judge_review(
    session: Session,
    settings: Settings,
    chat_engine: ChatEngine,
    review_id: str,
    judge_model: str,
    both_orders: bool = True,
) -> ReviewResults:
    """Let a model vote on every item still without a choice; with both_orders it sees each pair both ways round
    and a verdict that flips with the order (position bias) counts as a tie. It chats the way the executor's judge
    graders do (app/evals/answering.py); a judge that cannot answer stops here, the votes cast so far kept."""
    review = get_review(session, review_id)
    resolve_model(session, settings, judge_model)  # NotFound now, before any item is judged
    bind = session.get_bind()
    judges = Judges(settings, bind if isinstance(bind, Engine) else bind.engine, chat_engine)
    try:
        votes = _votes(session, review.id)
        for position, vote in enumerate(votes, start=1):
            if vote.choice is None:
                _judge_one(
                    session, judges, judge_model, pair_of(session, review, vote, position, len(votes)), both_orders
                )
    finally:
        judges.close()
    review.judge = judge_model
    session.add(review)
    session.commit()
    return review_results(session, review.id)


def _judge_one(session: Session, judges: Judges, judge_model: str, pair: ReviewItem, both_orders: bool) -> None:
    vote = pair.vote
    text_a, text_b = (pair.left, pair.right) if vote.a_first else (pair.right, pair.left)
    choices, replies = [], []
    for a_first in [True, False] if both_orders else [vote.a_first]:
        first, second = (text_a, text_b) if a_first else (text_b, text_a)
        reply = judges.ask(judge_model, judge_messages(pair, first, second), JUDGE_PARAMS)
        replies.append(f"{'A' if a_first else 'B'} first: {reply.strip()[:300]}")
        choices.append(_order_choice(parse_verdict(reply), a_first))
    known = [c for c in choices if c is not None]
    choice = known[0] if known and all(c == known[0] for c in known) else "tie"
    cast_vote(session, pair.review.id, vote.item_index, choice, reason=f"{judge_model}: " + " | ".join(replies))
