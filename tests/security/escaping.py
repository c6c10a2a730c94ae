"""Checks that a page shows stored payloads only escaped: no raw payload, no injected handler, script or URL."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

PAYLOADS = [line for line in (Path(__file__).parent / "xss_payloads.txt").read_text("utf-8").splitlines() if line]
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "background", "poster", "xlink:href", "srcdoc"}
FORBIDDEN_TAGS = {"iframe", "object", "embed", "base", "frame", "frameset", "math", "isindex", "marquee"}


class _Injections(HTMLParser):
    """Collects what only an unescaped payload (or a rule-breaking template) would put into the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in FORBIDDEN_TAGS:
            self.found.append(f"<{tag}> element")
        if tag == "script":
            attributes = dict(attrs)
            src = attributes.get("src") or ""
            kind = (attributes.get("type") or "").lower()
            if not (src.startswith("/static/") or kind == "application/json"):
                self.found.append(f"<script src={src!r} type={kind!r}>")
        if tag == "meta" and any(n == "http-equiv" and (v or "").lower() == "refresh" for n, v in attrs):
            self.found.append("<meta http-equiv=refresh>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> inline handler")
            if name.startswith(("hx-on", "data-hx-on")):
                self.found.append(f"<{tag} {name}> htmx inline handler")
            if name in URL_ATTRIBUTES and "javascript:" in "".join((value or "").lower().split()):
                self.found.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag


def injections(html: str) -> list[str]:
    """Everything in `html` that an escaped page never contains."""
    parser = _Injections()
    parser.feed(html)
    parser.close()
    found = parser.found
    found += [f"raw payload {p!r}" for p in PAYLOADS if p in html]
    return found


def sse_data(stream_text: str) -> str:
    """The HTML carried by an event stream's `data:` lines, joined."""
    return "\n".join(line[5:].lstrip() for line in stream_text.splitlines() if line.startswith("data:"))
