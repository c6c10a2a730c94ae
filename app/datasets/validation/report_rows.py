"""The Report's per-example columns, kept in memory per dataset and brought up to date incrementally.

A snapshot holds, for one dataset and one token-count cache key, each example's row (valid, n_messages,
content_hash, split, token total, assistant and trained tokens, problem codes) and the dataset's `rev` read
before those rows. Every service that writes example rows bumps the dataset's rev first and stamps the rows
with it (app.datasets.datasets.touch_dataset), so the next request re-reads only rows stamped later, plus rows
never stamped (NULL: a writer that does not know about rev costs speed, never correctness). Deleted rows show
as a count that no longer matches; then the id list says which. Tokens are counted only for rows whose cache
lacks them. No snapshot, a reused dataset id, or a rev that went backwards: every row is read again.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, update
from sqlmodel import Session

from app.datasets.validation.checks import json_loads
from app.datasets.validation.modeltable import ModelInfo
from app.datasets.validation.report_groups import CODES, TOTAL, Group, Row, apply_changes, build_groups
from app.datasets.validation.tokens import count_many
from app.errors import NotFound
from app.tables.dataset import DATASETS, EXAMPLES

T = EXAMPLES.c
FILL_CHUNK = 5_000  # examples recounted per database round trip
ID_CHUNK = 500  # ids per IN (...): well under SQLite's bound-parameter limit
# Snapshots kept per app (SnapshotStore), bounded by their rows: ~36 MB per 100,000 examples (rows and
# statistics, measured).
MAX_SNAPSHOT_ROWS = 300_000
MAX_SNAPSHOTS = 16
REBUILD_SHARE = 10  # more than 1/10 of the rows changed: rebuilding the statistics beats updating them row by row


class DatasetState(NamedTuple):
    """What identifies a dataset's current content, read before its rows (the Report's memo key)."""

    dataset_id: int
    name: str
    created_at: datetime
    updated_at: datetime
    rev: int
    size: int  # how many examples (not `count`: a tuple's method)
    top: int | None


@dataclass
class Snapshot:
    """Every row of one dataset for one cache key, complete up to `rev`, and their statistics per split."""

    created_at: datetime
    rev: int
    rows: dict[int, Row]
    groups: dict[str, Group]
    exact: bool = True  # False: some token counts are approximations (such a snapshot is not kept)


class SnapshotStore:
    """The snapshots one app keeps: least recently used dropped first, bounded in number and in rows."""

    def __init__(self, max_snapshots: int = MAX_SNAPSHOTS, max_rows: int = MAX_SNAPSHOT_ROWS) -> None:
        self.max_snapshots, self.max_rows = max_snapshots, max_rows
        self._snapshots: OrderedDict[tuple, Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._codes: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple object per distinct set of codes

    def take(self, key: tuple) -> Snapshot | None:
        """Remove and return the snapshot kept under `key`, if any."""
        with self._lock:
            # Taken out while it is updated: a concurrent request for the same dataset reads every row instead.
            return self._snapshots.pop(key, None)

    def keep(self, key: tuple, snapshot: Snapshot) -> None:
        """Keep a snapshot as the most recently used, dropping the oldest beyond the bounds."""
        with self._lock:
            self._snapshots[key] = snapshot
            while self._snapshots and (
                len(self._snapshots) > self.max_snapshots
                or sum(len(s.rows) for s in self._snapshots.values()) > self.max_rows
            ):
                self._snapshots.popitem(last=False)  # least recently used first; a dataset too big alone is not kept

    def kept_keys(self) -> list[tuple]:
        """The keys of the snapshots kept, least recently used first."""
        with self._lock:
            return list(self._snapshots)

    def clear(self) -> None:
        """Forget every snapshot (the next report of each dataset reads all its rows)."""
        with self._lock:
            self._snapshots.clear()

    def shared_codes(self, codes: tuple[str, ...]) -> tuple[str, ...]:
        """The one tuple object kept for this set of problem codes (rows share it instead of a copy each)."""
        return self._codes.setdefault(codes, codes)


def read_state(session: Session, dataset_id: int) -> DatasetState:
    """The dataset's identity, revision and size; NotFound if it does not exist.

    Read it before the rows: every row stamped with this rev or less is then visible to the reads that follow.
    Count and max id (from an index) catch changes by writers that touch nothing.
    """
    d = DATASETS.c
    # A query, not session.get(): an identity-mapped Dataset may predate another session's edit.
    found = session.execute(select(d.name, d.created_at, d.updated_at, d.rev).where(d.id == dataset_id)).one_or_none()
    if found is None:
        raise NotFound(f"Dataset {dataset_id} does not exist.", param="dataset_id")
    name, created_at, updated_at, rev = found
    size, top = session.execute(select(func.count(), func.max(T.id)).where(T.dataset_id == dataset_id)).one()
    return DatasetState(dataset_id, name, created_at, updated_at, rev, size, top)


def current_snapshot(
    session: Session, store: SnapshotStore, state: DatasetState, info: ModelInfo, settings: Any = None
) -> Snapshot:
    """Every example row of the dataset as of `state`, with their statistics per split, kept in `store`."""
    key = (str(session.get_bind().engine.url), state.dataset_id, info.cache_key)
    snapshot = store.take(key)
    previous = None
    if snapshot is not None and snapshot.created_at == state.created_at and snapshot.rev <= state.rev:
        rows, fresh, previous = _catch_up(session, snapshot.rows, state, info.cache_key, snapshot.rev)
    else:
        rows = {r[0]: r[1:] for r in _read(session, info.cache_key, state.dataset_id)}
        fresh = list(rows)
    _share_codes(store, rows, fresh)
    exact = fill_counts(session, rows, [i for i in fresh if rows[i][TOTAL] is None], info, settings)
    if snapshot is None or previous is None or len(previous) * REBUILD_SHARE > len(rows):
        groups = build_groups(rows)
    else:
        groups = snapshot.groups
        apply_changes(groups, ((old, rows.get(i)) for i, old in previous.items()))
    current = Snapshot(state.created_at, state.rev, rows, groups, exact)
    if exact:
        store.keep(key, current)
    return current


def _catch_up(session: Session, rows: dict, state: DatasetState, key: str, since: int):
    """Apply what changed after rev `since` to a snapshot's rows: rows written since (or never stamped) are read
    again, deleted rows dropped. Returns the rows, the ids read, and the rows each changed id had before (None:
    it is new)."""
    fresh = []
    previous: dict[int, Row | None] = {}
    for r in _read(session, key, state.dataset_id, since=since):
        previous[r[0]] = rows.get(r[0])
        rows[r[0]] = r[1:]
        fresh.append(r[0])
    if len(rows) != state.size:
        # Rows were deleted (or added by a writer that neither stamps nor counts): the id list says which.
        present = _ids(session, state.dataset_id)
        for gone in [i for i in rows if i not in present]:
            previous.setdefault(gone, rows[gone])
            del rows[gone]
        unknown = sorted(present.difference(rows))
        for start in range(0, len(unknown), ID_CHUNK):
            for r in _read(session, key, state.dataset_id, ids=unknown[start : start + ID_CHUNK]):
                previous.setdefault(r[0], None)
                rows[r[0]] = r[1:]
                fresh.append(r[0])
    return rows, fresh, previous


def _share_codes(store: SnapshotStore, rows: dict, ids: list[int]) -> None:
    """Replace the stored problems of the rows read with the tuple of their distinct codes (None: no problem)."""
    for i in ids:
        row = rows[i]
        problems = row[CODES]
        if problems is None or isinstance(problems, tuple):
            continue
        if isinstance(problems, str | bytes):
            problems = json.loads(problems)
        codes = tuple(sorted({p["code"] for p in problems if isinstance(p, dict) and "code" in p})) or None
        rows[i] = (*row[:CODES], store.shared_codes(codes) if codes else None)


def _read(session: Session, key: str, dataset_id: int, *, since: int | None = None, ids: list[int] | None = None):
    """(id, valid, n_messages, content_hash, split, total, assistant, trained, problems) of a dataset's rows: all
    of them, those stamped after rev `since` or never, or those with the given ids. problems is None when the
    example has none."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # json_extract in SQLite runs ~3x faster than decoding the JSON in Python, and the driver's own cursor
        # skips SQLAlchemy's Row objects (which would double the time of reading 100,000 rows).
        path = '$."' + key.replace('"', "") + '"'
        sql = (
            "SELECT id, valid, n_messages, content_hash, split, json_extract(token_counts, ?), "
            "json_extract(token_counts, ?), json_extract(token_counts, ?), "
            "CASE WHEN n_errors + n_warnings > 0 THEN problems END FROM examples WHERE dataset_id = ?"
        )
        params: list[Any] = [path + ".total", path + ".assistant", path + ".trained", dataset_id]
        if since is not None:
            # Two index ranges: with `(rev > ? OR rev IS NULL)` SQLite would walk the dataset's whole index.
            sql = f"{sql} AND rev > ? UNION ALL {sql} AND rev IS NULL"
            params += [since, *params]
        if ids is not None:
            sql += " AND id IN ({})".format(",".join("?" * len(ids)))
            params.extend(ids)
        return _driver(connection).execute(sql, params).fetchall()
    counts = T.token_counts[key]
    query = select(
        T.id,
        T.valid,
        T.n_messages,
        T.content_hash,
        T.split,
        counts["total"].as_integer(),
        counts["assistant"].as_integer(),
        counts["trained"].as_integer(),
        case((T.n_errors + T.n_warnings > 0, T.problems)),
    ).where(T.dataset_id == dataset_id)
    if since is not None:
        query = query.where(or_(T.rev > since, T.rev.is_(None)))
    if ids is not None:
        query = query.where(T.id.in_(ids))
    return [tuple(r) for r in connection.execute(query)]


def _driver(connection: Connection) -> Any:
    """The database driver's own connection (sqlite3's, where this module uses it)."""
    driver = connection.connection.driver_connection
    if driver is None:  # only a closed or invalidated connection has none
        raise RuntimeError("The database connection is closed.")
    return driver


def _ids(session: Session, dataset_id: int) -> set[int]:
    """The ids of a dataset's examples (from an index)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # One JSON array instead of a row per id: a third of the time of fetching 100,000 rows.
        sql = "SELECT json_group_array(id) FROM examples WHERE dataset_id = ?"
        return set(json.loads(connection.exec_driver_sql(sql, (dataset_id,)).scalar_one()))
    return set(connection.execute(select(T.id).where(T.dataset_id == dataset_id)).scalars())


def fill_counts(session: Session, rows: dict, missing: list[int], info: ModelInfo, settings: Any = None) -> bool:
    """Count the `missing` rows' tokens in bulk, put them in `rows` and cache them in the database; True if exact.

    A row deleted since it was read is dropped from `rows`.
    """
    exact = True
    key = info.cache_key
    alone = '{{"{}": {{"total": %d, "assistant": %d, "trained": %d}}}}'.format(json.dumps(key)[1:-1].replace("%", "%%"))
    for start in range(0, len(missing), FILL_CHUNK):
        # Chunks run one after the other: overlapping the next chunk's reading with tiktoken was measured slower
        # (the encoding threads wait for the GIL between strings while this thread decodes JSON).
        chunk = missing[start : start + FILL_CHUNK]
        loaded = _load_for_count(session, chunk)
        records = [_record(m, tools, extra, answers) for _, m, tools, extra, _, _, *answers in loaded]
        updates = []
        counted = count_many(records, info, settings)
        for (row_id, _, _, _, cached, content_hash, *_), c in zip(loaded, counted, strict=True):
            row = rows[row_id]
            rows[row_id] = (*row[:TOTAL], c.total, c.assistant, c.trained, row[CODES])
            exact = exact and c.exact
            if c.exact:
                # The JSON as json.dumps writes it; formatted directly when this is the example's first count.
                text = json.dumps(cached | {key: c.as_dict()}) if cached else alone % (c.total, c.assistant, c.trained)
                # An edit since the read reset the cache on purpose: the content_hash guard skips that row.
                updates.append((row_id, content_hash, text))
        if updates:
            _store_counts(session, updates)
        if len(loaded) < len(chunk):
            for row_id in set(chunk).difference(r[0] for r in loaded):
                del rows[row_id]
    return exact


def _record(messages: Any, tools: Any, extra: Any, answers: list[Any]) -> dict[str, Any]:
    """The record to count, as Example.to_record() builds it: a chat example, or a preference pair (its answers)."""
    preferred, rejected = answers
    if preferred is None and rejected is None:
        return {"messages": messages, "tools": tools, **(extra or {})}
    given = {"messages": messages} if tools is None else {"messages": messages, "tools": tools}
    return {"input": given, "preferred_output": preferred, "non_preferred_output": rejected, **(extra or {})}


def _load_for_count(session: Session, ids: list[int]) -> list[tuple]:
    """(id, messages, tools, extra, token_counts, content_hash, preferred_output, non_preferred_output) of the
    given examples."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        query = select(
            T.id,
            T.messages,
            T.tools,
            T.extra,
            T.token_counts,
            T.content_hash,
            T.preferred_output,
            T.non_preferred_output,
        ).where(T.id.in_(ids))
        return [tuple(r) for r in connection.execute(query)]
    # Decoding the JSON ourselves from the driver's rows halves the cost of reading 100,000 examples back.
    sql = (
        "SELECT id, messages, tools, extra, token_counts, content_hash, preferred_output, non_preferred_output "
        "FROM examples WHERE id IN ({})".format(",".join("?" * len(ids)))
    )
    return [
        (i, _decode(m), _decode(t), _decode(x), _decode(c), h, _decode(p), _decode(n))
        for i, m, t, x, c, h, p, n in _driver(connection).execute(sql, ids)
    ]


def _decode(value):
    # SQLite gives a JSON column NUMERIC affinity: a stored scalar such as `1` comes back as a number, not text.
    if not isinstance(value, str):
        return json.loads(value) if isinstance(value, bytes) else value
    return json_loads(value)


def _store_counts(session: Session, updates: list[tuple[int, str, str]]) -> None:
    """Write (id, content_hash, token_counts as JSON text) where the example is unchanged since it was read."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        sql = "UPDATE examples SET token_counts = ? WHERE id = ? AND content_hash = ?"
        connection.exec_driver_sql(sql, [(c, i, h) for i, h, c in updates])
    else:
        statement = (
            update(EXAMPLES)
            .where(and_(T.id == bindparam("b_id"), T.content_hash == bindparam("b_hash")))
            .values(token_counts=bindparam("b_counts"))
        )
        connection.execute(statement, [{"b_id": i, "b_hash": h, "b_counts": json.loads(c)} for i, h, c in updates])
    session.commit()  # one short write transaction per chunk
