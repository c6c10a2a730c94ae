"""Stored near-duplicate signatures (migration 0011) on PostgreSQL: bytea written by the import's raw INSERT, read
back by the report's pass, stale tags recomputed. The SQLite tests are imported and run against this folder's
PostgreSQL `settings`."""

from __future__ import annotations

from tests.quality.test_stored_signatures import (  # noqa: F401
    helper_signs,
    test_a_signature_stored_under_another_content_is_not_trusted,
    test_a_stale_signature_is_recomputed_and_the_clusters_follow_the_new_content,
    test_an_edit_clears_the_signature_and_a_copy_keeps_it,
    test_an_import_stores_the_signature_near_duplicates_makes_of_each_text,
    test_clusters_across_a_separate_validation_dataset_use_both_stored_signatures,
    test_the_report_reads_the_stored_signatures_not_the_texts_with_the_same_clusters,
)
