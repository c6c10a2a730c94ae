"""Two cold models asked for at once (the compare view) both load and answer, and the process stays healthy."""

import threading

from app.engine.chat_types import ChatParams, ModelRef
from app.engine.inference import ChatEngine
from app.engine.testing import build_tiny_model
from tests.conftest import make_settings


def test_two_cold_models_chatting_at_the_same_moment_both_answer(tmp_path):
    models = {"a": build_tiny_model(tmp_path / "a"), "b": build_tiny_model(tmp_path / "b", seed=1)}
    settings = make_settings(tmp_path / "data", local_models=models)
    with ChatEngine(settings) as chat_engine:
        for _ in range(3):
            chat_engine.clear()
            errors: list[str] = []
            barrier = threading.Barrier(2)

            def chat(name: str, barrier: threading.Barrier = barrier, errors: list[str] = errors) -> None:
                barrier.wait()
                try:
                    chunks = list(
                        chat_engine.stream_chat(
                            ModelRef(name=name, base_model=name),
                            [{"role": "user", "content": "hi"}],
                            ChatParams(max_tokens=3, temperature=0),
                        )
                    )
                    assert chunks[-1].finish_reason in ("stop", "length")
                except Exception as exc:  # collected: an exception in a thread would not fail the test by itself
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")

            threads = [threading.Thread(target=chat, args=(name,)) for name in models]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert errors == []
