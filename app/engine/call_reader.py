"""Tool calls read out of a reply as it grows, in OpenAI's streaming shape (issue #22).

The reply was decoded under the tools' grammar (constrained.py), so every `<tool_call>` tag in it reads
`{"name": "<function>", "arguments": <JSON>}` and closes: what is left to do is to split the text, as soon as each
piece is certain, into content deltas and call deltas (the name first, then the arguments in fragments). The whole
reply read at once gives the same pieces, so a streamed and a batched reply of the same tokens make the same calls.
"""

from __future__ import annotations

import json
import re

from app.engine.tool_format import CALL_CLOSE, CALL_OPEN, new_call_id

# The start of a tag's body, up to the first character of the arguments (the grammar writes it just so; the spaces
# are optional for other writers).
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*(?=\S)')


class CallReader:
    """Feed it the reply's text so far (it only grows); it returns what became certain since the last feed."""

    def __init__(self) -> None:
        self.text = ""
        self.pos = 0  # how far the text has been read
        self.state = "content"  # "content", "head" (inside a tag, before the arguments), "arguments", "close"
        self.content = ""  # the content sent so far
        self.blank = ""  # whitespace read but not sent: kept only if more content follows it
        self.calls: list[dict] = []  # whole calls so far (the last one may still be open)
        self.closed = 0  # how many calls are closed
        self.depth = 0  # brackets open in the arguments
        self.in_string = self.escaped = False

    def feed(self, text: str) -> tuple[str, list[dict]]:
        """Read the text so far: the new content (a string) and the new call deltas."""
        self.text = text
        content: list[str] = []
        deltas: list[dict] = []
        while True:
            before = (self.state, self.pos)
            if self.state == "content":
                self._content(content)
            elif self.state == "head":
                self._head(deltas)
            elif self.state == "arguments":
                self._arguments(deltas)
            else:
                self._close()
            if (self.state, self.pos) == before:
                break
        sent = "".join(content)
        self.content += sent
        return sent, deltas

    def finish(self) -> str:
        """Once the reply has ended: the content still held back (what looked like the start of a tag)."""
        if self.state != "content" or self.pos >= len(self.text):
            return ""
        out: list[str] = []
        self._send(self.text[self.pos :], out)
        self.pos = len(self.text)
        sent = "".join(out)
        self.content += sent
        return sent

    def made(self) -> list[dict]:
        """The whole calls the reply made (a call cut off by the end of the reply is left out)."""
        return self.calls[: self.closed]

    def _content(self, out: list[str]) -> None:
        start = self.text.find(CALL_OPEN, self.pos)
        if start >= 0:
            self._send(self.text[self.pos : start], out)
            self.blank = ""  # whitespace before a call is no content
            self.pos, self.state = start + len(CALL_OPEN), "head"
            return
        end = len(self.text) - _partial_suffix(self.text, CALL_OPEN)
        if end > self.pos:
            self._send(self.text[self.pos : end], out)
            self.pos = end

    def _send(self, piece: str, out: list[str]) -> None:
        """Send content, holding its trailing whitespace back until something follows it."""
        kept = piece.rstrip()
        if kept:
            out.append(self.blank + kept)
            self.blank = piece[len(kept) :]
        else:
            self.blank += piece

    def _head(self, deltas: list[dict]) -> None:
        match = _HEAD.match(self.text, self.pos)
        if match is None:
            return
        name = json.loads(f'"{match.group(1)}"')
        call = {"id": new_call_id(), "type": "function", "function": {"name": name, "arguments": ""}}
        self.calls.append(call)
        delta = {"index": len(self.calls) - 1, "id": call["id"], "type": "function"}
        deltas.append({**delta, "function": {"name": name, "arguments": ""}})
        self.pos, self.state = match.end(), "arguments"
        self.depth, self.in_string, self.escaped = 0, False, False

    def _arguments(self, deltas: list[dict]) -> None:
        """Scan the arguments' JSON up to the `}` that closes the tag's body; send what is certain."""
        start, end, done = self.pos, self.pos, False
        for end in range(self.pos, len(self.text)):
            char = self.text[end]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                if self.depth == 0:
                    done = True
                    break
                self.depth -= 1
        else:
            end = len(self.text)
        piece = self.text[start:end]
        # Trailing whitespace may be the space before the body's `}`: sent once more arguments follow it.
        sure = piece if self.in_string else piece.rstrip()
        if done:
            sure = piece.rstrip()
        if sure:
            self.calls[-1]["function"]["arguments"] += sure
            deltas.append({"index": len(self.calls) - 1, "function": {"arguments": sure}})
        self.pos = start + len(sure)
        if done:
            self.pos, self.state = end + 1, "close"

    def _close(self) -> None:
        end = self.text.find(CALL_CLOSE, self.pos)
        if end >= 0:
            self.pos, self.state = end + len(CALL_CLOSE), "content"
            self.closed = len(self.calls)


def _partial_suffix(text: str, tag: str) -> int:
    """How many trailing characters of text could be the start of tag."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def read_calls(text: str) -> tuple[str, list[dict]]:
    """A whole reply's content and calls, as CallReader streams them."""
    reader = CallReader()
    content = reader.feed(text)[0] + reader.finish()
    return content, reader.made()
