"""The Report's data-quality pass: near-duplicate clusters (from the examples' text) and outliers (from the
snapshot's token and message counts), with their codes' counts and example ids.

Per-example findings (contains_pii, contains_secret) are stored problems like the format checks and reach the
Report through the snapshot's codes; this module adds what needs the whole dataset. Clusters are kept per dataset
state (QualityMemo, on the ReportCache): any change to the dataset or to its validation dataset changes the state,
so a kept result is never stale. The examples' MinHash signatures are read from their rows (stored by the import,
tagged with the content hash: quality.stored_signatures); only rows without a valid one (older rows, edited ones,
a stale tag, blocks the import's helper had not signed in time) have their text read and signed; those signatures
are kept in the memo by content hash and stored with their rows, so later passes, after an edit or a restart,
read and sign only the changed examples.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, select, update
from sqlmodel import Session

from app.datasets.gc_pause import no_cyclic_gc
from app.datasets.import_signing import wait_for_late
from app.datasets.quality.near_duplicates import Cluster, comparable_text, find_clusters
from app.datasets.quality.outliers import MEASURES, Outlier, outliers
from app.datasets.quality.stored_signatures import LITTLE, header, unpack_many
from app.datasets.validation.checks import json_loads
from app.datasets.validation.codes import CODES
from app.datasets.validation.report_groups import ASSISTANT, HASH, N_MESSAGES, SPLIT, TOTAL, VALID, Row, group_of
from app.datasets.validation.report_rows import DatasetState
from app.tables.dataset import EXAMPLES

QUALITY_CODES = ("near_duplicate", "near_duplicate_leakage", *(code for code, _ in MEASURES.values()))
MEMO_SIZE = 8
MAX_SIGNATURES = 300_000  # ~100 MB at most
T = EXAMPLES.c


@dataclass
class QualityFindings:
    """What the quality pass found over one split: clusters (those with a member in the split), outliers, and
    the example ids of each code."""

    clusters: list[Cluster] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    ids: dict[str, list[int]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Examples per code, for the codes that have any."""
        return {code: len(ids) for code, ids in self.ids.items() if ids}

    def as_api(self) -> dict[str, Any]:
        """The `quality` part of GET /api/datasets/{id}/report."""
        return {
            "codes": {code: {"count": len(ids), "example_ids": ids} for code, ids in self.ids.items() if ids},
            "near_duplicate_clusters": [c.as_dict() for c in self.clusters],
            "outliers": [o.as_dict() for o in self.outliers],
        }


class QualityMemo:
    """Near-duplicate clusters kept per (database, dataset state, validation dataset state), least recently used
    dropped first."""

    def __init__(self, max_entries: int = MEMO_SIZE, max_signatures: int = MAX_SIGNATURES) -> None:
        self.max_entries, self.max_signatures = max_entries, max_signatures
        self._kept: OrderedDict[tuple, list[Cluster]] = OrderedDict()
        self._lock = threading.Lock()
        # MinHash signatures by content hash (a function of the content): a report after an edit signs only the
        # new contents. 256 bytes each, plus the key.
        self.signatures: dict[str, bytes] = {}

    def trim(self) -> None:
        """Forget every signature once there are more than max_signatures (they are recomputed as needed)."""
        if len(self.signatures) > self.max_signatures:
            self.signatures.clear()

    def get(self, key: tuple) -> list[Cluster] | None:
        """The clusters kept under `key`, if any."""
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def keep(self, key: tuple, clusters: list[Cluster]) -> None:
        """Keep clusters under `key`."""
        with self._lock:
            self._kept[key] = clusters
            while len(self._kept) > self.max_entries:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        """Forget everything kept."""
        with self._lock:
            self._kept.clear()
        self.signatures.clear()


# SQLite builds the comparable text itself (near_duplicates.comparable_text's, for examples whose messages all
# have text content and no tool calls): ~5x faster than decoding every example's JSON in Python. Other examples
# come back with their messages to be decoded here.
_SQLITE_TEXTS = """
SELECT id,
  CASE WHEN NOT EXISTS (
    SELECT 1 FROM json_each(examples.messages) AS m
    WHERE json_type(m.value, '$.content') IS NOT 'text' OR json_type(m.value, '$.tool_calls') IS NOT NULL
  ) THEN coalesce((
    SELECT group_concat(json_extract(m.value, '$.content'), char(10)) FROM json_each(examples.messages) AS m
    WHERE coalesce(json_extract(m.value, '$.role'), '') NOT IN ('system', 'developer')
  ), '') END,
  messages
FROM examples WHERE dataset_id = ?
"""
ID_CHUNK = 500  # ids per IN (...)
STORE_CHUNK = 20_000  # signatures stored per write transaction (the write lock is held for each)


@dataclass
class _Keys:
    """A dataset's examples in position order, as columns: ids, content hashes, sides, stored signatures."""

    ids: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)
    stored: list[bytes | None] = field(default_factory=list)  # read into arrays by unpack_many


def _read_keys(session: Session, dataset_id: int, side: str | None) -> _Keys:
    """A dataset's examples (see _Keys); side None: from each row's split. On SQLite read with the driver's own
    cursor, unordered, and sorted here: ~3x faster than SQLAlchemy's rows in position order, and the bulk of this
    pass once the signatures are stored."""
    connection = session.connection()
    rows: list[Any]
    if connection.dialect.name == "sqlite":
        sql = "SELECT position, id, content_hash, split, near_signature FROM examples WHERE dataset_id = ?"
        driver: Any = connection.connection.driver_connection  # sqlite3's own connection
        rows = driver.execute(sql, (dataset_id,)).fetchall()
        rows.sort()  # by (position, id), as the ORDER BY below
    else:
        query = select(T.position, T.id, T.content_hash, T.split, T.near_signature)
        rows = list(session.execute(query.where(T.dataset_id == dataset_id).order_by(T.position, T.id)))
    if not rows:
        return _Keys()
    _, ids, hashes, splits, stored = (list(column) for column in zip(*rows, strict=True))
    sides = [side] * len(ids) if side else ["validation" if s == "validation" else "train" for s in splits]
    return _Keys(ids, [h or "" for h in hashes], sides, stored)


def _read_texts(session: Session, dataset_id: int, ids: list[int] | None) -> dict[int, str]:
    """The comparable text of a dataset's examples (all of them, or those with the given ids)."""
    chunks = [None] if ids is None else [ids[i : i + ID_CHUNK] for i in range(0, len(ids), ID_CHUNK)]
    out: dict[int, str] = {}
    connection = session.connection()
    for chunk in chunks:
        if connection.dialect.name == "sqlite":
            sql = _SQLITE_TEXTS + ("" if chunk is None else " AND id IN ({})".format(",".join("?" * len(chunk))))
            for row_id, text, messages in connection.exec_driver_sql(sql, (dataset_id, *(chunk or ()))):
                if text is None:
                    text = comparable_text(json_loads(messages) if isinstance(messages, str) else messages)
                out[row_id] = text
            continue
        query = select(T.id, T.messages).where(T.dataset_id == dataset_id)
        if chunk is not None:
            query = query.where(T.id.in_(chunk))
        out.update((row_id, comparable_text(messages)) for row_id, messages in session.execute(query))
    return out


def dataset_clusters(
    session: Session,
    memo: QualityMemo,
    state: DatasetState,
    validation_state: DatasetState | None = None,
) -> list[Cluster]:
    """Near-duplicate clusters of a dataset (with a separate validation dataset's examples as validation), kept in
    `memo` for these states. Only examples whose content the memo has no signature for are read in full."""
    key = (str(session.get_bind().engine.url), state, validation_state)
    kept = memo.get(key)
    if kept is not None:
        return kept
    with no_cyclic_gc():
        clusters = _clusters(session, memo, state, validation_state)
    memo.keep(key, clusters)
    return clusters


def _clusters(
    session: Session, memo: QualityMemo, state: DatasetState, validation_state: DatasetState | None
) -> list[Cluster]:
    database = str(session.get_bind().engine.url)
    for dataset in (state, validation_state):  # an import's signatures still being stored: rather than sign twice
        if dataset is not None:
            wait_for_late(database, dataset.dataset_id)
    listed = _Keys()
    texts: dict[int, str] = {}
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    unsigned: list[tuple[int, str]] = []  # (id, content hash) of the rows without a valid stored signature
    for dataset, side in ((state, None), (validation_state, "validation")):
        if dataset is None:
            continue
        keys = _read_keys(session, dataset.dataset_id, side)
        for name in ("ids", "hashes", "sides"):
            getattr(listed, name).extend(getattr(keys, name))
        stored, valid = unpack_many(keys.stored, keys.hashes)
        parts.append((stored, valid))
        unsigned += [(keys.ids[r], keys.hashes[r]) for r in np.flatnonzero(~valid).tolist()]
        # Rows without a valid stored signature (none, or stale) whose content the memo has not signed either.
        signed = memo.signatures
        missing = [keys.ids[r] for r in np.flatnonzero(~valid).tolist() if keys.hashes[r] not in signed]
        if missing:
            texts |= _read_texts(session, dataset.dataset_id, None if len(missing) * 2 > len(keys.ids) else missing)
    memo.trim()
    clusters = find_clusters(
        listed.ids,
        listed.hashes,
        [texts.get(i) for i in listed.ids] if texts else [None] * len(listed.ids),
        listed.sides,
        known=memo.signatures,  # what is signed here is kept
        stored=(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        if len(parts) > 1
        else parts[0],
    )
    if unsigned:
        _store_signatures(session, unsigned, memo.signatures)
    return clusters


def _store_signatures(session: Session, rows: list[tuple[int, str]], signed: dict[str, bytes]) -> None:
    """Store the signatures this pass made for rows that had none (an import too small for its helper, blocks
    the helper had not signed when they were written, edited examples), where the example is unchanged since it
    was read: the next cold pass reads them instead of the texts. A cache, as the token counts the report stores."""
    updates = []
    for row_id, digest in rows:
        raw = signed.get(digest)
        head = header(digest)
        if raw is not None and head is not None:
            updates.append((head + np.frombuffer(raw, dtype=np.uint32).astype(LITTLE).tobytes(), row_id, digest))
    for start in range(0, len(updates), STORE_CHUNK):
        chunk = updates[start : start + STORE_CHUNK]
        connection = session.connection()  # each chunk's own: the commit below ends the last one's
        if connection.dialect.name == "sqlite":
            sql = "UPDATE examples SET near_signature = ? WHERE id = ? AND content_hash = ?"
            connection.exec_driver_sql(sql, chunk)
        else:
            statement = (
                update(EXAMPLES)
                .where(and_(T.id == bindparam("b_id"), T.content_hash == bindparam("b_hash")))
                .values(near_signature=bindparam("b_signature"))
            )
            connection.execute(statement, [{"b_id": i, "b_hash": h, "b_signature": v} for v, i, h in chunk])
        session.commit()  # one short write transaction per chunk


def findings(
    rows: dict[int, Row], clusters: list[Cluster], split: str, sides: dict[int, str] | None = None
) -> QualityFindings:
    """The split's findings from the snapshot rows and the dataset's clusters.

    near_duplicate: every example of the split in a cluster; near_duplicate_leakage (training split): the training
    examples of clusters that also hold validation examples; outliers against the split's valid examples."""
    groups = {"train": ("train",), "validation": ("validation",), "all": ("train", "validation", "other")}[split]

    def side(example_id: int) -> str:
        row = rows.get(example_id)
        if row is not None:
            return group_of(row[SPLIT])
        return (sides or {}).get(example_id, "validation")  # a separate validation dataset's example

    in_split = sorted(i for i, row in rows.items() if group_of(row[SPLIT]) in groups)
    chosen = set(in_split)
    kept = [c for c in clusters if any(i in chosen for i in c.example_ids)]
    near = sorted(i for c in kept for i in c.example_ids if i in chosen)
    leaking: list[int] = []
    if split != "validation":
        for c in kept:
            if any(side(i) == "validation" for i in c.example_ids):
                leaking.extend(i for i in c.example_ids if i in chosen and side(i) == "train")
    valid = [(i, rows[i][TOTAL], rows[i][N_MESSAGES], rows[i][ASSISTANT]) for i in in_split if rows[i][VALID]]
    found = outliers(valid)
    ids: dict[str, list[int]] = {"near_duplicate": near, "near_duplicate_leakage": sorted(leaking)}
    for code, _ in MEASURES.values():
        ids[code] = sorted(o.example_id for o in found if o.code == code)
    return QualityFindings(kept, found, ids)


def merge_counts(warnings: dict[str, int], found: QualityFindings) -> dict[str, int]:
    """The report's warnings with the quality codes' counts added, in CODES order."""
    counts = warnings | found.counts()
    return {c: counts[c] for c in CODES if counts.get(c)}


def record_clusters(rows: dict[int, Row], records: dict[int, Any]) -> list[Cluster]:
    """Near-duplicate clusters of examples held in memory (`tuneboard check`): rows as the snapshot's, records by
    the same keys."""
    ids = sorted(rows)
    texts = [comparable_text(records[i].get("messages") if isinstance(records[i], dict) else None) for i in ids]
    sides = [group_of(rows[i][SPLIT]) for i in ids]
    return find_clusters(ids, [rows[i][HASH] or "" for i in ids], texts, sides)


def problems_by_example(found: QualityFindings, name: Any = str) -> dict[int, list[tuple[str, str]]]:
    """(code, message) of each example's quality findings; `name(example_id)` says how to name another example."""
    out: dict[int, list[tuple[str, str]]] = {}
    for cluster in found.clusters:
        for i in cluster.example_ids:
            others = ", ".join(name(j) for j in cluster.example_ids if j != i)
            similar = f"The example is nearly the same as {others} (similarity {cluster.similarity:.2f})."
            if i in found.ids.get("near_duplicate", ()):
                out.setdefault(i, []).append(("near_duplicate", similar))
            if i in found.ids.get("near_duplicate_leakage", ()):
                out.setdefault(i, []).append(("near_duplicate_leakage", f"{similar[:-1]}, across the split."))
    for outlier in found.outliers:
        out.setdefault(outlier.example_id, []).append((outlier.code, outlier.message()))
    return out
