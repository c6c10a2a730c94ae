"""Finishing touches in the browser: the API key's copy button, the favicon, a new example's URL, the playground."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TINY, TINY_B, screenshot, seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_new_api_key_is_copied_to_the_clipboard_by_its_copy_button(page, e2e_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=e2e_server.url)
    page.goto("/settings")
    page.locator("input[name=name]").fill("copied in the browser")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-api-key")
    expect(key).to_contain_text("tb-")
    copy = page.get_by_role("button", name="Copy the new key")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key.inner_text().strip()
    screenshot(page, "40-settings-key-copied")


def test_every_page_links_a_favicon_that_loads(page, e2e_server):
    page.goto("/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(href).status == 200
    assert page.request.get("/favicon.ico").status == 200


def test_a_new_example_once_saved_has_its_own_url(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "new example url", 1)
    page.goto(f"/datasets/{dataset_id}/examples/new")
    boxes = page.locator("textarea[name=msg_content]")
    for i in range(boxes.count()):
        boxes.nth(i).fill(f"text {i}")
    boxes.last.press("Control+Enter")
    page.wait_for_url(re.compile(r"/examples/\d+$"))
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_visible()


def test_playground_columns_carry_the_models_names_and_a_cut_reply_says_so(page, e2e_server):
    page.goto("/playground/compare")
    titles = page.locator(".pg-column-title")
    expect(titles.nth(0)).to_have_text("No model chosen")
    page.locator(".pg-model").nth(0).select_option(TINY)
    page.locator(".pg-model").nth(1).select_option(TINY_B)
    expect(titles.nth(0)).to_have_text(TINY)
    expect(titles.nth(1)).to_have_text(TINY_B)
    expect(page.locator("#pg-save-column option").nth(1)).to_have_text(TINY_B)
    # Two tokens of a random model never make a finished answer: both replies stop at max tokens.
    page.locator("#pg-temperature").fill("0")
    page.locator("#pg-max-tokens").fill("2")
    page.locator("#pg-input").fill("Tell me a long story.")
    page.locator("#pg-input").press("Control+Enter")
    expect(page.locator(".pg-column .msg-assistant .msg-note")).to_have_count(2)
    expect(page.locator(".msg-note").first).to_have_text("cut at max tokens")
    expect(page).to_have_url(re.compile(r"[?&]c="))
    screenshot(page, "41-playground-names-and-cut")
    page.reload()
    expect(page.locator(".pg-column .msg-assistant .msg-note")).to_have_count(2)


MARKDOWN_REPLY = """# Steps
Use **bold** and *care*, with `code`:

- first <img src=x onerror="window.tbHacked=1">
- second

```
print("<b>not bold</b>")
```"""


def test_playground_replies_render_markdown_and_never_html(page, e2e_server):
    from sqlmodel import Session

    from app.playground.conversations import save_conversation

    state = {
        "models": [TINY],
        "messages": [{"role": "user", "content": "**not markdown**"}, {"role": "assistant", "content": MARKDOWN_REPLY}],
    }
    with Session(e2e_server.app.state.engine) as session:
        conv_id = save_conversation(session, None, state).id
    page.goto(f"/playground?c={conv_id}")
    reply = page.locator(".msg-assistant .msg-text")
    expect(reply.locator("h3")).to_have_text("Steps")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("em")).to_have_text("care")
    expect(reply.locator("li")).to_have_count(2)
    expect(reply.locator("pre code")).to_have_text('print("<b>not bold</b>")')
    expect(reply.locator("img")).to_have_count(0)
    expect(reply.locator("b")).to_have_count(0)
    expect(reply.locator("li").first).to_contain_text("<img src=x")
    assert page.evaluate("window.tbHacked") is None
    expect(page.locator(".msg-user .msg-text")).to_have_text("**not markdown**")  # what a person typed stays as typed
    screenshot(page, "42-playground-markdown")
