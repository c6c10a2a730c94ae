"""Epochs, cost and time estimates, statistics, histogram layout and the model table."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings
from app.datasets.validation.chart import histogram_chart
from app.datasets.validation.estimate import default_epochs, estimate, table_pace
from app.datasets.validation.modeltable import load_table, picker_models, resolve_model
from app.datasets.validation.stats import histogram, percentile, summarize
from app.errors import Invalid


@pytest.mark.parametrize(
    ("examples", "epochs"),
    [
        (1, 25),
        (3, 25),
        (4, 25),
        (5, 20),
        (10, 10),
        (33, 3),
        (34, 3),
        (100, 3),
        (8333, 3),
        (8334, 2),
        (12_501, 1),
        (100_000, 1),
    ],
)
def test_default_epochs_follow_the_cookbook_rule(examples, epochs):
    assert default_epochs(examples) == epochs


def test_no_examples_means_no_epochs():
    assert default_epochs(0) == 0


def test_the_toy_dataset_estimate_for_gpt35_matches_the_cookbook():
    result = estimate(resolve_model("gpt-3.5-turbo-0125"), [45, 111, 26, 28, 8032])
    assert (result.n_epochs, result.billing_tokens, result.charged_tokens) == (20, 8242, 164_840)
    price = resolve_model("gpt-3.5-turbo-0125").training_usd_per_1m
    assert result.cost_usd == pytest.approx(164_840 * price / 1_000_000)


def test_billing_tokens_cap_each_example_at_the_context_limit():
    info = resolve_model("gpt-3.5-turbo-0125")
    result = estimate(info, [20_000, 100])
    assert result.billing_tokens == info.context_limit + 100


def test_a_model_without_a_token_price_has_no_cost():
    assert estimate(resolve_model("o4-mini-2025-04-16"), [100] * 50).cost_usd is None


def test_local_models_get_a_training_time_instead_of_a_cost():
    info = resolve_model("SmolLM2-135M-Instruct")
    result = estimate(info, [1000] * 40)
    assert result.cost_usd is None
    pace = table_pace(info, "cpu")
    assert pace is not None and result.device == "cpu"
    # Tokens at the measured throughput, plus the fixed costs of a job and of each of its 40 steps (batch 1).
    expected = pace.fixed_seconds + 40 * result.n_epochs * pace.seconds_per_step
    expected += result.charged_tokens / info.train_tokens_per_second_cpu
    assert result.training_seconds_cpu == pytest.approx(expected, 0.01)


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=2, max_size=200))
def test_percentiles_are_true_linearly_interpolated_quantiles(values):
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=20, method="inclusive")
    assert percentile(ordered, 0.05) == pytest.approx(cuts[0])
    assert percentile(ordered, 0.95) == pytest.approx(cuts[-1])
    assert percentile(ordered, 0.5) == pytest.approx(statistics.median(ordered))


def test_summary_of_the_toy_dataset_matches_the_cookbook():
    summary = summarize([45, 111, 26, 28, 8032])
    assert (summary.min, summary.max, summary.mean, summary.median, summary.total) == (26, 8032, 1648.4, 45, 8242)


def test_summary_of_nothing_is_none():
    assert summarize([]) is None


@given(st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=300))
def test_histogram_bins_cover_every_value_once(values):
    bins = histogram(values)
    assert sum(b.count for b in bins) == len(values)
    assert len(bins) <= 20
    assert bins[0].low == min(values) and bins[-1].high > max(values)


def test_histogram_chart_scales_the_tallest_bar_inside_the_plot():
    chart = histogram_chart(histogram([10, 10, 10, 500, 900]))
    tallest = max(chart.bars, key=lambda b: b.count)
    assert 0 < tallest.height <= chart.plot_height
    assert chart.y_ticks[0].label == "0" and chart.x_ticks[0].label == "10"
    assert histogram_chart([]) is None


@pytest.mark.parametrize(
    ("name", "encoding", "limit"),
    [
        ("gpt-4o-mini", "o200k_base", 65_536),
        ("gpt-4o-2024-08-06", "o200k_base", 65_536),
        ("gpt-4.1-nano-2025-04-14", "o200k_base", 65_536),
        ("o3-mini", "o200k_base", 65_536),
        ("gpt-3.5-turbo-1106", "cl100k_base", 16_385),
        ("gpt-4", "cl100k_base", 16_385),
        ("gpt-4-0613", "cl100k_base", 16_385),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base", 65_536),
    ],
)
def test_models_resolve_to_their_encoding_and_context_limit(name, encoding, limit):
    info = resolve_model(name)
    assert (info.encoding, info.context_limit, info.name) == (encoding, limit, name)


def test_the_longest_prefix_wins():
    assert (
        resolve_model("gpt-4.1-mini-2099-01-01").training_usd_per_1m
        == resolve_model("gpt-4.1-mini-2025-04-14").training_usd_per_1m
    )
    assert resolve_model("gpt-4.1-mini-x").training_usd_per_1m != resolve_model("gpt-4.1-x").training_usd_per_1m


def test_an_unknown_model_is_refused_with_a_clear_message():
    with pytest.raises(Invalid, match="Unknown model 'llama-9000'"):
        resolve_model("llama-9000")


def test_configured_local_models_are_known_and_offered(tmp_path):
    settings = Settings(data_dir=tmp_path, local_models={"my-llama": tmp_path})
    assert resolve_model("my-llama", settings).is_local
    assert "my-llama" in picker_models(settings)


def test_the_model_table_is_dated_and_every_entry_is_complete():
    table = load_table()
    assert table["as_of"] and resolve_model(None).name == table["default_model"]
    for entry in table["models"]:
        assert {"name", "encoding", "context_limit"} <= set(entry)
