"""Bulk fixes on a real SQLite file: each fix's preview, apply (one revision, rev bumped, revalidated) and undo;
an undo after a later edit refuses; undoing newest first always works."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from app.datasets import fixes
from app.datasets.datasets import create_dataset, get_dataset
from app.datasets.examples import add_example, update_example
from app.datasets.importer import import_file
from app.errors import Conflict, Invalid, NotFound
from app.tables.dataset import Example
from tests.conftest import FIXTURES, SHARED

NAME = "daneel_shop_tools_validation_set.jsonl"
SHOP_TOOLS = FIXTURES / NAME if (FIXTURES / NAME).exists() else SHARED / "datasets" / NAME


def chat(user: str, answer: str, system: str = "You help.") -> dict:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def rows(session: Session, dataset_id: int) -> dict[int, dict]:
    """Every example's own columns, by id, read afresh."""
    session.expire_all()
    found = session.exec(select(Example).where(col(Example.dataset_id) == dataset_id)).all()
    return {
        e.id: {"record": e.to_record(), "split": e.split, "note": e.note, "position": e.position, "version": e.version}
        for e in found
    }


def rev(session: Session, dataset_id: int) -> int:
    session.expire_all()
    return get_dataset(session, dataset_id).rev


@pytest.fixture
def shop(session, settings) -> int:
    dataset = create_dataset(session, "shop tools")
    with SHOP_TOOLS.open("rb") as stream:
        import_file(session, dataset.id, stream, filename=NAME, settings=settings)
    return dataset.id


def test_the_shared_tool_dataset_gets_its_79_tool_arguments_fixed_and_the_fix_undone(session, shop):
    before = rows(session, shop)
    assert sum(not e.valid for e in session.exec(select(Example).where(Example.dataset_id == shop))) == 79

    preview = fixes.preview_fix(session, shop, "tool_arguments")
    assert (preview.n_examples, preview.n_changed, len(preview.diffs)) == (90, 79, 5)
    change = preview.diffs[0].changes[0]
    assert '"arguments": {"' in change.before and '"arguments": "{\\"' in change.after
    assert rows(session, shop) == before  # a preview writes nothing

    start = rev(session, shop)
    applied = fixes.apply_fix(session, shop, "tool_arguments")
    assert applied.n_changed == 79
    assert applied.message == "Wrote tool call arguments as JSON strings in 79 examples."
    assert rev(session, shop) == start + 1  # the report cache sees the change
    examples = session.exec(select(Example).where(Example.dataset_id == shop)).all()
    assert all(e.valid for e in examples)  # revalidated
    assert fixes.preview_fix(session, shop, "tool_arguments").n_changed == 0
    [revision] = fixes.list_revisions(session, shop)
    assert (revision.fix, revision.n_changed, revision.n_deleted) == ("tool_arguments", 79, 0)

    message = fixes.undo_revision(session, shop, applied.revision_id)
    assert message == f"Undid “{applied.message}”: restored 79 examples."
    assert rows(session, shop) == before  # content, split, note, position and version exactly as they were
    assert sum(not e.valid for e in session.exec(select(Example).where(Example.dataset_id == shop))) == 79
    assert rev(session, shop) == start + 2
    with pytest.raises(Conflict) as refused:
        fixes.undo_revision(session, shop, applied.revision_id)
    assert refused.value.code == "revision_undone"


def test_trailing_whitespace_preview_shows_it_and_apply_cuts_it(session):
    dataset = create_dataset(session, "spaces")
    keep = add_example(session, dataset.id, chat("Hi", "Hello."))
    spaced = add_example(session, dataset.id, chat("Hi  ", "Hello!\n\n"), split="train", note="n")
    parts = chat("Q", "A")
    parts["messages"][1]["content"] = [{"type": "text", "text": "Look \t"}]
    with_parts = add_example(session, dataset.id, parts)

    preview = fixes.preview_fix(session, dataset.id, "trailing_whitespace")
    assert (preview.n_examples, preview.n_changed) == (3, 2)
    [user, answer] = preview.diffs[0].changes
    assert (user.where, user.before, user.after) == ("message 2 (user)", "Hi␣␣", "Hi")
    assert (answer.before, answer.after) == ("Hello!↵↵", "Hello!")

    applied = fixes.apply_fix(session, dataset.id, "trailing_whitespace")
    assert applied.message == "Cut trailing whitespace in 2 examples."
    session.expire_all()
    assert session.get(Example, spaced.id).messages[2]["content"] == "Hello!"
    assert session.get(Example, spaced.id).version == 2
    assert session.get(Example, with_parts.id).messages[1]["content"] == [{"type": "text", "text": "Look"}]
    assert session.get(Example, keep.id).version == 1  # untouched

    fixes.undo_revision(session, dataset.id, applied.revision_id)
    session.expire_all()
    restored = session.get(Example, spaced.id)
    assert restored.messages[1]["content"] == "Hi  " and restored.version == 1 and restored.note == "n"


def test_a_fix_limited_to_some_examples_and_a_fix_with_nothing_to_do(session):
    dataset = create_dataset(session, "some")
    a = add_example(session, dataset.id, chat("A ", "a"))
    b = add_example(session, dataset.id, chat("B ", "b"))
    applied = fixes.apply_fix(session, dataset.id, "trailing_whitespace", [b.id])
    assert applied.n_changed == 1
    session.expire_all()
    assert session.get(Example, a.id).messages[1]["content"] == "A "
    assert session.get(Example, b.id).messages[1]["content"] == "B"

    nothing = fixes.apply_fix(session, dataset.id, "tool_arguments")
    assert (nothing.n_changed, nothing.revision_id) == (0, None)
    assert nothing.message.startswith("Nothing to change")
    assert len(fixes.list_revisions(session, dataset.id)) == 1
    with pytest.raises(NotFound):
        fixes.preview_fix(session, dataset.id, "no_such_fix")


def test_undo_after_a_later_edit_refuses_and_newest_first_always_works(session):
    dataset = create_dataset(session, "edits")
    example = add_example(session, dataset.id, chat("Hi ", "Hello. "))
    first = fixes.apply_fix(session, dataset.id, "trailing_whitespace", [example.id])
    session.expire_all()
    fixed = session.get(Example, example.id)
    record = fixed.to_record()
    record["messages"][2]["content"] = "Hello, edited. "
    update_example(session, example.id, record, fixed.version)

    with pytest.raises(Conflict) as refused:
        fixes.undo_revision(session, dataset.id, first.revision_id)
    assert refused.value.code == "revision_changed_since"
    assert f"ids {example.id}" in refused.value.message
    session.expire_all()
    assert session.get(Example, example.id).messages[2]["content"] == "Hello, edited. "  # nothing was restored

    second = fixes.apply_fix(session, dataset.id, "trailing_whitespace", [example.id])
    fixes.undo_revision(session, dataset.id, second.revision_id)
    session.expire_all()
    assert session.get(Example, example.id).messages[2]["content"] == "Hello, edited. "


def test_a_revision_of_another_dataset_is_not_found(session):
    one = create_dataset(session, "one")
    other = create_dataset(session, "other")
    add_example(session, one.id, chat("x ", "y"))
    applied = fixes.apply_fix(session, one.id, "trailing_whitespace")
    with pytest.raises(NotFound):
        fixes.undo_revision(session, other.id, applied.revision_id)


PII_ANSWER = "Write to jane.doe@acmecorp.io or call +44 20 7946 0958."
SECRET = "sk-proj-" + "Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"


def test_mask_pii_preview_never_shows_a_found_value_and_apply_masks_it(session):
    dataset = create_dataset(session, "pii")
    add_example(session, dataset.id, chat("How do I reach you?", PII_ANSWER))
    keyed = chat("Use my key", "Done.")
    keyed["messages"][1]["content"] = f"My key is {SECRET} please"
    keyed["messages"][2]["tool_calls"] = [
        {"id": "c1", "type": "function", "function": {"name": "mail", "arguments": '{"to": "jane.doe@acmecorp.io"}'}}
    ]
    secret = add_example(session, dataset.id, keyed)
    add_example(session, dataset.id, chat("Card 4242 4242 4242 4241?", "That number fails Luhn."))

    preview = fixes.preview_fix(session, dataset.id, "mask_pii")
    assert (preview.n_examples, preview.n_changed) == (3, 2)
    shown = repr(preview.diffs)
    assert "jane.doe@acmecorp.io" not in shown and SECRET not in shown
    assert "<EMAIL>" in shown and "<SECRET>" in shown

    applied = fixes.apply_fix(session, dataset.id, "mask_pii")
    assert applied.message == "Masked personal data and secrets in 2 examples."
    session.expire_all()
    messages = session.get(Example, secret.id).messages
    assert messages[1]["content"] == "My key is <SECRET> please"
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"to": "<EMAIL>"}'
    assert fixes.preview_fix(session, dataset.id, "mask_pii").n_changed == 0

    fixes.undo_revision(session, dataset.id, applied.revision_id)
    session.expire_all()
    assert session.get(Example, secret.id).messages[1]["content"] == f"My key is {SECRET} please"


def test_no_preview_shows_a_found_secret_and_neither_does_the_cluster_review(session):
    dataset = create_dataset(session, "secrets")
    add_example(session, dataset.id, chat("Keep it", f"My key is {SECRET} "))
    add_example(session, dataset.id, chat("Keep it", f"My key is {SECRET}!"))
    preview = fixes.preview_fix(session, dataset.id, "trailing_whitespace")
    assert preview.n_changed == 1 and SECRET not in repr(preview.diffs) and "␣" in repr(preview.diffs)
    _, [cluster] = fixes.review_clusters(session, dataset.id)
    assert SECRET not in repr([s.messages for s in cluster.examples])


def test_one_example_is_masked_alone(session):
    dataset = create_dataset(session, "one")
    a = add_example(session, dataset.id, chat("Mail me", PII_ANSWER))
    b = add_example(session, dataset.id, chat("Mail me too", PII_ANSWER))
    assert fixes.apply_fix(session, dataset.id, "mask_pii", [a.id]).n_changed == 1
    session.expire_all()
    assert "<EMAIL>" in session.get(Example, a.id).messages[2]["content"]
    assert "jane.doe@acmecorp.io" in session.get(Example, b.id).messages[2]["content"]


QUESTION = "What is the capital city of France, and which river runs through the middle of it?"
ANSWER = "The capital of France is Paris, and the river Seine runs right through the middle of the city."


def cluster_dataset(session) -> tuple[int, list[int]]:
    """A dataset of one near-duplicate cluster (three examples, across the split) and one other example."""
    dataset = create_dataset(session, "near")
    ids = [
        add_example(session, dataset.id, chat(QUESTION, ANSWER), split="train", note="first").id,
        add_example(session, dataset.id, chat(QUESTION.lower(), ANSWER + "!"), split="validation", note="second").id,
        add_example(session, dataset.id, chat(QUESTION + "?", ANSWER.replace("right", "straight")), split="train").id,
    ]
    add_example(session, dataset.id, chat("How many legs does a spider have?", "Eight legs, always eight."))
    return dataset.id, ids


def test_a_near_duplicate_cluster_keeps_one_and_undo_brings_the_others_back(session):
    dataset_id, ids = cluster_dataset(session)
    before = rows(session, dataset_id)
    total, [cluster] = fixes.review_clusters(session, dataset_id)
    assert total == 1 and [s.example.id for s in cluster.examples] == ids and cluster.leaks_split

    applied = fixes.keep_one(session, dataset_id, ids[1], ids)
    assert applied.message == f"Kept example {ids[1]} of a near-duplicate cluster, deleting 2 others."
    assert set(rows(session, dataset_id)) == set(before) - {ids[0], ids[2]}
    [revision] = fixes.list_revisions(session, dataset_id)
    assert (revision.n_changed, revision.n_deleted) == (0, 2)

    fixes.undo_revision(session, dataset_id, applied.revision_id)
    assert rows(session, dataset_id) == before  # the same ids, positions, splits and notes


def test_merge_folds_the_notes_into_the_kept_example(session):
    dataset_id, ids = cluster_dataset(session)
    applied = fixes.keep_one(session, dataset_id, ids[0], ids, merge=True)
    assert applied.message.startswith(f"Merged example {ids[0]}")
    session.expire_all()
    kept = session.get(Example, ids[0])
    assert kept.note == f"first\nsecond\nMerged with 2 near-duplicates (ids {ids[1]}, {ids[2]})."
    assert kept.version == 2
    fixes.undo_revision(session, dataset_id, applied.revision_id)
    session.expire_all()
    assert session.get(Example, ids[0]).note == "first" and session.get(Example, ids[2]) is not None


def test_the_bulk_near_duplicate_fix_keeps_the_first_of_each_cluster(session):
    dataset_id, ids = cluster_dataset(session)
    preview = fixes.preview_fix(session, dataset_id, "near_duplicates")
    assert (preview.n_clusters, preview.n_changed) == (1, 2)
    applied = fixes.apply_fix(session, dataset_id, "near_duplicates")
    assert applied.message == "Kept one example of each near-duplicate cluster, deleting 2 examples."
    assert ids[0] in rows(session, dataset_id) and ids[1] not in rows(session, dataset_id)
    with pytest.raises(Invalid) as refused:
        fixes.keep_one(session, dataset_id, ids[0], [ids[0]])
    assert "at least one other" in str(refused.value)
