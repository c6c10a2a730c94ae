"""Near-duplicate examples: the same conversation written twice with small edits, within a dataset, across its
train/validation split, or against another dataset.

Similarity is the Jaccard index of two examples' sets of shingles, runs of SHINGLE = 3 consecutive words, over the
text of every message except system and developer prompts (a prompt shared by every example would make them all
alike), lower-cased, punctuation ignored. Two examples are near-duplicates at THRESHOLD = 0.7 or more: one or two
changed words in 40 (each changed word removes up to three shingles and adds as many; 1 word: J = 0.85, 2 words:
0.73, 3 words: 0.62, 5 words: 0.45). Below that lie honest variations on a theme.

The Jaccard index is estimated from a MinHash signature of SIGNATURE_SIZE values per example, made with numpy for
thousands of examples at once ("one permutation hashing": each shingle's 64-bit hash picks a bin and competes for
its minimum; an empty bin borrows from the next one, Shrivastava and Li's densification); the estimate is the
share of equal values (standard error about 0.06 at J = 0.7). Locality-sensitive hashing (BANDS bands of ROWS
values) gives the candidate pairs without comparing every pair: a pair at J = 0.7 shares a band with probability
0.99, at J = 0.3 with 0.12. datasketch's MinHash, which hashes one shingle at a time in Python, is far slower here
(bench/quality_pass.py).

Examples with the very same content hash are exact duplicates: they are the `duplicate_example` code's and are
not a cluster on their own; a cluster needs at least two different contents.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from app.tables.dataset import EXAMPLES

SHINGLE = 3  # words per shingle
THRESHOLD = 0.7  # estimated Jaccard index of word-pair shingles at or above which two examples are near-duplicates
SIGNATURE_SIZE = 64
BANDS, ROWS = 16, 4  # BANDS * ROWS == SIGNATURE_SIZE
CHUNK = 4_000  # texts hashed together
MAX_BUCKET = 64  # a bucket with more members is joined as a star (each to its first) rather than pair by pair
EMPTY = np.uint32(0xFFFFFFFF)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_PROMPT_ROLES = ("system", "developer")

# Bytes that make up words: ASCII letters and digits, and every byte of a non-ASCII UTF-8 character.
_WORD_BYTE = np.zeros(256, dtype=bool)
for _b in b"abcdefghijklmnopqrstuvwxyz0123456789":
    _WORD_BYTE[_b] = True
_WORD_BYTE[128:] = True
# A random 64-bit factor per position in a word (words longer than 64 bytes wrap around).
_POSITION_FACTORS = np.random.default_rng(20261203).integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)


@dataclass(frozen=True)
class Cluster:
    """Near-duplicate examples: their ids (in position order), the lowest estimated Jaccard index among the pairs
    that joined them, and whether they span the train/validation split (or the two datasets compared)."""

    example_ids: list[int]
    similarity: float
    leaks_split: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report API."""
        return {
            "example_ids": self.example_ids,
            "similarity": round(self.similarity, 3),
            "leaks_split": self.leaks_split,
        }


def comparable_text(messages: Any) -> str:
    """The text near-duplicates are judged on: every message's text and tool-call arguments but the prompts'."""
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") in _PROMPT_ROLES:
            continue
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        for call in m.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                parts.append(f"{fn.get('name', '')} {fn.get('arguments', '')}")
    return "\n".join(parts)


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit finalizer (splitmix64's): spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signatures(texts: Sequence[str]) -> np.ndarray:
    """A (len(texts), SIGNATURE_SIZE) uint32 MinHash signature per text; EMPTY where a bin got no shingle.

    Texts are hashed CHUNK at a time (small arrays stay in the CPU's caches): words from a byte mask, each word's
    hash as a sum of byte x position factor (np.add.reduceat), word pairs from neighbouring word hashes, then each
    pair's bin minimum by one sort."""
    sig = np.full((len(texts), SIGNATURE_SIZE), EMPTY, dtype=np.uint32)
    for start in range(0, len(texts), CHUNK):
        part = sig[start : start + CHUNK]
        _sign(texts[start : start + CHUNK], part)
        _densify(part)
    return sig


def _densify(sig: np.ndarray) -> None:
    """Fill each empty bin from the next non-empty bin to its right (circularly), offset by the distance
    (Shrivastava and Li's rotation): short texts then band like long ones instead of matching on empty bins."""
    empty = sig == EMPTY
    if not empty.any():
        return
    width = SIGNATURE_SIZE
    columns = np.arange(2 * width)
    doubled_empty = np.concatenate((empty, empty), axis=1)
    index = np.where(doubled_empty, 2 * width, columns)
    nearest = np.minimum.accumulate(index[:, ::-1], axis=1)[:, ::-1][:, :width]
    rows = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))  # a text without words stays all EMPTY
    near = nearest[rows]
    distance = (near - np.arange(width)).astype(np.uint64)
    source = np.concatenate((sig[rows], sig[rows]), axis=1)[np.arange(len(rows))[:, None], near].astype(np.uint64)
    with np.errstate(over="ignore"):
        filled = ((source + distance * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    filled = np.minimum(filled, EMPTY - np.uint32(1))
    sig[rows] = np.where(empty[rows], filled, sig[rows])


def _sign(texts: Sequence[str], sig: np.ndarray) -> None:
    n = len(texts)
    data = np.frombuffer(("\x00".join(texts) + "\x00").lower().encode("utf-8", "replace"), dtype=np.uint8)
    is_word = _WORD_BYTE[data]
    is_start = is_word.copy()
    is_start[1:] &= ~is_word[:-1]
    starts = np.flatnonzero(is_start)
    if len(starts) == 0:
        return
    # The word bytes alone, and each one's position in its word (from the running index of the last start).
    word_data = data[is_word]
    start_mask = is_start[is_word]
    index = np.arange(len(word_data), dtype=np.int32)
    position = index - np.maximum.accumulate(np.where(start_mask, index, 0))
    values = (word_data.astype(np.uint64) + np.uint64(1)) * _POSITION_FACTORS[position & 63]
    first = np.flatnonzero(start_mask)
    word_doc = np.searchsorted(np.flatnonzero(data == 0), starts)  # the \x00 after each text ends it
    with np.errstate(over="ignore"):
        word_hash = _mix(np.add.reduceat(values, first))
        # Shingles: SHINGLE consecutive words of one text, their hashes combined with a different factor each.
        last = len(word_hash) - SHINGLE + 1
        same = word_doc[:last] == word_doc[SHINGLE - 1 :] if last > 0 else np.zeros(0, dtype=bool)
        pair_hash = np.zeros(int(same.sum()), dtype=np.uint64)
        for k in range(SHINGLE):
            pair_hash = pair_hash * np.uint64(0x9E3779B97F4A7C15) + word_hash[k : k + last][same]
        pair_doc = word_doc[:last][same]
        # A text of fewer words still has shingles: its words.
        counts = np.bincount(word_doc, minlength=n)
        short = np.flatnonzero((counts > 0) & (counts < SHINGLE))
        if len(short):
            lone = np.isin(word_doc, short)
            pair_hash = np.concatenate((pair_hash, word_hash[lone]))
            pair_doc = np.concatenate((pair_doc, word_doc[lone]))
        h = _mix(pair_hash)
    # Key (text, bin from the top 6 bits, value from the low 32, EMPTY kept free); one sort, then the first of
    # each (text, bin) run is that bin's minimum.
    value = np.minimum(h & np.uint64(0xFFFFFFFF), np.uint64(0xFFFFFFFE))
    keys = (pair_doc.astype(np.uint64) << np.uint64(38)) | ((h >> np.uint64(58)) << np.uint64(32)) | value
    keys.sort()
    slot = keys >> np.uint64(32)
    head = np.ones(len(keys), dtype=bool)
    head[1:] = slot[1:] != slot[:-1]
    kept = keys[head]
    rows = (kept >> np.uint64(38)).astype(np.int64)
    cols = ((kept >> np.uint64(32)) & np.uint64(63)).astype(np.int64)
    sig[rows, cols] = (kept & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard index of two signatures: the share of equal values."""
    return float((a == b).mean())


def _candidate_pairs(sig: np.ndarray) -> np.ndarray:
    """(a, b) rows, a < b, that share at least one band (all of its ROWS values): an (m, 2) int64 array.

    Within a band's bucket each row is paired with the next MAX_BUCKET rows of the bucket, so a bucket of
    thousands of alike rows stays linked without its millions of pairs."""
    n = len(sig)
    found: list[np.ndarray] = []
    usable = np.flatnonzero(sig[:, 0] != EMPTY)  # a text without words shares nothing
    if len(usable) < 2:
        return np.empty((0, 2), dtype=np.int64)
    for band in range(BANDS):
        block = sig[usable, band * ROWS : (band + 1) * ROWS].astype(np.uint64)
        with np.errstate(over="ignore"):
            key = _mix(block[:, 0] + np.uint64(0x632BE59BD9B4E019))
            for col in range(1, ROWS):
                key = _mix(key ^ block[:, col])
        order = np.argsort(key, kind="stable")
        ranked = key[order]
        for distance in range(1, MAX_BUCKET + 1):
            same = np.flatnonzero(ranked[distance:] == ranked[:-distance])
            if len(same) == 0:
                break
            found.append(np.stack((usable[order[same]], usable[order[same + distance]]), axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found)
    pairs.sort(axis=1)
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack((codes // n, codes % n), axis=1)


def find_clusters(
    ids: Sequence[int],
    hashes: Sequence[str],
    texts: Sequence[str | None],
    sides: Sequence[str],
    threshold: float = THRESHOLD,
    known: MutableMapping[str, bytes] | None = None,
) -> list[Cluster]:
    """Clusters of near-duplicate examples among the given ones (ids in the order to list them).

    `hashes`: each example's content hash (equal hashes are exact duplicates: listed in a cluster, never one alone);
    `sides`: "train", "validation" or another dataset's mark: a cluster with two sides leaks across them;
    `known`: signatures by content hash, read and filled in (a text may then be None where its hash is known)."""
    # One signature per distinct text (or content hash): exact copies cost nothing extra.
    keys: Sequence[str | None] = texts if known is None else hashes
    unique: dict[str | None, int] = {}
    first_row: list[int] = []
    key_of = []
    for row, key in enumerate(keys):
        index = unique.get(key)
        if index is None:
            index = unique[key] = len(first_row)
            first_row.append(row)
        key_of.append(index)
    sig = _signatures_of([hashes[r] for r in first_row], [texts[r] for r in first_row], known)
    parent = list(range(len(first_row)))
    lowest: dict[int, float] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = _candidate_pairs(sig)
    estimates = (sig[pairs[:, 0]] == sig[pairs[:, 1]]).mean(axis=1)
    close = estimates >= threshold
    touched: set[int] = set()
    for (a, b), s in zip(pairs[close].tolist(), estimates[close].tolist(), strict=True):
        touched.update((a, b))
        ra, rb = root(a), root(b)
        low = min(s, lowest.get(ra, 1.0), lowest.get(rb, 1.0))
        if ra != rb:
            parent[rb] = ra
        lowest[ra] = low
    members: dict[int, list[int]] = {}
    for row, index in enumerate(key_of):
        if index in touched:  # the others are alone, or exact copies only
            members.setdefault(root(index), []).append(row)
    clusters = []
    for r, rows in members.items():
        if len({hashes[row] for row in rows}) < 2:
            continue  # exact copies only (duplicate_example's)
        clusters.append(
            Cluster(
                example_ids=[ids[row] for row in rows],
                similarity=lowest.get(r, 1.0),
                leaks_split=len({sides[row] for row in rows}) > 1,
            )
        )
    clusters.sort(key=lambda c: c.example_ids[0])
    return clusters


def _signatures_of(
    hashes: Sequence[str], texts: Sequence[str | None], known: MutableMapping[str, bytes] | None
) -> np.ndarray:
    """Signatures of distinct examples: from `known` where it has them, else computed (and kept there)."""
    if known is None:
        return signatures([t or "" for t in texts])
    sig = np.empty((len(hashes), SIGNATURE_SIZE), dtype=np.uint32)
    cached = [known.get(h) for h in hashes]
    missing = [i for i, c in enumerate(cached) if c is None]
    have = [i for i, c in enumerate(cached) if c is not None]
    if have:
        block = b"".join(c for c in cached if c is not None)
        sig[have] = np.frombuffer(block, dtype=np.uint32).reshape(len(have), SIGNATURE_SIZE)
    if missing:
        fresh = signatures([texts[i] or "" for i in missing])
        sig[missing] = fresh
        for i, row in zip(missing, fresh, strict=True):
            known[hashes[i]] = row.tobytes()
    return sig


def _rows(session: Session, dataset_id: int) -> Iterable[tuple[int, str, Any, str | None]]:
    t = EXAMPLES.c
    query = select(t.id, t.content_hash, t.messages, t.split).where(t.dataset_id == dataset_id)
    return session.execute(query.order_by(t.position, t.id)).all()


def near_duplicate_clusters(session: Session, dataset_id: int, other_dataset_id: int | None = None) -> list[Cluster]:
    """The dataset's near-duplicate clusters. Within one dataset a cluster leaks when it holds both training and
    validation examples; with `other_dataset_id`, only clusters that hold examples of both datasets are returned
    (all of them leak)."""
    ids: list[int] = []
    hashes: list[str] = []
    texts: list[str] = []
    sides: list[str] = []
    for dataset, mark in ((dataset_id, None), (other_dataset_id, "other")):
        if dataset is None:
            continue
        for row_id, content_hash, messages, split in _rows(session, dataset):
            ids.append(row_id)
            hashes.append(content_hash or "")
            texts.append(comparable_text(messages))
            sides.append(mark or ("validation" if split == "validation" else "train"))
    clusters = find_clusters(ids, hashes, texts, sides)
    if other_dataset_id is None:
        return clusters
    other = {i for i, s in zip(ids, sides, strict=True) if s == "other"}
    return [c for c in clusters if any(i in other for i in c.example_ids) and not set(c.example_ids) <= other]
