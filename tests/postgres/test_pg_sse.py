"""The live event stream against PostgreSQL (real uvicorn): the SSE tests, imported to run on this database."""

from tests.integration.test_sse import (  # noqa: F401
    test_new_events_arrive_on_the_open_stream_with_their_seq_as_id,
    test_reconnect_with_last_event_id_resumes_after_that_event,
    test_stream_sends_everything_then_ends_when_the_job_is_terminal,
)
