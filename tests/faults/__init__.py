"""Fault tests: crashes, kills, locked database, full disk, flaky provider, fuzzed input."""
