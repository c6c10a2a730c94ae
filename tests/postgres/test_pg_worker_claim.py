"""The jobs engineer's queue tests, run again on PostgreSQL (the FOR UPDATE SKIP LOCKED branch of the claim).

The test functions are imported, so they are collected here and use this folder's PostgreSQL `settings`.
"""

from tests.integration.test_worker_claim import (  # noqa: F401
    test_a_job_interrupted_too_often_fails_with_a_plain_reason,
    test_a_released_job_goes_back_to_the_queue,
    test_a_worker_shutting_down_hands_its_job_back_and_the_next_run_resumes_it,
    test_a_worker_without_gpu_leaves_fresh_local_jobs_to_gpu_workers,
    test_only_a_job_whose_heartbeat_is_stale_is_taken_over,
    test_racing_claims_take_each_job_exactly_once,
)
