"""A first chat with a model that is not loaded says what the load is doing instead of waiting in silence."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

from app.engine.inference import READING
from tests.e2e.conftest import TINY_B, WAIT_MS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_playground_shows_the_loading_phase_until_the_reply_starts(page, e2e_server, monkeypatch):
    chat_engine = e2e_server.app.state.chat_engine
    chat_engine.clear()  # whatever earlier tests loaded: this chat's model must load first
    release = threading.Event()
    report = chat_engine._report

    def held(key, phase, step, total):
        # Hold the load in its first phase (a tiny model loads too fast to be seen) until the text was seen.
        report(key, phase, step, total)
        if phase == READING:
            release.wait(WAIT_MS / 1000)

    monkeypatch.setattr(chat_engine, "_report", held)
    try:
        page.goto(f"/playground?model={TINY_B}")
        page.locator("#pg-max-tokens").fill("3")
        page.locator("#pg-input").fill("What is 2 plus 2?")
        page.locator("#pg-input").press("Control+Enter")
        reply = page.locator(".msg-assistant .msg-text").last
        expect(reply).to_have_text(f"Loading {TINY_B} — reading weights (1 of 2)…")
        expect(reply).to_have_class(re.compile(r"\bloading\b"))
        screenshot(page, "playground-loading")
    finally:
        release.set()
    expect(reply).not_to_have_class(re.compile(r"\bloading\b"))
    expect(page.locator("#pg-send")).to_be_enabled()
    expect(reply).not_to_contain_text("Loading")
    assert chat_engine.load_progress(chat_engine_ref(e2e_server)) is None


def chat_engine_ref(server):
    """The engine's reference to the base model the test chatted with."""
    from sqlmodel import Session

    from app.jobs.model_catalog import resolve_model

    with Session(server.app.state.engine) as session:
        return resolve_model(session, server.app.state.settings, TINY_B).ref
