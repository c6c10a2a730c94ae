"""Each example's near-duplicate signature is stored with its row (migration 0011): the import writes the one
near_duplicates.signatures makes of its text, the report reads it instead of the text, a signature whose tag is not
the row's content hash is recomputed, ORM edits clear it and copies keep it (issue #21)."""

from __future__ import annotations

import io
import json
import marshal
from concurrent.futures import Future

import numpy as np
import pytest
from sqlalchemy import select, text

from app.datasets import examples, import_signing, import_stream, import_tokens
from app.datasets.datasets import create_dataset, duplicate_dataset
from app.datasets.import_rows import ROW_FIELDS
from app.datasets.importer import import_jsonl
from app.datasets.quality import stored_signatures
from app.datasets.quality.near_duplicates import comparable_text, find_clusters, signatures
from app.datasets.quality.stored_signatures import FORMAT, STORED_BYTES, unpack, unpack_many
from app.datasets.validation import report_quality
from app.datasets.validation.checks import content_hash
from app.datasets.validation.report_quality import QualityMemo, dataset_clusters
from app.datasets.validation.report_rows import read_state
from app.tables.dataset import EXAMPLES, Example
from tests.conftest import FIXTURES
from tests.quality.test_near_duplicates_and_outliers import BASE, edited
from tests.quality.test_quality_report import planted
from tests.unit.test_import_tokens import HELPER, mixed_file, ready_helper, record_submits

T = EXAMPLES.c


def jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def rows(session, dataset_id: int) -> list[tuple[int, list, str, bytes | None]]:
    """(id, messages, content hash, stored signature) of each example, in position order."""
    session.expire_all()
    query = select(Example).where(Example.dataset_id == dataset_id).order_by(Example.position)
    return [(e.id, e.messages, e.content_hash, e.near_signature) for e in session.scalars(query)]


def expected(messages: list, digest: str) -> bytes:
    """What the stored value must be: the format, the hash's first 8 bytes, signatures() of the text."""
    signature = signatures([comparable_text(messages)])[0].astype("<u4").tobytes()
    return FORMAT + bytes.fromhex(digest[:16]) + signature


def assert_signed_as_signatures_would(session, dataset_id: int) -> None:
    found = rows(session, dataset_id)
    assert found and all(stored == expected(messages, digest) for _, messages, digest, stored in found)


def clusters_from_text(session, dataset_id: int) -> list[list[int]]:
    """The report's clusters as they were before 0011: every text read and signed."""
    session.execute(text("UPDATE examples SET near_signature = NULL WHERE dataset_id = :d"), {"d": dataset_id})
    session.commit()
    return [c.example_ids for c in dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))]


@pytest.fixture
def helper_signs(monkeypatch):
    """Imports start their helper process at once (signing happens only there), made ready before going on."""
    monkeypatch.setattr(import_tokens, "PROCESS_AFTER", 0)
    ready_helper(monkeypatch)


def test_the_helper_reads_the_content_hash_where_the_rows_keep_it():
    assert ROW_FIELDS.index("content_hash") == import_tokens._CONTENT_HASH


def test_an_import_stores_the_signature_near_duplicates_makes_of_each_text(session, monkeypatch, helper_signs):
    monkeypatch.setattr(import_stream, "BATCH", 7)  # several blocks, signed apart
    dataset = create_dataset(session, "signed")
    result = import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    assert result.imported == 101
    assert_signed_as_signatures_would(session, dataset.id)
    assert all(len(stored or b"") == STORED_BYTES for *_, stored in rows(session, dataset.id))


def test_an_import_too_small_for_the_helper_leaves_signing_to_the_report(session, monkeypatch):
    def no_signing(*args):
        raise AssertionError("the importing process signed")

    monkeypatch.setattr(import_tokens, "sign_messages", no_signing)
    dataset_id, ids = imported_planted(session)  # 40 rows: counted on the thread, no helper
    assert all(stored is None for *_, stored in rows(session, dataset_id))
    monkeypatch.undo()
    found = dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))
    assert [c.example_ids for c in found] == [[ids[3], ids[30]]]


def test_a_big_import_signs_in_the_helper_process_with_the_same_result(session, monkeypatch):
    monkeypatch.setattr(import_stream, "BATCH", 10)
    monkeypatch.setattr(import_tokens, "PROCESS_AFTER", 20)  # the first two blocks on the thread, then the helper
    ready_helper(monkeypatch)
    submitted = record_submits(monkeypatch)
    dataset = create_dataset(session, "signed")
    import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    assert submitted == [False, False, *[True] * 9]  # the thread's two blocks are sent to be signed
    assert_signed_as_signatures_would(session, dataset.id)


def test_an_import_without_signing_leaves_them_null_and_counts_still(session, monkeypatch):
    monkeypatch.setattr(import_tokens, "SIGN", False)
    dataset = create_dataset(session, "unsigned")
    import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    session.expire_all()
    stored = session.scalars(select(Example).where(Example.dataset_id == dataset.id)).all()
    assert all(e.near_signature is None and e.token_counts for e in stored)


def test_a_block_whose_signing_failed_is_sent_without_signatures(monkeypatch):
    def fail(messages, hashes):
        raise ValueError("no signing today")

    monkeypatch.setattr(import_tokens, "sign_messages", fail)
    records, hashes = import_tokens._records(marshal.dumps([("[]", None, None, *[None] * 5, "ab" * 32)]))
    assert import_tokens._signed(records, hashes) is None  # the block's rows are written with NULL


def test_preference_pairs_are_signed_on_their_input_as_the_report_compares_them(session, monkeypatch):
    monkeypatch.setattr(import_stream, "BATCH", 5)
    monkeypatch.setattr(import_tokens, "PROCESS_AFTER", 5)  # the first block kept for the helper, then the helper
    ready_helper(monkeypatch)
    dataset = create_dataset(session, "pairs")
    raw = (FIXTURES / "dpo_signoff.jsonl").read_bytes()
    assert import_jsonl(session, dataset.id, io.BytesIO(raw)).imported == len(raw.splitlines())
    assert_signed_as_signatures_would(session, dataset.id)  # `messages`: the pair's input conversation
    session.expire_all()
    stored = session.scalars(select(Example).where(Example.dataset_id == dataset.id)).all()
    assert all(e.is_preference and e.token_counts is None for e in stored)  # pairs are still counted by the report


def imported_planted(session) -> tuple[int, list[int]]:
    """The planted dataset of test_quality_report imported (near-duplicates at positions 3 and 30); its ids."""
    records, _ = planted()
    dataset = create_dataset(session, "planted")
    import_jsonl(session, dataset.id, io.BytesIO(jsonl(records)))
    return dataset.id, [row_id for row_id, *_ in rows(session, dataset.id)]


def test_the_report_reads_the_stored_signatures_not_the_texts_with_the_same_clusters(
    session, monkeypatch, helper_signs
):
    dataset_id, ids = imported_planted(session)

    def no_texts(*args, **kwargs):
        raise AssertionError("the pass read examples' text although every row has its signature")

    monkeypatch.setattr(report_quality, "_read_texts", no_texts)
    found = dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))
    assert [c.example_ids for c in found] == [[ids[3], ids[30]]]
    monkeypatch.undo()
    assert clusters_from_text(session, dataset_id) == [c.example_ids for c in found]


def replace_content(session, row_id: int, messages: list) -> None:
    """Change an example's messages and content hash in raw SQL, leaving its stored signature as it was."""
    session.execute(
        text("UPDATE examples SET messages = :m, content_hash = :h WHERE id = :i"),
        {"m": json.dumps(messages), "h": content_hash({"messages": messages}), "i": row_id},
    )
    session.execute(text("UPDATE datasets SET rev = rev + 1"))
    session.commit()


def test_a_stale_signature_is_recomputed_and_the_clusters_follow_the_new_content(session, helper_signs):
    dataset_id, ids = imported_planted(session)
    before = {row_id: stored for row_id, *_, stored in rows(session, dataset_id)}
    memo = QualityMemo()
    assert [c.example_ids for c in dataset_clusters(session, memo, read_state(session, dataset_id))] == [
        [ids[3], ids[30]]
    ]
    # Position 30 becomes unrelated; position 12 a near copy of position 3; neither signature is touched.
    replace_content(session, ids[30], [{"role": "user", "content": "something else entirely, nothing alike"}])
    third = rows(session, dataset_id)[3][1]
    replace_content(session, ids[12], [third[0], {**third[1], "content": edited(BASE, 1)}, third[2]])
    after = {row_id: stored for row_id, *_, stored in rows(session, dataset_id)}
    assert after == before  # the signatures are stale now
    assert unpack(after[ids[12]], rows(session, dataset_id)[12][2]) is None
    for kept in (memo, QualityMemo()):  # with the old state's memo, and cold
        found = dataset_clusters(session, kept, read_state(session, dataset_id))
        assert [c.example_ids for c in found] == [[ids[3], ids[12]]]
    assert clusters_from_text(session, dataset_id) == [[ids[3], ids[12]]]


def test_a_signature_stored_under_another_content_is_not_trusted(session, helper_signs):
    dataset_id, ids = imported_planted(session)
    stored = {row_id: value for row_id, *_, value in rows(session, dataset_id)}
    # Position 30 given position 3's signature (a perfect match if it were believed), and one of a format to come.
    session.execute(text("UPDATE examples SET near_signature = :s WHERE id = :i"), {"s": stored[ids[3]], "i": ids[30]})
    future = b"mh9:" + stored[ids[5]][4:]
    session.execute(text("UPDATE examples SET near_signature = :s WHERE id = :i"), {"s": future, "i": ids[5]})
    session.execute(text("UPDATE datasets SET rev = rev + 1"))
    session.commit()
    hashes = {row_id: digest for row_id, _, digest, _ in rows(session, dataset_id)}
    assert unpack(future, hashes[ids[5]]) is None and unpack(stored[ids[3]], hashes[ids[30]]) is None
    found = dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))
    assert [c.example_ids for c in found] == [[ids[3], ids[30]]]
    assert found[0].similarity < 1.0  # from 30's own text: one word differs


def test_unpack_many_agrees_with_unpack_row_by_row():
    sig = signatures(["the quick brown fox jumps", "", "lorem ipsum dolor sit amet"])
    hashes = ["ab" * 32, "cd" * 32, "not a hash"]
    packed = stored_signatures.pack(hashes, sig)
    assert packed[2] is None  # nothing stored can be trusted under a hash that is not one
    given = [packed[0], packed[1][:-1] if packed[1] else None, packed[0], None]
    against = [hashes[0], hashes[1], hashes[1], hashes[2]]
    values, ok = unpack_many(given, against)
    assert ok.tolist() == [unpack(s, h) is not None for s, h in zip(given, against, strict=True)]
    assert ok.tolist() == [True, False, False, False]
    assert np.array_equal(values[0], sig[0])
    assert unpack_many([], [])[0].shape == (0, 64)


def test_find_clusters_with_stored_signatures_equals_signing_the_texts():
    texts = [BASE, edited(BASE, 1), edited(BASE, 5), "short text here", BASE]
    hashes = ["a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32, "a1" * 32]
    ids = list(range(len(texts)))
    sides = ["train", "validation", "train", "train", "train"]
    plain = find_clusters(ids, hashes, texts, sides, known={})
    sig = signatures(texts)
    valid = np.array([True, False, True, True, False])  # row 1's must be signed; row 4 shares row 0's content
    given: list[str | None] = [None if ok else t for t, ok in zip(texts, valid.tolist(), strict=True)]
    given[4] = None
    stored = find_clusters(ids, hashes, given, sides, known={}, stored=(sig, valid))
    assert stored == plain and [c.example_ids for c in plain] == [[0, 1, 4]]


def test_an_edit_clears_the_signature_and_a_copy_keeps_it(session, helper_signs):
    dataset_id, ids = imported_planted(session)
    example = examples.get_example(session, ids[7])
    kept = example.near_signature
    assert kept is not None
    copy = examples.duplicate_example(session, ids[7])
    assert copy.near_signature == kept
    record = example.to_record()
    record["messages"][-1]["content"] += " And one more sentence."
    edited_example = examples.update_example(session, ids[7], record, example.version)
    assert edited_example.near_signature is None
    other = duplicate_dataset(session, dataset_id)
    copied = {digest: stored for _, _, digest, stored in rows(session, other.id)}
    assert all(stored is None or unpack(stored, digest) is not None for digest, stored in copied.items())
    assert sum(stored is not None for stored in copied.values()) == len(copied) - 1  # all but the edited one
    # The report signs the edited example from its text, and the clusters match a pass over every text.
    found = [c.example_ids for c in dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))]
    assert found == clusters_from_text(session, dataset_id)


def test_clusters_across_a_separate_validation_dataset_use_both_stored_signatures(session, monkeypatch, helper_signs):
    records, _ = planted()
    train = create_dataset(session, "train")
    validation = create_dataset(session, "validation")
    import_jsonl(session, train.id, io.BytesIO(jsonl(records[:20])))
    import_jsonl(session, validation.id, io.BytesIO(jsonl(records[20:])))
    monkeypatch.setattr(report_quality, "_read_texts", None)  # every row has its signature: no text is read
    states = (read_state(session, train.id), read_state(session, validation.id))
    [cluster] = dataset_clusters(session, QualityMemo(), *states)
    assert cluster.leaks_split and len(cluster.example_ids) == 2


def test_a_nul_character_in_a_text_signs_as_a_space_and_breaks_nothing():
    texts = ["hello there my friend", "one\x00two three four", "x"]
    assert np.array_equal(signatures(texts), signatures([texts[0], "one two three four", "x"]))


def gated_signatures(monkeypatch) -> list[tuple[Future, Future]]:
    """Every block goes to the helper, whose signatures reach the writer only when the test opens the gate:
    (gate, the helper's own future) per block."""
    monkeypatch.setattr(import_tokens, "PROCESS_AFTER", 0)
    real_submit = HELPER.submit
    gates: list[tuple[Future, Future]] = []

    def gated(helper, payload, count=True):
        block = real_submit(helper, payload, count)
        gate: Future = Future()
        gates.append((gate, block.signatures))
        return import_tokens._Block(block.counts, gate)

    monkeypatch.setattr(HELPER, "submit", gated)
    return gates


def import_planted_records(session) -> tuple[int, list[int], object]:
    records, _ = planted()
    dataset = create_dataset(session, "planted")
    result = import_jsonl(session, dataset.id, io.BytesIO(jsonl(records)))
    return dataset.id, [row_id for row_id, *_ in rows(session, dataset.id)], result


def test_the_writer_never_waits_for_signatures_they_are_stored_after_the_commit(session, monkeypatch):
    """Signatures still being made when the writer reaches their block are written as NULL (the import keeps its
    speed); a thread stores them once the helper has made them, after the import has committed."""
    gates = gated_signatures(monkeypatch)
    assert import_tokens.WAIT_FOR_SIGNATURES is False  # the product's setting
    dataset_id, _, result = import_planted_records(session)
    assert all(stored is None for *_, stored in rows(session, dataset_id))  # not waited for
    session.expire_all()
    assert all(e.token_counts for e in session.scalars(select(Example).where(Example.dataset_id == dataset_id)))
    assert result.signing is not None and not result.signing.done.is_set()  # it holds the helper meanwhile
    for gate, made in gates:  # the helper's signatures arrive now
        gate.set_result(made.result(timeout=60))
    assert result.signing.done.wait(60)
    assert result.signing.stored == len(rows(session, dataset_id))
    assert_signed_as_signatures_would(session, dataset_id)
    result.signing.thread.join(60)
    assert not result.signing.thread.is_alive()  # it ended, and the helper process with it


def test_late_signatures_that_never_come_are_left_to_the_report_which_stores_them(session, monkeypatch):
    gates = gated_signatures(monkeypatch)
    dataset_id, ids, result = import_planted_records(session)
    for gate, _ in gates:
        gate.set_exception(RuntimeError("the helper has ended"))
    assert result.signing.done.wait(60) and result.signing.stored == 0
    assert all(stored is None for *_, stored in rows(session, dataset_id))
    monkeypatch.undo()

    monkeypatch.setattr(report_quality, "STORE_CHUNK", 7)  # stored in several write transactions
    first = dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))
    assert [c.example_ids for c in first] == [[ids[3], ids[30]]]
    assert_signed_as_signatures_would(session, dataset_id)  # stored by the pass

    def no_texts(*args, **kwargs):
        raise AssertionError("the second cold pass read examples' text")

    monkeypatch.setattr(report_quality, "_read_texts", no_texts)
    again = dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))
    assert [c.example_ids for c in again] == [c.example_ids for c in first]


def test_the_report_stores_no_signature_over_an_example_changed_since_it_read_it(session, monkeypatch):
    dataset_id, ids = imported_planted(session)  # 40 rows: no helper, nothing signed at import
    real_read = report_quality._read_texts

    def read_then_edit(session_, dataset_id_, wanted):
        texts = real_read(session_, dataset_id_, wanted)
        replace_content(session_, ids[0], [{"role": "user", "content": "changed while the pass ran"}])
        return texts

    monkeypatch.setattr(report_quality, "_read_texts", read_then_edit)
    dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))
    found = {row_id: stored for row_id, _, _, stored in rows(session, dataset_id)}
    assert found[ids[0]] is None  # its content hash changed: the UPDATE matched nothing
    assert all(found[i] is not None for i in ids[1:])


def test_the_helper_answers_every_block_with_its_counts_and_its_signatures():
    helper = HELPER("o200k_base", True)
    try:
        assert helper.ready.wait(60)
        records = [
            {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "ok"}]}
            for i in range(3)
        ]
        payload = marshal.dumps(
            [(json.dumps(r["messages"]), None, None, *[None] * 5, content_hash(r)) for r in records]
        )
        blocks = [helper.submit(payload, True) for _ in range(4)]
        for block in blocks:
            assert len(block.counts.result(timeout=60)) == 3 * 3  # (total, assistant, trained) per row
            signed = block.signatures.result(timeout=60)
            assert signed is not None and len(signed) == 3 and all(len(s or b"") == STORED_BYTES for s in signed)
    finally:
        helper.close()


def test_a_report_waits_for_an_imports_late_signatures_instead_of_signing_the_texts(session, monkeypatch):
    gates = gated_signatures(monkeypatch)
    dataset_id, ids, result = import_planted_records(session)
    database = str(session.get_bind().engine.url)
    assert import_signing.wait_for_late(database, dataset_id, timeout=0) is False  # still being made

    def no_texts(*args, **kwargs):
        raise AssertionError("the pass signed texts while the import's signatures were on their way")

    monkeypatch.setattr(report_quality, "_read_texts", no_texts)
    for gate, made in gates:
        gate.set_result(made.result(timeout=60))
    found = dataset_clusters(session, QualityMemo(), read_state(session, dataset_id))  # waits, then reads them
    assert [c.example_ids for c in found] == [[ids[3], ids[30]]]
    assert result.signing.done.is_set() and import_signing.wait_for_late(database, dataset_id, timeout=0)
