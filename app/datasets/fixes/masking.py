"""Masking personal data and secrets in message texts, with app.datasets.quality's detectors."""

from __future__ import annotations

from typing import Any

from app.datasets.fixes.rewrites import mask_texts
from app.datasets.quality.sensitive import find_sensitive, mask_text, masked_preview


def _masked(text: str) -> str:
    return mask_text(text)[0]


def mask_messages(messages: list[Any]) -> list[Any] | None:
    """The messages with every finding in their texts and tool call arguments masked (None: nothing found)."""
    return mask_texts(messages, _masked)


def partly_hidden(text: str) -> str:
    """The text with each finding shown as quality's masked preview ("j•••@example.com"): never one in full."""
    out: list[str] = []
    at = 0
    for finding in find_sensitive(text):
        if finding.start < at:
            continue
        out += [text[at : finding.start], f"[{masked_preview(finding, text)}]"]
        at = finding.end
    out.append(text[at:])
    return "".join(out)
