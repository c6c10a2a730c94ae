"""MinHash signatures of examples' text, made with numpy for thousands of examples at once: what near-duplicates
are judged on (app.datasets.quality.near_duplicates). No database here: the import's token-counting helper process
signs with it (app.datasets.import_tokens) and starts without SQLAlchemy.

The text is every message's text and tool-call arguments except system and developer prompts (a prompt shared by
every example would make them all alike), lower-cased, punctuation ignored; its shingles are runs of SHINGLE = 3
consecutive words. A signature has SIGNATURE_SIZE values ("one permutation hashing": each shingle's 64-bit hash
picks a bin and competes for its minimum; an empty bin borrows from the next one, Shrivastava and Li's
densification); the share of equal values of two signatures estimates the Jaccard index of their shingle sets.
Signatures are stored with the examples (stored_signatures): a change here needs a new stored_signatures.FORMAT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SHINGLE = 3  # words per shingle
SIGNATURE_SIZE = 64
CHUNK = 4_000  # texts hashed together
EMPTY = np.uint32(0xFFFFFFFF)
_PROMPT_ROLES = ("system", "developer")

# Bytes that make up words: ASCII letters and digits, and every byte of a non-ASCII UTF-8 character.
_WORD_BYTE = np.zeros(256, dtype=bool)
for _b in b"abcdefghijklmnopqrstuvwxyz0123456789":
    _WORD_BYTE[_b] = True
_WORD_BYTE[128:] = True
# A random 64-bit factor per position in a word (words longer than 64 bytes wrap around).
_POSITION_FACTORS = np.random.default_rng(20261203).integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)


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


def mix(x: np.ndarray) -> np.ndarray:
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
    joined = "\x00".join(texts) + "\x00"
    if joined.count("\x00") != n:  # a text's own NUL would end it early: a NUL is no word byte, a space neither
        joined = "\x00".join(t.replace("\x00", " ") for t in texts) + "\x00"
    data = np.frombuffer(joined.lower().encode("utf-8", "replace"), dtype=np.uint8)
    is_word = _WORD_BYTE[data]
    is_start = is_word.copy()
    is_start[1:] &= ~is_word[:-1]
    starts = np.flatnonzero(is_start)
    if len(starts) == 0:
        return
    # The word bytes alone, and each one's position in its word (its index less its word's first index).
    word_data = data[is_word]
    ends = np.flatnonzero(is_word[:-1] & ~is_word[1:]) + 1  # data ends with \x00, never in a word
    lengths = ends - starts
    first = np.zeros(len(starts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=first[1:])
    position = np.arange(len(word_data), dtype=np.int64)
    position -= np.repeat(first, lengths)
    position &= 63
    # Each byte's term, in place: (byte + 1) x its position's factor.
    values = word_data.astype(np.uint64)
    values += np.uint64(1)
    values *= _POSITION_FACTORS[position]
    word_doc = np.searchsorted(np.flatnonzero(data == 0), starts)  # the \x00 after each text ends it
    with np.errstate(over="ignore"):
        word_hash = mix(np.add.reduceat(values, first))
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
        h = mix(pair_hash)
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
