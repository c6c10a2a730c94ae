"""The playground's tool calling in a real browser: the tools editor checked as it is typed, a call drawn as a
card while it streams, its result typed (one marked as an error) and sent with Continue, the conversation kept
across a reload, and saved as a valid training example with its tools and calls."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import TINY, screenshot
from tests.support.scripted_chat import ScriptedChatEngine, call_chunks

pytestmark = pytest.mark.browser

LOOKUP = {
    "name": "lookup_order",
    "description": "Find an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}


@pytest.fixture
def scripted(e2e_server):
    """The server's chat engine swapped, for this test, for one that calls lookup_order, then answers in text."""
    app = e2e_server.app
    real = app.state.chat_engine
    engine = ScriptedChatEngine(
        call_chunks(("lookup_order", {"order_id": "A17"}), ("lookup_order", {"order_id": "B2"})),
        call_chunks(text="A17 has shipped; B2 was not found."),
    )
    app.state.chat_engine = engine
    yield engine
    app.state.chat_engine = real


def test_tool_calls_show_as_cards_take_typed_results_and_continue(page, e2e_server, scripted):
    from playwright.sync_api import expect
    from sqlmodel import Session, select

    from app.tables import Dataset, Example

    with Session(e2e_server.app.state.engine) as session:
        dataset = Dataset(name="Support bot calls")
        session.add(dataset)
        session.commit()
        dataset_id = dataset.id

    page.goto(f"/playground?model={TINY}")
    page.locator("#pg-tools-box summary").click()
    page.locator("#pg-tools").fill('[{"name": "look up"}]')
    expect(page.locator("#pg-tools-check")).to_contain_text("does not match pattern")
    page.locator("#pg-tools").fill(json.dumps([LOOKUP]))
    expect(page.locator("#pg-tools-check")).to_have_text("1 function: lookup_order")
    page.locator("#pg-input").fill("Where are A17 and B2?")
    page.locator("#pg-input").press("Control+Enter")

    cards = page.locator(".msg-assistant .tool-call")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator(".tool-call-name")).to_have_text("lookup_order")
    expect(cards.nth(1).locator(".tool-call-args")).to_have_text('{\n  "order_id": "B2"\n}')
    results = page.locator(".tool-results .tool-result")
    expect(results).to_have_count(2)
    page.locator("#pg-input").fill("hello?")
    page.locator("#pg-input").press("Control+Enter")
    expect(page.locator("#pg-status")).to_have_text("Give the results of the tool calls first (then Continue).")
    results.nth(0).locator("textarea").fill('{"status": "shipped"}')
    results.nth(1).locator("textarea").fill("order not found")
    results.nth(1).locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.locator(".msg-tool")).to_have_count(2)
    expect(page.locator(".msg-tool-error .msg-text")).to_have_text("order not found")
    expect(page.locator(".msg-assistant .msg-text").last).to_have_text("A17 has shipped; B2 was not found.")
    sent = scripted.asked[-1][1]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert sent[3]["content"] == "Error: order not found" and sent[2]["name"] == "lookup_order"
    expect(page).to_have_url(re.compile(r"[?&]c="))
    screenshot(page, "45-playground-tool-calls")

    page.reload()
    expect(page.locator(".msg-assistant .tool-call")).to_have_count(2)
    expect(page.locator(".msg-tool")).to_have_count(2)
    expect(page.locator(".tool-results")).to_have_count(0)  # every call has its result
    expect(page.locator("#pg-tools")).to_have_value(re.compile(r'"name": "lookup_order"'))

    page.locator("#pg-save summary").click()
    page.locator("#pg-save-form select[name=dataset_id]").select_option(str(dataset_id))
    page.get_by_role("button", name="Save example").click()
    expect(page.locator(".saved-example")).to_have_attribute("data-valid", "true")
    with Session(e2e_server.app.state.engine) as session:
        record = session.exec(select(Example).where(Example.dataset_id == dataset_id)).one().to_record()
    assert record["tools"][0]["function"]["name"] == "lookup_order"
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "tool", "tool", "assistant"]
    assert record["messages"][3]["content"] == "Error: order not found"
