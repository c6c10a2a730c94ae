"""Text similarity metrics, each a score from 0 to 1: fuzzy match, sentence BLEU, GLEU, ROUGE-N and ROUGE-L.

`input` is the candidate, `reference` the text it is measured against. Tokens:
- BLEU and GLEU: words and single punctuation marks, case kept (as sacreBLEU's default tokenizer does, roughly);
- ROUGE: lower-cased runs of letters and digits (rouge-score's tokenizer, but any script's letters count).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Sequence

_BLEU_TOKEN = re.compile(r"\w+|[^\w\s]")
_ROUGE_TOKEN = re.compile(r"[^\W_]+")
MAX_ORDER = 4


def bleu_tokens(text: str) -> list[str]:
    """Words and punctuation marks, case kept."""
    return _BLEU_TOKEN.findall(text)


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased runs of letters and digits."""
    return _ROUGE_TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """How often each n-gram occurs."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence (bit-parallel: one big-integer step per element of `b`)."""
    if not a or not b:
        return 0
    masks: dict[Hashable, int] = {}
    for index, element in enumerate(a):
        masks[element] = masks.get(element, 0) | (1 << index)
    full = (1 << len(a)) - 1
    row = full
    for element in b:
        matches = row & masks.get(element, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()


def fuzzy_match(text: str, reference: str) -> float:
    """Normalized indel similarity of the two strings, as rapidfuzz's `fuzz.ratio` / 100 (1.0 for two empty)."""
    total = len(text) + len(reference)
    return 1.0 if total == 0 else 2 * lcs_length(text, reference) / total


def bleu(text: str, reference: str) -> float:
    """Sentence BLEU up to 4-grams, with sacreBLEU's defaults: exponential smoothing, effective order."""
    candidate, ref = bleu_tokens(text), bleu_tokens(reference)
    if not candidate or not ref:
        return 0.0
    order = min(MAX_ORDER, len(candidate))
    log_sum = 0.0
    smooth = 1.0
    for n in range(1, order + 1):
        counts, ref_counts = ngrams(candidate, n), ngrams(ref, n)
        total = sum(counts.values())
        matches = sum(min(count, ref_counts[gram]) for gram, count in counts.items())
        if n == 1 and matches == 0:
            return 0.0
        if matches == 0:
            # A missing higher-order match halves the precision each time, instead of zeroing the score.
            smooth *= 2
            log_sum += math.log(1 / (smooth * total))
        else:
            log_sum += math.log(matches / total)
    brevity = 1.0 if len(candidate) >= len(ref) else math.exp(1 - len(ref) / len(candidate))
    return brevity * math.exp(log_sum / order)


def gleu(text: str, reference: str) -> float:
    """Sentence GLEU (Google BLEU): the lesser of n-gram precision and recall over 1- to 4-grams (as NLTK's)."""
    candidate, ref = bleu_tokens(text), bleu_tokens(reference)
    matches = candidate_total = ref_total = 0
    for n in range(1, MAX_ORDER + 1):
        counts, ref_counts = ngrams(candidate, n), ngrams(ref, n)
        candidate_total += sum(counts.values())
        ref_total += sum(ref_counts.values())
        matches += sum(min(count, ref_counts[gram]) for gram, count in counts.items())
    if not candidate_total or not ref_total:
        return 0.0
    return min(matches / candidate_total, matches / ref_total)


def f_measure(overlap: float, candidate_total: int, ref_total: int) -> float:
    """F1 of precision overlap/candidate_total and recall overlap/ref_total (0 when either is empty)."""
    if not overlap or not candidate_total or not ref_total:
        return 0.0
    precision, recall = overlap / candidate_total, overlap / ref_total
    return 2 * precision * recall / (precision + recall)


def rouge_n(text: str, reference: str, n: int) -> float:
    """ROUGE-N F-measure: n-gram overlap between the texts."""
    counts, ref_counts = ngrams(rouge_tokens(text), n), ngrams(rouge_tokens(reference), n)
    overlap = sum(min(count, ref_counts[gram]) for gram, count in counts.items())
    return f_measure(overlap, sum(counts.values()), sum(ref_counts.values()))


def rouge_l(text: str, reference: str) -> float:
    """ROUGE-L F-measure: longest common subsequence of tokens."""
    candidate, ref = rouge_tokens(text), rouge_tokens(reference)
    return f_measure(lcs_length(candidate, ref), len(candidate), len(ref))


def similarity(metric: str, text: str, reference: str) -> float:
    """The named metric's score (OpenAI's metric names: fuzzy_match, bleu, gleu, rouge_1 … rouge_5, rouge_l)."""
    if metric == "fuzzy_match":
        return fuzzy_match(text, reference)
    if metric == "bleu":
        return bleu(text, reference)
    if metric == "gleu":
        return gleu(text, reference)
    if metric == "rouge_l":
        return rouge_l(text, reference)
    if metric.startswith("rouge_") and metric[6:].isdigit():
        return rouge_n(text, reference, int(metric[6:]))
    raise ValueError(f"unknown similarity metric {metric!r}")
