"""Test stand-ins: a fake trainer speaking the engine's protocol, a worker entry point, a fake OpenAI server."""
