"""Limits on the shape of stored JSON: an example nested absurdly deep can't be rendered or serialised."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Real chat examples nest a handful of levels (messages → tool_calls → function → arguments); tools' JSON schemas
# a few dozen at most. Far deeper data breaks json, pydantic and templates alike, so it is refused up front.
MAX_JSON_DEPTH = 64


def nesting_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether lists/objects nest deeper than `limit` (iterative: safe on any depth)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
