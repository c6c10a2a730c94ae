"""Near-duplicates at several edit distances, clusters and split leakage, outliers (issue #21)."""

from __future__ import annotations

import random

import pytest

from app.datasets.quality.near_duplicates import THRESHOLD, comparable_text, find_clusters, signatures, similarity
from app.datasets.quality.outliers import outliers

BASE = (
    "I ordered a blue rain jacket from your shop last week and the tracking page still says the parcel is "
    "waiting at the depot so could you please check what happened to my order and tell me when it will arrive"
)
FILLER = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fern",
    "grove",
    "heath",
]


def edited(text: str, n_words: int, seed: int = 0) -> str:
    """`text` with n_words words (spread out) replaced by words it does not contain."""
    words = text.split()
    rng = random.Random(seed)
    for k, at in enumerate(sorted(rng.sample(range(len(words)), n_words))):
        words[at] = FILLER[k]
    return " ".join(words)


def jaccard(a: str, b: str) -> float:
    def shingles(t: str) -> set[tuple[str, ...]]:
        w = t.lower().split()
        return {tuple(w[i : i + 3]) for i in range(len(w) - 2)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def pair_clusters(a: str, b: str, sides=("train", "train")):
    return find_clusters([1, 2], ["h1", "h2"], [a, b], list(sides))


@pytest.mark.parametrize("n_words", [0, 1])
def test_paraphrases_with_few_edits_are_found(n_words):
    other = edited(BASE, n_words) + ("!" if n_words == 0 else "")  # 0: only punctuation differs
    assert jaccard(BASE, other) >= 0.8
    [cluster] = pair_clusters(BASE, other)
    assert cluster.example_ids == [1, 2] and cluster.similarity >= THRESHOLD and not cluster.leaks_split


@pytest.mark.parametrize("n_words", [5, 8, 15])
def test_rewrites_with_many_edits_are_not(n_words):
    other = edited(BASE, n_words, seed=n_words)
    assert jaccard(BASE, other) < 0.55
    assert pair_clusters(BASE, other) == []


def test_the_estimate_follows_the_true_jaccard_index():
    for n_words in range(12):
        other = edited(BASE, n_words, seed=3)
        a, b = signatures([BASE, other])
        assert abs(similarity(a, b) - jaccard(BASE, other)) < 0.2


def test_exact_copies_alone_are_no_cluster_but_join_one():
    assert find_clusters([1, 2], ["h", "h"], [BASE, BASE], ["train", "train"]) == []
    near = edited(BASE, 1)
    [cluster] = find_clusters([1, 2, 3], ["h", "h", "n"], [BASE, BASE, near], ["train"] * 3)
    assert cluster.example_ids == [1, 2, 3]


def test_a_cluster_across_the_split_leaks():
    [cluster] = pair_clusters(BASE, edited(BASE, 1), sides=("train", "validation"))
    assert cluster.leaks_split


def test_system_prompts_do_not_make_examples_alike():
    prompt = {"role": "system", "content": " ".join(FILLER * 5)}
    texts = [
        comparable_text(
            [
                prompt,
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        )
        for i in range(50)
    ]
    assert "alpha" not in texts[0]
    assert find_clusters(list(range(50)), [str(i) for i in range(50)], texts, ["train"] * 50) == []


def test_clusters_among_many_unrelated_examples():
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(20, 60))) for _ in range(2000)]
    texts[1500] = edited(texts[10], 1, seed=1)
    texts[1900] = texts[10] + " thanks"
    clusters = find_clusters(list(range(2000)), [str(i) for i in range(2000)], texts, ["train"] * 2000)
    assert [c.example_ids for c in clusters] == [[10, 1500, 1900]]


def rows(tokens, turns=None, answer=None):
    n = len(tokens)
    return [(i, tokens[i], (turns or [3] * n)[i], (answer or [20] * n)[i]) for i in range(n)]


def test_outliers_long_and_short_on_each_measure():
    rng = random.Random(2)
    tokens = [rng.randint(80, 160) for _ in range(200)]
    tokens[7], tokens[9] = 4000, 3
    turns = [3] * 200
    turns[11] = 41
    answer = [rng.randint(20, 60) for _ in range(200)]
    answer[13] = 900
    found = {(o.example_id, o.measure, o.direction) for o in outliers(rows(tokens, turns, answer))}
    assert found == {(7, "tokens", "long"), (9, "tokens", "short"), (11, "turns", "long"), (13, "answer", "long")}


def test_no_outliers_in_an_even_or_a_small_dataset():
    rng = random.Random(4)
    assert outliers(rows([rng.randint(100, 300) for _ in range(500)])) == []
    assert outliers(rows([100] * 10 + [100_000])) == []  # fewer than 20 examples: no distribution yet
    assert outliers(rows([100] * 50, turns=[3] * 49 + [5])) == []  # one more turn than the others is no outlier
