"""Personal data and secrets (issue #21): each kind with true and false positives, masking, previews."""

from __future__ import annotations

import time

import pytest

from app.datasets.quality.sensitive import (
    find_sensitive,
    iban_ok,
    luhn_ok,
    mask_text,
    masked_preview,
    scan_record,
)
from app.datasets.validation import check_record

OPENAI_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w"
GITHUB_TOKEN = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
SLACK_TOKEN = "xoxb-2048-40960-Zq8Wr3Ty6Ui9Op2As5Df8G"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----"

# (text, kind, the exact value found)
TRUE_POSITIVES = [
    ("Reach me at jane.doe@gmail.com tomorrow.", "email", "jane.doe@gmail.com"),
    ("My number is +44 20 7946 0958.", "phone", "+44 20 7946 0958"),
    ("Call (415) 555-0132 after six.", "phone", "(415) 555-0132"),
    ("The card is 4242 4242 4242 4242, expiry 12/29.", "card", "4242 4242 4242 4242"),
    ("Pay with 5555-5555-5555-4444 please", "card", "5555-5555-5555-4444"),
    ("Send it to GB82 WEST 1234 5698 7654 32 today.", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN DE89370400440532013000 for the refund", "iban", "DE89370400440532013000"),
    ("Logged in from 203.0.113.45 yesterday.", "ip", "203.0.113.45"),
    (f"Use {OPENAI_KEY} for the API.", "openai_key", OPENAI_KEY),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws_key", "AKIAIOSFODNN7EXAMPLE"),
    (f"export GITHUB_TOKEN={GITHUB_TOKEN}", "github_token", GITHUB_TOKEN),
    (f"slack bot {SLACK_TOKEN}", "slack_token", SLACK_TOKEN),
    (f"Here is the key:\n{PRIVATE_KEY}\nkeep it safe", "private_key", PRIVATE_KEY),
    ('{"api_key": "Zx8Qp2LmN4vB7tR9wE1yU3"}', "secret", "Zx8Qp2LmN4vB7tR9wE1yU3"),
    ("db password is Qa7vLp2Wm4Rz8Kc9x", "secret", "Qa7vLp2Wm4Rz8Kc9x"),
]

FALSE_POSITIVES = [
    "Write to support@example.com for help.",  # a domain reserved for examples belongs to no one
    "The card number 4242 4242 4242 4241 fails the Luhn check.",
    "Account GB82 WEST 1234 5698 7654 33 fails mod 97.",
    "Server on 127.0.0.1 and version 1.2.3.",
    "The token is extraordinarilyunbelievable and the key is incomprehensibilities.",  # long words
    "See token https://example.com/orders/550e8400-e29b-41d4-a716-446655440000 for the status.",  # a UUID in a URL
    "Meeting on 2024-01-15 10:30, order 1234567890, price 1,234,567.89.",
    "password: hunter2",  # short and low-entropy: not a random-looking secret
    "The skeleton key opened the door at 5 pm.",
    "Use the sk-learn library with 0000 0000 0000 0000.",
]


@pytest.mark.parametrize(("text", "kind", "value"), TRUE_POSITIVES)
def test_each_kind_is_found(text, kind, value):
    found = find_sensitive(text)
    assert [f.kind for f in found] == [kind], found
    assert text[found[0].start : found[0].end] == value


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_look_alikes_are_not_flagged(text):
    assert find_sensitive(text) == []


def test_luhn_and_mod97():
    assert luhn_ok("4242424242424242") and not luhn_ok("4242424242424241")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    assert not iban_ok("GB82")


@pytest.mark.parametrize(("text", "kind", "value"), TRUE_POSITIVES)
def test_a_preview_never_shows_a_secret_in_full(text, kind, value):
    finding = find_sensitive(text)[0]
    preview = masked_preview(finding, text)
    assert value not in preview
    if finding.category == "secret":
        assert len(preview.split("…")[0]) <= 4 or kind == "private_key"
        assert f"({len(value)} characters)" in preview


def test_masking_replaces_each_finding_and_counts_them():
    text = f"Mail jane.doe@gmail.com, card 4242 4242 4242 4242, key {OPENAI_KEY}, ip 203.0.113.45."
    masked, n = mask_text(text)
    assert n == 4
    assert masked == "Mail <EMAIL>, card <CARD>, key <SECRET>, ip <IP>."
    assert mask_text("Nothing to hide here.") == ("Nothing to hide here.", 0)
    assert mask_text(f"x {PRIVATE_KEY} y") == ("x <PRIVATE_KEY> y", 1)


def test_scan_record_names_the_message_and_reads_tool_arguments():
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "My e-mail is jane.doe@gmail.com"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"card": "4242424242424242"}'},
                    }
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": f"Key {OPENAI_KEY}"}]},
        ]
    }
    assert [(i, f.kind) for i, f in scan_record(record)] == [(1, "email"), (2, "card"), (3, "openai_key")]


def test_check_record_names_kind_and_message_with_the_secret_masked():
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Deploy with {OPENAI_KEY} and mail ops@acme-corp.com"},
            {"role": "assistant", "content": "Done."},
        ]
    }
    problems = {p.code: p for p in check_record(record).problems}
    secret, pii = problems["contains_secret"], problems["contains_pii"]
    assert secret.level == pii.level == "warning" and secret.message_index == pii.message_index == 1
    assert secret.message.startswith("Message 2 contains an OpenAI API key: ") and OPENAI_KEY not in secret.message
    assert OPENAI_KEY[:5] not in secret.message
    assert pii.message == "Message 2 contains an e-mail address: o•••@acme-corp.com."


def test_the_live_check_stays_cheap():
    """The editor's live check stays under 20 ms for a long example (the scan: well under a millisecond)."""
    text = "I tried to reset my password twice on 2024-01-03 but the page said error 500. " * 40
    record = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text}]}
    start = time.perf_counter()
    for _ in range(20):
        check_record(record)
    assert (time.perf_counter() - start) / 20 < 0.020
