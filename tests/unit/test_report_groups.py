"""The Report's running statistics: updated row by row they equal the same statistics built from the rows at once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.datasets.validation.estimate import estimate
from app.datasets.validation.modeltable import resolve_model
from app.datasets.validation.report_groups import Group, apply_changes, build_groups
from app.datasets.validation.stats import histogram, summarize

rows_strategy = st.tuples(
    st.booleans(),  # valid
    st.integers(1, 6),  # n_messages
    st.sampled_from(["h1", "h2", "h3", "h4"]),  # content_hash: few values, so duplicates happen
    st.sampled_from([None, "train", "validation", "test"]),
    st.integers(5, 40),  # total
    st.integers(0, 5),  # assistant
    st.integers(0, 5),  # trained
    st.sampled_from([None, ("missing_system_message",), ("consecutive_same_role", "missing_user_message")]),
)


def state(groups: dict[str, Group]) -> dict:
    return {name: (g.n, g.totals, g.assistant, g.messages, +g.hashes, +g.codes) for name, g in groups.items() if g.n}


@given(
    st.dictionaries(st.integers(0, 30), rows_strategy),
    st.lists(st.tuples(st.integers(0, 30), st.none() | rows_strategy), max_size=20),
)
def test_groups_updated_row_by_row_equal_groups_built_at_once(start, edits):
    rows = dict(start)
    groups = build_groups(rows)
    for row_id, new in edits:  # None: the row is deleted
        old = rows.pop(row_id, None)
        if new is not None:
            rows[row_id] = new
        apply_changes(groups, [(old, new)])
    assert state(groups) == state(build_groups(rows))
    assert all(len(g.hashes) == len(set(g.hashes)) and 0 not in g.hashes.values() for g in groups.values())


@given(st.lists(st.integers(0, 70_000), min_size=1, max_size=200))
def test_sorted_shortcuts_give_the_same_numbers(values):
    ordered = sorted(values)
    info = resolve_model("gpt-3.5-turbo-0125")
    assert estimate(info, ordered, presorted=True) == estimate(info, values)
    assert summarize(ordered, presorted=True) == summarize(values)
    assert histogram(ordered, presorted=True) == histogram(values)


@given(st.lists(st.integers(0, 5_000), min_size=1, max_size=300), st.integers(1, 30))
def test_histogram_bins_count_every_value_once_in_the_right_bar(values, max_bins):
    bins = histogram(values, max_bins)
    assert sum(b.count for b in bins) == len(values) and len(bins) <= max_bins
    for b in bins:
        assert b.count == sum(1 for v in values if b.low <= v < b.high)
