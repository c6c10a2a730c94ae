"""The OpenAI-compatible `/v1`: OpenAI's shapes, and the services only `/v1` needs (files, chat completions)."""
