"""Security tests: route guards, escaping of user text, secrets and headers."""
