"""The job worker: claim loop, heartbeats, recovery, and the context jobs report through."""
