"""An import's token counts and each example's source file and line, on PostgreSQL (the SQLite tests, run here)."""

from __future__ import annotations

import pytest

from tests.unit.test_import_source import (  # noqa: F401
    dataset,
    test_a_csv_row_keeps_the_line_it_starts_on,
    test_each_example_keeps_its_file_and_line_past_rejected_and_blank_lines,
)
from tests.unit.test_import_tokens import (  # noqa: F401
    test_a_big_import_counts_in_a_helper_process_with_the_same_result,
    test_an_import_stores_the_token_counts_the_report_would_compute,
)

pytestmark = pytest.mark.postgres
