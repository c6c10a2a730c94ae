"""An import's token counts, counted beside the import while its file is still being read and written.

The Report's default model (gpt-4o-mini) counts with o200k_base, and counting was most of the first report after
an import. So every block of rows an import spools is counted here and the writer stores the counts with the
rows: the first report reads them instead of counting (bench/upload_to_report.py).

Where: a small import's blocks are counted on a thread. Past PROCESS_AFTER rows a helper process starts
(`python -m app.datasets.import_tokens`, a plain subprocess, so it never re-runs the caller's `__main__`) and every
later block goes to it (they wait in its pipe while it loads tiktoken's ranks): it has the other core and a GIL
of its own. On a thread, counting 100,000 examples slowed the import far below its 25,000/s target: tiktoken
releases the GIL while it encodes, but takes it back after every string, and each time it waited for the thread
parsing the file (counting on the thread until the helper was ready still cost the import 2 s of CPU under load).
Counts are a cache: a block whose count failed (the helper died, say) is written without them, and the report
counts those rows as it always did.

The same helper signs each block's examples for the report's near-duplicate pass (MinHash signatures, tagged with
their content hash: app.datasets.quality.stored_signatures), but only while no block waits to be counted: counting
comes first and the writer never waits for a signature. A block whose signatures are not back when the writer
reaches it is written without them (NULL), as is a block whose signing failed and every block of an import too
small to start a helper; the report signs those rows when it first needs them and stores what it signed. Signing
both ways made the helper the import's critical path (+29-66 % wall at 100,000 rows, bench/README.md); this way
the import keeps its speed and the helper signs in the time it would otherwise wait. Signing never runs in the
importing process: the blocks counted on the thread are kept and sent to the helper to be signed once it starts.
"""

from __future__ import annotations

import collections
import contextlib
import json
import marshal
import queue
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import IO, Any, NamedTuple

from app.datasets.quality.stored_signatures import sign_messages
from app.datasets.validation.checks import json_loads
from app.datasets.validation.tokens import count_openai, get_encoding

ENCODING = "o200k_base"  # the cache key of gpt-4o-mini, the Report's default model
PROCESS_AFTER = 5_000  # rows counted on a thread before a helper process starts (it takes ~0.5 s to be ready)
IN_FLIGHT = 32  # blocks waiting for their counts at most: parsing waits rather than run further ahead
_LENGTH = struct.Struct("<Q")
_NUMBER = struct.Struct("<I")  # a block's number (its place among the blocks sent to the helper) before its signatures
_READY = b"R"  # the helper's first byte: its encoding is loaded
_COUNT, _SIGN_ONLY = b"C", b"S"  # each block's first byte to the helper: count it (and sign), or only sign it
_COUNTS, _SIGNED = b"c", b"s"  # each answer's first byte from the helper: a block's counts, or a block's signatures
_CONTENT_HASH = 8  # a spooled row's content_hash (import_rows.ROW_FIELDS)
SIGN = True  # sign the examples too (bench/quality_pass.py turns it off to time the import without signing)
# Whether the writer waits for each block's signatures. Never in the product (see above); tests that check what the
# helper signed turn it on, so that every block has been signed when they look.
WAIT_FOR_SIGNATURES = False
Signatures = list[bytes | None]


class Counted(NamedTuple):
    """A block's cached columns: each row's token counts as the token_counts JSON, and its stored near-duplicate
    signature (either None: not computed, the report does it); `late`: the signatures still being made when the
    writer took the block (app.datasets.import_signing stores them once they are)."""

    counts: list[str] | None
    signatures: Signatures | None
    late: Future[Signatures | None] | None = None


def _records(payload: bytes) -> tuple[list[dict], list[str]]:
    """The records of a spooled block (marshalled rows that start with the messages, tools and extra JSON texts),
    as the report rebuilds them from the stored columns (report_rows.fill_counts), and their content hashes."""
    records = []
    hashes = []
    for row in marshal.loads(payload):
        messages, tools, extra = row[0], row[1], row[2]
        record = {"messages": json_loads(messages), "tools": None if tools is None else json_loads(tools)}
        if extra is not None:
            record.update(json_loads(extra))
        records.append(record)
        hashes.append(row[_CONTENT_HASH])
    return records, hashes


def _count(records: list[dict], encoding: str) -> array:
    """(total, assistant, trained) of each record, flat: 24 bytes an example, however big the file."""
    out = array("q")
    for c in count_openai(records, encoding):
        out.extend((c.total, c.assistant, c.trained))
    return out


def count_block(payload: bytes, encoding: str) -> array:
    """The token counts of each row of a spooled block (flat, see _count)."""
    return _count(_records(payload)[0], encoding)


def _signed(records: list[dict], hashes: list[str]) -> Signatures | None:
    """Each record's stored signature, all signed at once (None if that failed)."""
    try:
        return sign_messages([r["messages"] for r in records], hashes)
    except Exception:  # a cache: the report signs these rows itself
        return None


class _Block(NamedTuple):
    """A block the helper was given: its counts' future, then its signatures' (None: not signing)."""

    counts: Future[array]
    signatures: Future[Signatures | None] | None


class _Helper:
    """The helper process: blocks in through its stdin; each block's counts back through its stdout in order and,
    with `sign`, its signatures whenever it is free to make them, newest first (numbered answers)."""

    def __init__(self, encoding: str, sign: bool = True):
        self.sign = sign
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.datasets.import_tokens", encoding, *(["sign"] if sign else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._lock = threading.Lock()
        self._counts: collections.deque[Future[array]] = collections.deque()
        self._signatures: dict[int, Future[Signatures | None]] = {}  # by block number, as the helper numbers them
        self._submitted = 0
        self._dead = False
        self.ready = threading.Event()
        self._outbox: queue.SimpleQueue[tuple[bytes, bytes] | None] = queue.SimpleQueue()
        # Writing to a full pipe blocks: a thread of its own does it, so parsing never waits on the helper.
        self._threads = [
            threading.Thread(target=self._send, name="import-tokens-send", daemon=True),
            threading.Thread(target=self._receive, name="import-tokens-receive", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, payload: bytes, count: bool = True) -> _Block:
        """Count (and sign) a block in the helper; without `count`, only sign it (preference pairs)."""
        block = _Block(Future(), Future() if self.sign else None)
        with self._lock:
            if self._dead:
                ended = RuntimeError("the token counting process has ended")
                block.counts.set_exception(ended)
                if block.signatures is not None:
                    block.signatures.set_exception(ended)
                return block
            self._counts.append(block.counts)
            if block.signatures is not None:
                self._signatures[self._submitted] = block.signatures
            self._submitted += 1
        self._outbox.put((_COUNT if count else _SIGN_ONLY, payload))
        return block

    def _send(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            while (item := self._outbox.get()) is not None:
                flag, payload = item
                stdin.write(_LENGTH.pack(len(flag) + len(payload)))
                stdin.write(flag)
                stdin.write(payload)
                stdin.flush()
        except OSError:
            pass  # the helper has gone: the receiving thread fails what it has not answered
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _receive(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            if _read(stdout, len(_READY)) == _READY:
                self.ready.set()
            while self.ready.is_set() and (header := _read(stdout, 1 + _LENGTH.size)) is not None:
                payload = _read(stdout, _LENGTH.unpack(header[1:])[0])
                if payload is None:
                    break
                if header[:1] == _COUNTS:
                    counts = array("q")
                    counts.frombytes(payload)
                    with self._lock:
                        self._counts.popleft().set_result(counts)
                else:
                    (number,) = _NUMBER.unpack_from(payload)
                    signed: Signatures | None = marshal.loads(payload[_NUMBER.size :])
                    with self._lock:
                        self._signatures.pop(number).set_result(signed)
        except (OSError, ValueError, IndexError):
            pass
        with self._lock:
            self._dead = True
            failed: list[Future[Any]] = [*self._counts, *self._signatures.values()]
            self._counts, self._signatures = collections.deque(), {}
        for future in failed:
            future.set_exception(RuntimeError("the token counting process has ended"))

    def close(self) -> None:
        """End the helper now: every count it was asked for has been taken, or is no longer wanted (and one still
        loading its ranks would otherwise make a mid-sized import wait for it)."""
        self._outbox.put(None)
        self.process.kill()
        self.process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read(stream: IO[bytes], size: int) -> bytes | None:
    """Exactly `size` bytes, or None at the end of the stream."""
    data = stream.read(size)
    return data if len(data) == size else None


class ImportCounts:
    """The token counts (and signatures) of an import's row blocks, in the order the blocks were spooled."""

    def __init__(self, encoding: str = ENCODING):
        self.encoding = encoding
        self.rows = 0
        self._thread: ThreadPoolExecutor | None = None
        self._helper: _Helper | None = None
        self.sign = SIGN
        self._blocks: list[_Block] = []
        # Blocks counted on the thread, unsigned, waiting for the helper; then their signatures, by block.
        self._unsigned: list[tuple[int, bytes]] = []
        self._signed_later: dict[int, Future[Signatures | None] | None] = {}
        # The cached JSON as the report writes it (json.dumps of {key: {...}}), formatted without a dumps per row.
        key = json.dumps(encoding)[1:-1].replace("%", "%%")
        self._text = '{"' + key + '": {"total": %d, "assistant": %d, "trained": %d}}'

    def add(self, block: bytes, rows: int, count: bool = True) -> None:
        """Count the next spooled block (`rows` rows, as RowSpool.add marshalled them), in the background; without
        `count` only sign it (preference pairs: the report counts them), or skip it when not signing either."""
        if not count and not self.sign:
            return
        self.rows += rows
        if self.rows > PROCESS_AFTER and self._helper is None:
            with contextlib.suppress(OSError):  # no helper: the thread goes on counting
                self._helper = _Helper(self.encoding, self.sign)
            if self._helper is not None:
                for index, unsigned in self._unsigned:
                    self._signed_later[index] = self._helper.submit(unsigned, False).signatures  # sign only
                self._unsigned = []
        if self._helper is not None:
            self._blocks.append(self._helper.submit(block, count))
            return self._wait()
        if self.sign:
            self._unsigned.append((len(self._blocks), block))
        counted: Future[array]
        if count:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="import-tokens")
            counted = self._thread.submit(count_block, block, self.encoding)
        else:  # nothing for the thread to do
            counted = Future()
            counted.set_result(array("q"))
        self._blocks.append(_Block(counted, None))
        self._wait()

    def _wait(self) -> None:
        """Parsing waits rather than run more than IN_FLIGHT blocks ahead of the counting."""
        if len(self._blocks) > IN_FLIGHT:
            wait([self._blocks[-IN_FLIGHT - 1].counts], return_when=FIRST_EXCEPTION)

    def texts(self) -> Iterator[Counted]:
        """Each block's counts as the JSON the token_counts column stores, and its stored signatures when they are
        back (None: that block was not counted, or not signed yet)."""
        text = self._text
        for index, block in enumerate(self._blocks):
            try:
                flat = block.counts.result()
            except Exception:  # a cache: the report counts (and signs) these rows itself
                flat = None
            signing = self._signed_later.get(index, block.signatures)
            signed = late = None
            if signing is not None and (WAIT_FOR_SIGNATURES or signing.done()):
                with contextlib.suppress(Exception):  # failed: the report signs these rows
                    signed = signing.result()
            elif signing is not None:
                late = signing
            counts = [text % (flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)] if flat else None
            yield Counted(counts, signed, late)  # no counts: a block that was only signed, or whose count failed

    def keep_signing(self) -> Callable[[], None]:
        """Leave the helper running after close() (it still signs the blocks the writer took without their
        signatures); the returned function ends it."""
        helper, self._helper = self._helper, None
        return helper.close if helper is not None else (lambda: None)

    def close(self) -> None:
        """Stop counting and free the thread and the helper (counts not taken yet are dropped)."""
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        self._unsigned = []


def _inbox(stream: IO[bytes], inbox: queue.SimpleQueue[bytes | None]) -> None:
    """The helper's reading thread: every block from `stream` into `inbox`, then None at its end."""
    while (header := _read(stream, _LENGTH.size)) is not None:
        payload = _read(stream, _LENGTH.unpack(header)[0])
        if payload is None:
            break
        inbox.put(payload)
    inbox.put(None)


def _answer(stream: IO[bytes], kind: bytes, payload: bytes) -> None:
    stream.write(kind + _LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def main() -> None:
    """The helper process: count each block read from stdin and write its counts to stdout; when started with
    "sign", sign the blocks too, newest first, whenever no block waits to be counted (counting comes first: the
    import waits for counts, never for signatures)."""
    encoding = sys.argv[1] if len(sys.argv) > 1 else ENCODING
    sign = sys.argv[2:3] == ["sign"]
    get_encoding(encoding)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(_READY)
    stdout.flush()
    inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_inbox, args=(stdin, inbox), daemon=True).start()
    # Blocks still to sign with their numbers, as they came (~700 bytes a row: far smaller than parsed records).
    # Newest first: the writer takes the blocks oldest first and never waits, so a signature made for a block it
    # has already written is wasted; signed from the other end, the two meet in the middle.
    to_sign: list[tuple[int, bytes]] = []
    received = 0
    while True:
        try:
            payload = inbox.get(block=not to_sign)
        except queue.Empty:  # nothing to count: sign the newest block waiting for it
            number, rows = to_sign.pop()
            _answer(stdout, _SIGNED, _NUMBER.pack(number) + marshal.dumps(_signed(*_records(rows))))
            continue
        if payload is None:
            break
        counts = count_block(payload[1:], encoding) if payload[:1] == _COUNT else array("q")
        _answer(stdout, _COUNTS, counts.tobytes())
        if sign:
            to_sign.append((received, payload[1:]))
        received += 1


if __name__ == "__main__":
    main()
