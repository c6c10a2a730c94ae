"""The signatures an import's helper had not made when the writer reached their rows, stored once it has.

The writer never waits for signatures (app.datasets.import_tokens): on this 2-core machine the helper's counting
keeps pace with the import and signing is extra work, so waiting made imports 29-66 % slower. Rows written without
theirs are signed by the helper after the import has committed, and a thread here stores them, a few thousand
rows per short write transaction, by (dataset, position); each value is tagged with the content hash it was made
for, so one stored over an example edited meanwhile reads as stale and is never trusted. A report asked for before
they are stored first waits for them (`wait_for_late`, up to REPORT_WAIT_S), so that the two never sign the same
rows twice on two busy cores; after that it signs whatever is missing itself (and stores it too). Everything here
is a cache: any failure leaves NULLs behind, which the report fills.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy import Engine, text

LATE_WAIT_S = 600  # how long the thread waits for one block's signatures before it gives up (a stuck helper)
REPORT_WAIT_S = 60  # how long a report waits for a dataset's late signatures before it signs the rest itself
STORE_ROWS = 5_000  # rows per write transaction: the write lock is never held long
_STORE = text("UPDATE examples SET near_signature = :value WHERE dataset_id = :dataset AND position = :position")

Signatures = list[bytes | None]  # import_tokens' (not imported: the report waits here, and import_tokens uses it)
LateBlock = tuple[int, Future[Signatures | None]]  # the first row's position, and the block's signatures

# The threads storing late signatures now, by (database URL, dataset id). Module-level on purpose: they are this
# process's threads, started by an import service that has no app to hang them on, and each entry lives only
# while its thread runs.
_running: dict[tuple[str, int], LateSignatures] = {}
_running_lock = threading.Lock()


def wait_for_late(database: str, dataset_id: int, timeout: float = REPORT_WAIT_S) -> bool:
    """Wait until the dataset's late signatures (if an import is storing any now) are stored; False on timeout."""
    with _running_lock:
        running = _running.get((database, dataset_id))
    return running is None or running.done.wait(timeout)


class LateSignatures:
    """The thread that stores an import's late signatures; `done` is set when it has ended, whatever happened."""

    def __init__(self, engine: Engine, dataset_id: int, blocks: list[LateBlock], release: Callable[[], None]):
        self.engine, self.dataset_id, self.blocks, self.release = engine, dataset_id, blocks, release
        self.stored = 0
        self.done = threading.Event()
        self.key = (str(engine.url), dataset_id)
        with _running_lock:
            _running[self.key] = self
        self.thread = threading.Thread(target=self._run, name=f"import-signatures-{dataset_id}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            waiting: list[dict] = []
            for start, future in self.blocks:
                signed = future.result(timeout=LATE_WAIT_S)
                values = signed or ()
                waiting += [
                    {"value": v, "dataset": self.dataset_id, "position": start + i}
                    for i, v in enumerate(values)
                    if v is not None
                ]
                if len(waiting) >= STORE_ROWS:
                    self._store(waiting)
                    waiting = []
            self._store(waiting)
        except Exception:  # a cache: the report signs whatever is left NULL
            pass
        finally:
            self.release()  # the helper process: its work is done or no longer wanted
            with _running_lock:
                if _running.get(self.key) is self:
                    del _running[self.key]
            self.done.set()

    def _store(self, rows: list[dict]) -> None:
        if rows:
            with self.engine.begin() as connection:
                connection.execute(_STORE, rows)
            self.stored += len(rows)
