"""The signatures an import's helper had not made when the writer reached their rows, stored once it has.

The writer never waits for signatures (app.datasets.import_tokens): on this 2-core machine the helper's counting
keeps pace with the import and signing is extra work, so waiting made imports 29-66 % slower. Rows written without
theirs are signed by the helper after the import has committed, and a thread here stores them, a few thousand
rows per short write transaction, by (dataset, position); each value is tagged with the content hash it was made
for, so one stored over an example edited meanwhile reads as stale and is never trusted. A report asked for before
they are stored signs the missing rows itself (and stores them too). Everything here is a cache: any failure
leaves NULLs behind, which the report fills.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy import Engine, text

from app.datasets.import_tokens import Signatures

LATE_WAIT_S = 600  # how long the thread waits for one block's signatures before it gives up (a stuck helper)
STORE_ROWS = 5_000  # rows per write transaction: the write lock is never held long
_STORE = text("UPDATE examples SET near_signature = :value WHERE dataset_id = :dataset AND position = :position")

LateBlock = tuple[int, Future[Signatures | None]]  # the first row's position, and the block's signatures


class LateSignatures:
    """The thread that stores an import's late signatures; `done` is set when it has ended, whatever happened."""

    def __init__(self, engine: Engine, dataset_id: int, blocks: list[LateBlock], release: Callable[[], None]):
        self.engine, self.dataset_id, self.blocks, self.release = engine, dataset_id, blocks, release
        self.stored = 0
        self.done = threading.Event()
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
            self.done.set()

    def _store(self, rows: list[dict]) -> None:
        if rows:
            with self.engine.begin() as connection:
                connection.execute(_STORE, rows)
            self.stored += len(rows)
