"""The bulk fixes Tuneboard offers: each a name (used in URLs and the API), words, and its rewrite."""

from __future__ import annotations

from dataclasses import dataclass

from app.datasets.fixes import masking, rewrites
from app.datasets.fixes.rewrites import Rewrite
from app.errors import NotFound

TOOL_ARGUMENTS, TRAILING_WHITESPACE, MASK_PII, NEAR_DUPLICATES = (
    "tool_arguments",
    "trailing_whitespace",
    "mask_pii",
    "near_duplicates",
)


@dataclass(frozen=True)
class Fix:
    """One bulk fix: `rewrite` maps a message list to its fixed copy (None: unchanged); a cluster fix has none."""

    name: str
    title: str
    explains: str
    # "{n}" becomes how many examples changed: the sentence the step is remembered by.
    done: str
    rewrite: Rewrite | None = None


FIXES: dict[str, Fix] = {
    fix.name: fix
    for fix in (
        Fix(
            TOOL_ARGUMENTS,
            "Tool call arguments as JSON strings",
            "Each `tool_calls[].function.arguments` given as a JSON object becomes the string of JSON that OpenAI's "
            "format expects (the `invalid_tool_arguments` error).",
            "Wrote tool call arguments as JSON strings in {n}",
            rewrites.string_tool_arguments,
        ),
        Fix(
            TRAILING_WHITESPACE,
            "Trailing whitespace",
            "Spaces, tabs and newlines at the end of a message's text are cut, so the model does not learn to "
            "emit them.",
            "Cut trailing whitespace in {n}",
            rewrites.strip_trailing_whitespace,
        ),
        Fix(
            MASK_PII,
            "Mask personal data and secrets",
            "E-mail addresses, phone numbers, card numbers, IBANs, IP addresses and API keys or tokens in the "
            "messages are replaced by a placeholder such as <EMAIL> or <CARD>.",
            "Masked personal data and secrets in {n}",
            masking.mask_messages,
        ),
        Fix(
            NEAR_DUPLICATES,
            "Near-duplicates: keep one of each cluster",
            "Examples written twice with small edits are grouped into clusters; this keeps the first of each "
            "cluster and deletes the others (review them one by one to choose which to keep, or to merge).",
            "Kept one example of each near-duplicate cluster, deleting {n}",
        ),
    )
}


def get_fix(name: str) -> Fix:
    """The fix with this name, or NotFound naming the ones there are."""
    fix = FIXES.get(name)
    if fix is None:
        raise NotFound(f"No fix named {name!r}: use one of {', '.join(FIXES)}.", code="fix_not_found", param="name")
    return fix
