"""Server-sent events: the one encoder every text/event-stream route uses (job streams, playground, /v1 chat)."""

from __future__ import annotations

import json
import re
from typing import Any

# The line ends of the SSE format; str.splitlines() would also split on U+2028 and others, which JSON may carry.
_LINE_END = re.compile(r"\r\n|\r|\n")


def sse_message(data: Any, event: str | None = None, event_id: int | None = None) -> str:
    """One SSE message: a string is sent as it is, anything else as JSON.

    Every line of the data gets its own `data:` field, so multi-line HTML arrives whole.
    """
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    data_lines = _LINE_END.split(text)
    if len(data_lines) > 1 and data_lines[-1] == "":
        data_lines.pop()  # a final line end ends the last line; it does not start another
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in data_lines)
    return "\n".join(lines) + "\n\n"
