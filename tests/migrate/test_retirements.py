"""OpenAI's retirement facts, read from app/data/openai_retirements.toml, and days left counted from today."""

from __future__ import annotations

from datetime import date

from app.migrate.retirements import facts_date, fine_tuning_cutoff, retirement_of

TODAY = date(2026, 12, 3)


def test_fine_tuning_ends_on_2027_01_06():
    assert fine_tuning_cutoff() == date(2027, 1, 6)
    assert facts_date()


def test_the_snapshots_behind_most_fine_tuned_models_retire_on_2027_01_14():
    for base in ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14"):
        found = retirement_of(base, TODAY)
        assert found is not None and found.shutdown == date(2027, 1, 14) and found.days_left == 42
        assert not found.retired


def test_a_fine_tuned_id_names_its_base_and_so_its_retirement():
    found = retirement_of("ft:gpt-4o-mini-2024-07-18:acme:support:AbC123", TODAY)
    assert found is not None and found.base_model == "gpt-4o-mini-2024-07-18"
    assert found.model == "ft:gpt-4o-mini-2024-07-18:acme:support:AbC123" and found.shutdown == date(2027, 1, 14)


def test_days_left_count_from_today_and_go_negative_once_passed():
    assert retirement_of("gpt-4o-2024-08-06", date(2027, 1, 13)).days_left == 1
    gone = retirement_of("gpt-4o-2024-08-06", date(2027, 2, 1))
    assert gone.days_left == -18 and gone.retired
    nano = retirement_of("ft:gpt-4.1-nano-2025-04-14:acme::x", TODAY)
    assert nano is not None and nano.shutdown == date(2026, 10, 23) and nano.retired


def test_a_model_without_an_announced_date_has_none():
    assert retirement_of("ft:gpt-5-2025-08-07:acme::x", TODAY) is None
    assert retirement_of("tiny-llama") is None
