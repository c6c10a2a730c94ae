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

from app.datasets.quality.minhash import EMPTY, SIGNATURE_SIZE, comparable_text, mix, signatures
from app.tables.dataset import EXAMPLES

__all__ = [
    "SIGNATURE_SIZE",
    "THRESHOLD",
    "Cluster",
    "comparable_text",
    "find_clusters",
    "near_duplicate_clusters",
    "signatures",
    "similarity",
]

THRESHOLD = 0.7  # estimated Jaccard index of word-pair shingles at or above which two examples are near-duplicates
BANDS, ROWS = 16, 4  # BANDS * ROWS == SIGNATURE_SIZE; ROWS even (a band is read as uint64 words)
MAX_BUCKET = 64  # a bucket with more members is joined as a star (each to its first) rather than pair by pair


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


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard index of two signatures: the share of equal values."""
    return float((a == b).mean())


def _candidate_pairs(sig: np.ndarray) -> np.ndarray:
    """(a, b) rows, a < b, that share at least one band (all of its ROWS values): an (m, 2) int64 array.

    Within a band's bucket each row is paired with the next MAX_BUCKET rows of the bucket (in row order), so a
    bucket of thousands of alike rows stays linked without its millions of pairs.

    Buckets come from one plain sort per band (SIMD, ~17x a stable argsort here) of a key whose low bits are the
    row's index, so a bucket's rows stay in row order: the band's values hashed to the other (at least 40) bits.
    Two buckets whose hashes share those bits (about 1 in 10^4 bands at 100,000 rows) only add candidate pairs,
    and every candidate is measured against the threshold."""
    n = len(sig)
    found: list[np.ndarray] = []
    usable = np.flatnonzero(sig[:, 0] != EMPTY)  # a text without words shares nothing
    m = len(usable)
    if m < 2:
        return np.empty((0, 2), dtype=np.int64)
    shift = np.uint64(m.bit_length())
    low = (np.uint64(1) << shift) - np.uint64(1)
    index = np.arange(m, dtype=np.uint64)
    for band in range(BANDS):
        # The band's ROWS uint32 values as ROWS / 2 uint64 words, hashed together.
        words = np.ascontiguousarray(sig[usable, band * ROWS : (band + 1) * ROWS]).view(np.uint64)
        with np.errstate(over="ignore"):
            key = mix(words[:, 0] + np.uint64(0x632BE59BD9B4E019))
            for col in range(1, words.shape[1]):
                key = mix(key ^ words[:, col])
        packed = (key << shift) | index
        packed.sort()
        order = (packed & low).astype(np.int64)
        ranked = packed >> shift
        for distance in range(1, MAX_BUCKET + 1):
            same = np.flatnonzero(ranked[distance:] == ranked[:-distance])
            if len(same) == 0:
                break
            found.append(np.stack((usable[order[same]], usable[order[same + distance]]), axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found)
    pairs.sort(axis=1)
    codes = pairs[:, 0] * n + pairs[:, 1]
    codes.sort()  # then the distinct ones: np.unique's result, without its (here slower) hash table
    codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    return np.stack((codes // n, codes % n), axis=1)


def find_clusters(
    ids: Sequence[int],
    hashes: Sequence[str],
    texts: Sequence[str | None],
    sides: Sequence[str],
    threshold: float = THRESHOLD,
    known: MutableMapping[str, bytes] | None = None,
    stored: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Cluster]:
    """Clusters of near-duplicate examples among the given ones (ids in the order to list them).

    `hashes`: each example's content hash (equal hashes are exact duplicates: listed in a cluster, never one alone);
    `sides`: "train", "validation" or another dataset's mark: a cluster with two sides leaks across them;
    `known`: signatures by content hash, read and filled in (a text may then be None where its hash is known);
    `stored` (with `known`): each example's signature as stored with its row, and a mask of those that are valid
    (a text may be None there too)."""
    # One signature per distinct text (or content hash): exact copies cost nothing extra.
    keys: Sequence[str | None] = texts if known is None else hashes
    # Each row's distinct key, numbered in order of first appearance, and the first row of each.
    numbered = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    key_of = np.fromiter(map(numbered.__getitem__, keys), dtype=np.int64, count=len(keys))
    first_row: list[int] = np.unique(key_of, return_index=True)[1].tolist()
    if stored is not None and known is not None:
        # Per distinct content, a row whose stored signature is valid, where one is (the first row otherwise).
        valid = stored[1]
        unsigned = np.zeros(len(first_row), dtype=bool)
        unsigned[~valid[first_row]] = True
        for row in np.flatnonzero(valid & unsigned[key_of]).tolist():
            index = int(key_of[row])
            if unsigned[index]:
                first_row[index] = row
                unsigned[index] = False
        picked = np.asarray(first_row, dtype=np.int64)
        given = (stored[0][picked], stored[1][picked])
    else:
        given = None
    sig = _signatures_of([hashes[r] for r in first_row], [texts[r] for r in first_row], known, given)
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
    joined = np.zeros(len(first_row), dtype=bool)
    joined[list(touched)] = True  # the others are alone, or exact copies only
    for row in np.flatnonzero(joined[key_of]).tolist():
        members.setdefault(root(int(key_of[row])), []).append(row)
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
    hashes: Sequence[str],
    texts: Sequence[str | None],
    known: MutableMapping[str, bytes] | None,
    stored: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Signatures of distinct examples: as stored where valid, else from `known` where it has them, else computed
    (and kept there)."""
    if known is None:
        return signatures([t or "" for t in texts])
    sig = np.empty((len(hashes), SIGNATURE_SIZE), dtype=np.uint32)
    if stored is None:
        cached = [known.get(h) for h in hashes]
    else:
        sig[stored[1]] = stored[0][stored[1]]
        cached = [b"" if ok else known.get(h) for ok, h in zip(stored[1].tolist(), hashes, strict=True)]
    missing = [i for i, c in enumerate(cached) if c is None]
    have = [i for i, c in enumerate(cached) if c]  # b"": taken from `stored` above
    if have:
        block = b"".join(c for c in cached if c)
        sig[have] = np.frombuffer(block, dtype="<u4").reshape(len(have), SIGNATURE_SIZE)
    if missing:
        fresh = signatures([texts[i] or "" for i in missing])
        sig[missing] = fresh
        for i, row in zip(missing, fresh, strict=True):
            known[hashes[i]] = row.astype("<u4").tobytes()  # little-endian, as stored_signatures keeps them
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
