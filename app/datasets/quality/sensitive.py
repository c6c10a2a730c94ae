"""Personal data and secrets in example text: where they are, a masked preview, and masking.

Personal data ("pii"): e-mail addresses (not at domains reserved for examples, such as example.com), phone
numbers, payment card numbers (Luhn-checked), IBANs (mod-97 checked), IPv4 addresses (not loopback). Secrets
("secret"): API keys and tokens in their published shapes (OpenAI, AWS, GitHub, Slack, PEM private key blocks)
and high-entropy strings right after a word such as key, token, secret or password. Each pattern runs only where
a cheap test (a substring, a run of digits) says it can match, so clean text costs a few microseconds per 1,000
characters. Nothing here logs or returns a found secret in full except `Finding`'s offsets into the caller's own
text; masked_preview shows at most its first four characters and its length.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PII, SECRET = "pii", "secret"

# kind -> (category, what the problem message calls it, the mask that replaces it)
KINDS: dict[str, tuple[str, str, str]] = {
    "email": (PII, "an e-mail address", "<EMAIL>"),
    "phone": (PII, "a phone number", "<PHONE>"),
    "card": (PII, "a payment card number", "<CARD>"),
    "iban": (PII, "an IBAN", "<IBAN>"),
    "ip": (PII, "an IP address", "<IP>"),
    "openai_key": (SECRET, "an OpenAI API key", "<SECRET>"),
    "aws_key": (SECRET, "an AWS access key", "<SECRET>"),
    "github_token": (SECRET, "a GitHub token", "<SECRET>"),
    "slack_token": (SECRET, "a Slack token", "<SECRET>"),
    "private_key": (SECRET, "a private key", "<PRIVATE_KEY>"),
    "secret": (SECRET, "a secret (a random-looking string beside a word like key, token or password)", "<SECRET>"),
}


@dataclass(frozen=True)
class Finding:
    """One piece of personal data or one secret: its kind, category ("pii" | "secret") and [start, end) in the text."""

    kind: str
    category: str
    start: int
    end: int

    @property
    def label(self) -> str:
        """What a problem message calls it ("an e-mail address")."""
        return KINDS[self.kind][1]

    @property
    def mask(self) -> str:
        """What mask_text puts in its place ("<EMAIL>")."""
        return KINDS[self.kind][2]


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}\b"
)
# Digit runs with the separators people write: cards and phone numbers. Not inside a word, a path or a number.
_CARD = re.compile(r"(?<![\w.,/+-])\d(?:[ -]?\d){12,18}(?![\w/-]|[.,]\d)")
_PHONE = re.compile(
    r"(?<![\w.,/+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){0,4}(?![\w/:-]|[.,]\d)"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)
_KEYS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    # (kind, a substring it must contain, the pattern)
    ("openai_key", "sk-", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("aws_key", "IA", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    ("github_token", "gh", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")),
    ("slack_token", "xox", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("slack_token", "hooks.slack.com", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")),
    (
        "private_key",
        "PRIVATE KEY",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*)", re.S
        ),
    ),
)
# A word that says a secret follows (found in the lower-cased text), then within a few characters a candidate value.
_SECRET_WORDS = re.compile(r"key|token|secret|passw|pwd|bearer|auth|credential")  # ~25x faster than with re.I
_SECRET_VALUE = re.compile(
    # Possessive (+): each part takes what it can and never gives it back, so a miss costs one try, not thousands.
    r"[\w-]{0,20}+[\"']?+\s{0,3}+(?:[:=]|=>|is\b|:=)?+\s{0,3}+[\"'`]?+(?<![/\w])([A-Za-z0-9_+/=.~-]{16,512}+)"
)
# Cheap tests that say whether a pattern can match at all: most text has no run of 9+ digits and separators.
_DIGIT_RUN = re.compile(r"\d[\d ().-]{5,}\d")  # starting with a digit: re skips to digits in C
_IBAN_HINT = re.compile(r"[A-Z][A-Z]\d")
# Domains reserved for documentation and tests (RFC 2606, RFC 6761): addresses there belong to no one.
_RESERVED_DOMAIN = re.compile(
    r"@(?:[\w-]+\.)*(?:example\.(?:com|net|org)|[\w-]+\.(?:example|test|invalid|localhost))$", re.I
)
# Whether any pattern above could match at all. Substring tests (C's fast search) beat one regex alternation
# several times over. Every card, phone, IP and IBAN holds a run of digits, and every key or token shape and every
# random-looking secret (letters and digits, by _looks_random) holds a digit: text without one is looked at once.
_ANY_DIGIT = re.compile(r"\d")
_KEY_MARKERS = ("sk-", "AKIA", "ASIA", "ABIA", "ACCA", "xox", "hooks.slack.com")
_GITHUB_MARKERS = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
_WORD_MARKERS = ("key", "token", "secret", "passw", "pwd", "bearer", "auth", "credential")


def _has_digit(text: str) -> bool:
    """Whether `text` holds a decimal digit (what \\d matches). Ten substring searches in C are ~10x faster than
    the regex over ASCII text; text with other characters may hold other scripts' digits, which the regex finds."""
    for digit in "0123456789":
        if digit in text:
            return True
    return not text.isascii() and _ANY_DIGIT.search(text) is not None


def could_contain(text: str) -> bool:
    """False when no personal data or secret can be in `text` (then find_sensitive would find nothing)."""
    if "@" in text or "PRIVATE KEY" in text:
        return True
    if not _has_digit(text):
        return False
    if _DIGIT_RUN.search(text) is not None or any(marker in text for marker in _KEY_MARKERS):
        return True
    if "_" in text and any(marker in text for marker in _GITHUB_MARKERS):
        return True
    lowered = text.lower()
    return any(word in lowered for word in _WORD_MARKERS)


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MIN_SECRET_ENTROPY = 3.0  # bits per character: random base64 of 16+ characters has ~3.5 and more; words ~2.5-3


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check that every payment card number passes."""
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Whether an IBAN (spaces allowed) has a valid length and passes its mod-97 check."""
    iban = text.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1
    except ValueError:
        return False


def entropy(text: str) -> float:
    """Shannon entropy of the string's characters, in bits per character."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _looks_random(value: str) -> bool:
    """A candidate secret: long, mixing letters and digits, and with high per-character entropy; not a UUID in
    a path, not a plain word or number."""
    value = value.rstrip(".=")
    if len(value) < 16 or value.isdigit() or value.isalpha():
        return False
    if not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return False
    return entropy(value) >= MIN_SECRET_ENTROPY


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _numbers(text: str, taken: list[tuple[int, int]]) -> Iterator[Finding]:
    if _IBAN_HINT.search(text):
        for m in _IBAN.finditer(text):
            if _overlaps(m.span(), taken):
                continue
            taken.append(m.span())  # a failed IBAN is no phone number either
            if iban_ok(m.group()):
                yield Finding("iban", PII, *m.span())
    for run in _DIGIT_RUN.finditer(text):
        # Every number pattern lies within a run of digits and separators. The look-behinds see the text before
        # the run; the look-aheads need two characters after it.
        start, end = run.start(), run.end() + 2
        if start and text[start - 1] in "+(":  # a phone number's leading + or (
            start -= 1
        if "." in run.group():
            for m in _IPV4.finditer(text, start, end):
                first = m.group().split(".", 1)[0]
                if first not in ("0", "127", "255") and not _overlaps(m.span(), taken):
                    taken.append(m.span())
                    yield Finding("ip", PII, *m.span())
        if run.end() - run.start() < 10:
            continue
        for m in _CARD.finditer(text, start, end):
            digits = _digits(m.group())
            if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1 and not _overlaps(m.span(), taken):
                taken.append(m.span())
                yield Finding("card", PII, *m.span())
        for m in _PHONE.finditer(text, start, end):
            phone = m.group()
            digits = _digits(phone)
            # A phone number: 10-15 digits, written with a leading + or ( or with separators (a bare run of digits is
            # more often an order or account number); not what a card or IBAN already took.
            if not 10 <= len(digits) <= 15 or _overlaps(m.span(), taken):
                continue
            if phone[0] in "+(" or any(sep in phone for sep in " .-"):
                taken.append(m.span())
                yield Finding("phone", PII, *m.span())


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def find_sensitive(text: str) -> list[Finding]:
    """Every piece of personal data and every secret in `text`, in order of position, none overlapping."""
    if not isinstance(text, str) or len(text) < 7:
        return []
    lowered = text.lower()
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind, marker, pattern in _KEYS:
        if marker in text:
            for m in pattern.finditer(text):
                if not _overlaps(m.span(), taken):
                    taken.append(m.span())
                    found.append(Finding(kind, SECRET, *m.span()))
    if len(lowered) != len(text):  # a character whose lower case is longer ("İ"): offsets would shift
        lowered = "".join(ch.lower()[0] for ch in text)
    for word in _SECRET_WORDS.finditer(lowered):
        value_match = _SECRET_VALUE.match(text, word.end())
        if value_match is not None:
            span = value_match.span(1)
            value = value_match.group(1)
            uuid = _UUID.fullmatch(value)
            if (
                (uuid is None or text[max(0, span[0] - 1)] != "/")
                and _looks_random(value)
                and not _overlaps(span, taken)
            ):
                taken.append(span)
                found.append(Finding("secret", SECRET, *span))
    if "@" in text:
        for m in _EMAIL.finditer(text):
            if not _overlaps(m.span(), taken) and not _RESERVED_DOMAIN.search(m.group()):
                taken.append(m.span())
                found.append(Finding("email", PII, *m.span()))
    found.extend(_numbers(text, taken))
    found.sort(key=lambda f: f.start)
    return found


def masked_preview(finding: Finding, text: str) -> str:
    """The finding as a page may show it: a secret by its first characters and length only, personal data with its
    middle hidden ("j•••@example.com", "•••• 4242")."""
    value = text[finding.start : finding.end]
    if finding.category == SECRET:
        shown = 0 if finding.kind == "private_key" else min(4, len(value) // 8)
        head = value[:shown] if finding.kind != "private_key" else "-----BEGIN … PRIVATE KEY-----"
        return f"{head}… ({len(value)} characters)"
    if finding.kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    if finding.kind in ("card", "iban", "phone"):
        tail = value.replace(" ", "")[-4:] if finding.kind == "iban" else _digits(value)[-4:]
        return f"{value[:2]}•• •••• {tail}" if finding.kind == "iban" else f"•••• {tail}"
    parts = value.split(".")
    return f"{parts[0]}.•.•.{parts[-1]}"


def mask_text(text: str) -> tuple[str, int]:
    """The text with every finding replaced by its mask (<EMAIL>, <PHONE>, <CARD>, <IBAN>, <IP>, <SECRET>…), and
    how many were replaced."""
    findings = find_sensitive(text)
    if not findings:
        return text, 0
    parts, at = [], 0
    for f in findings:
        parts.append(text[at : f.start])
        parts.append(f.mask)
        at = f.end
    parts.append(text[at:])
    return "".join(parts), len(findings)


def _texts(message: Any) -> Iterator[str]:
    """The strings of one message that can carry personal data: its text content and its tool calls' arguments."""
    if not isinstance(message, dict):
        return
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            arguments = fn.get("arguments") if isinstance(fn, dict) else None
            if isinstance(arguments, str):
                yield arguments
            elif isinstance(arguments, dict | list):
                yield from _strings(arguments)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def scan_messages(messages: Any) -> list[tuple[int, Finding, str]]:
    """(message index, finding, masked preview) for every finding in a list of chat messages."""
    found: list[tuple[int, Finding, str]] = []
    if not isinstance(messages, list):
        return found
    joined: str | None
    try:
        # The usual shape, every message an object with text content, joined in one C-level pass.
        joined = "\n".join([m["content"] for m in messages])
    except (TypeError, KeyError):
        joined = None
    if joined is None or any("tool_calls" in m for m in messages):
        joined = "\n".join(text for message in messages for text in _texts(message))
    if not could_contain(joined):  # the usual case: one look at the whole example
        return found
    for i, message in enumerate(messages):
        for text in _texts(message):
            for finding in find_sensitive(text):
                found.append((i, finding, masked_preview(finding, text)))
    return found


def scan_record(record: Any) -> list[tuple[int, Finding]]:
    """(message index, finding) for every finding in an example's message contents and tool call arguments.

    A preference (DPO) example's messages are its input's, then its preferred and non-preferred answers, counted on
    from the input's last message."""
    if not isinstance(record, dict):
        return []
    given = record.get("input") if isinstance(record.get("input"), dict) else record
    messages = given.get("messages") if isinstance(given, dict) else None
    listed = list(messages) if isinstance(messages, list) else []
    for key in ("preferred_output", "non_preferred_output"):
        if isinstance(record.get(key), list):
            listed.extend(record[key])
    return [(i, finding) for i, finding, _ in scan_messages(listed)]
