"""Each example's MinHash signature as stored with its row (`examples.near_signature`, migration 0011).

The report's near-duplicate pass reads these instead of every example's text. A stored value is FORMAT, then the
first TAG bytes of the content hash it was signed with, then the SIGNATURE_SIZE values (little-endian uint32).
The tag makes the cache safe against any path that changes an example's content and forgets the signature: a
signature whose tag is not the row's current content hash is stale and is recomputed, never trusted. FORMAT
changes whenever `minhash.signatures` does, so every older signature then reads as stale too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.datasets.quality.minhash import SIGNATURE_SIZE, comparable_text, signatures

FORMAT = b"mh1:"  # this module's layout and near_duplicates' signing (shingles, seeds, densification), version 1
TAG = 8  # bytes of the content hash
SIGNATURE_BYTES = 4 * SIGNATURE_SIZE
STORED_BYTES = len(FORMAT) + TAG + SIGNATURE_BYTES
_HEADER = len(FORMAT) + TAG
LITTLE = np.dtype("<u4")


def header(content_hash: str) -> bytes | None:
    """FORMAT and the tag of a content hash (hex sha256); None for a hash that is not one (nothing stored
    under it is trusted)."""
    try:
        tag = bytes.fromhex(content_hash[: 2 * TAG])
    except ValueError:
        return None
    return FORMAT + tag if len(tag) == TAG else None


def pack(content_hashes: Sequence[str], sig: np.ndarray) -> list[bytes | None]:
    """The stored form of each row of `sig` (a signatures() array), tagged with its example's content hash."""
    values = sig.astype(LITTLE, copy=False)
    out: list[bytes | None] = []
    for digest, row in zip(content_hashes, values, strict=True):
        head = header(digest)
        out.append(None if head is None else head + row.tobytes())
    return out


def sign_messages(messages: Sequence[object], content_hashes: Sequence[str]) -> list[bytes | None]:
    """The stored signatures of examples given as their decoded messages (one signatures() call for all)."""
    return pack(content_hashes, signatures([comparable_text(m) for m in messages]))


def unpack(stored: bytes | None, content_hash: str) -> bytes | None:
    """The signature's SIGNATURE_BYTES (little-endian uint32) when `stored` belongs to this content hash, else
    None (nothing stored, an older format, or stale: the example changed after it was signed)."""
    if stored is None or len(stored) != STORED_BYTES:
        return None
    head = header(content_hash)
    if head is None or stored[:_HEADER] != head:
        return None
    return bytes(stored[_HEADER:])


def unpack_many(stored: Sequence[bytes | None], content_hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Many rows' stored signatures at once: a (n, SIGNATURE_SIZE) uint32 array and a mask of the rows whose
    stored value belongs to their content hash (the other rows of the array are meaningless)."""
    n = len(stored)
    blank = bytes(STORED_BYTES)  # its zero FORMAT never matches
    sized = [s if s is not None and len(s) == STORED_BYTES else blank for s in stored]
    data = np.frombuffer(b"".join(sized), dtype=np.uint8).reshape(n, STORED_BYTES)
    try:
        tags = bytes.fromhex("".join([h[: 2 * TAG] for h in content_hashes]))
    except ValueError:
        tags = b""
    if len(tags) == n * TAG:
        expected = np.frombuffer(tags, dtype=np.uint8).reshape(n, TAG)
        ok = (data[:, len(FORMAT) : _HEADER] == expected).all(axis=1)
    else:  # a hash that is not hex (or too short): row by row
        ok = np.array([header(h) is not None for h in content_hashes], dtype=bool)
        heads = [header(h) or bytes(_HEADER) for h in content_hashes]
        expected = np.frombuffer(b"".join(heads), dtype=np.uint8).reshape(n, _HEADER)[:, len(FORMAT) :]
        ok &= (data[:, len(FORMAT) : _HEADER] == expected).all(axis=1)
    ok &= (data[:, : len(FORMAT)] == np.frombuffer(FORMAT, dtype=np.uint8)).all(axis=1)
    sig = np.ascontiguousarray(data[:, _HEADER:]).view(LITTLE).astype(np.uint32)
    return sig, ok
