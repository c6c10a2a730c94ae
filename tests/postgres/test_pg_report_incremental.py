"""The incremental Report on PostgreSQL: the SQLite tests, collected here against this folder's `settings`."""

from __future__ import annotations

from tests.unit.test_report_incremental import (  # noqa: F401
    _fresh_memory,
    report_cache,
    test_a_deleted_example_leaves_the_report_without_reading_the_rest,
    test_an_edit_rereads_only_the_edited_example,
    test_an_incremental_report_equals_one_from_scratch_after_each_write,
    test_rows_written_without_a_rev_are_read_again_every_time,
)
