"""Decoding under a grammar (issue #22): `response_format` JSON answers and tool calls that always parse and match
their JSON Schema, through xgrammar.

A request's constraint is planned from its ChatParams (`plan`, plain data, no xgrammar), compiled once per tokenizer
and plan (`Grammars`, an LRU hanging off the ChatEngine), then followed by a `Guide` per reply: before each token
is sampled the grammar's bitmask sets every token it forbids to -inf; each sampled token is fed back. The end-of-turn
tokens pass only where the grammar is complete, so a reply ends only as a whole JSON value or a whole call.
Replies without a constraint never touch this module.

Tool calls are in the tool format's Hermes tags (tool_format.py): `<tool_call>{"name": "f", "arguments": {...}}
</tool_call>`, a newline after the open tag and before the close tag allowed (Qwen's own spacing); call_reader.py
reads them back out of the text as it grows.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.engine.chat_types import ChatParams
from app.engine.tool_format import CALL_CLOSE, CALL_OPEN, CALL_SEPARATOR
from app.errors import Invalid

if TYPE_CHECKING:
    import torch
    import xgrammar

GRAMMAR_CACHE = 64  # compiled grammars kept per engine (a few ms to compile each; a schema is often reused)
VOCABULARY_CACHE = 4  # tokenizers as xgrammar sees them (~0.2 s to build for SmolLM2's 49k tokens)
# Whitespace between JSON tokens, at most one character a time: `{"a": 1}` and `{"a":1}` both pass, but a sampled
# reply cannot spend its tokens on runs of blanks.
MAX_WHITESPACE = 1
# UTF-8 lead bytes whose next byte has a narrower range than any continuation byte; the range that lead forbids.
# xgrammar admits encoded surrogates (ED A0..BF ..), which are no UTF-8: a reply would show U+FFFD where the grammar
# counted a character (and break a maxLength). Overlong forms (E0 80..9F, F0 80..8F) and code points past U+10FFFF
# (F4 90..BF) go with them.
_NARROW_LEADS = {0xE0: (0x80, 0x9F), 0xED: (0xA0, 0xBF), 0xF0: (0x80, 0x8F), 0xF4: (0x90, 0xBF)}
_NOT_SCHEMAS = frozenset({"enum", "const", "default", "examples"})  # keys whose values are data, not schemas


@dataclass(frozen=True)
class Plan:
    """What a reply must be: a grammar spec (JSON text, also the cache key) and whether tool calls are read out of
    the reply (tools offered and calls allowed)."""

    spec: str
    reads_calls: bool


def plan(params: ChatParams) -> Plan | None:
    """The constraint that `response_format`, `tools` and `tool_choice` put on a reply; None when there is none.
    Invalid for a malformed request (a named function that is not offered, "required" without tools...)."""
    answer = _answer_format(params.response_format)
    tools = [_function(tool) for tool in params.tools or []]
    choice = params.tool_choice if params.tool_choice is not None else "auto"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str) or not name:
            raise Invalid(
                'tool_choice must name a function: {"type": "function", "function": {"name": …}}.', param="tool_choice"
            )
        chosen = [f for f in tools if f["name"] == name]
        if not chosen:
            raise Invalid(f"tool_choice names {name!r}, which is not among the tools.", param="tool_choice")
        return _tag_plan(_calls(chosen, params.parallel_tool_calls))
    if choice not in ("auto", "none", "required"):
        raise Invalid('tool_choice must be "auto", "none", "required" or a named function.', param="tool_choice")
    if choice == "required":
        if not tools:
            raise Invalid('tool_choice "required" needs tools.', param="tool_choice")
        return _tag_plan(_calls(tools, params.parallel_tool_calls))
    if choice == "none" or not tools:
        if answer is not None:
            return Plan(json.dumps(answer), reads_calls=False)
        if tools:  # offered (they are in the prompt) but not to be called: the tag cannot be written
            return Plan(json.dumps({"any_text": [CALL_OPEN]}), reads_calls=False)
        return None
    if answer is not None:  # auto with a JSON answer format: either the answer or calls
        either = {"type": "or", "elements": [_json_format(answer), _calls(tools, params.parallel_tool_calls)]}
        return _tag_plan(either)
    tags = {
        "type": "triggered_tags",
        "triggers": [CALL_OPEN],
        "tags": _tags(tools),
        "stop_after_first": not params.parallel_tool_calls,
    }
    return _tag_plan(tags)


def _answer_format(response_format: dict | None) -> dict | None:
    """The JSON answer a response_format asks for, as {"schema", "strict"}; None for text."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"schema": {"type": "object"}, "strict": False}
    if kind != "json_schema":
        raise Invalid('response_format type must be "text", "json_object" or "json_schema".', param="response_format")
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(schema, dict):
        raise Invalid("response_format json_schema needs a schema (a JSON Schema object).", param="response_format")
    return {"schema": json_safe(schema), "strict": bool(spec.get("strict"))}


def _function(tool: dict) -> dict:
    """A tool's function: its name and its parameters schema ({} taken as an object with no properties)."""
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise Invalid(
            'Each tool must be {"type": "function", "function": {"name": …, "parameters": …}}.', param="tools"
        )
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise Invalid(f"The parameters of {name!r} must be a JSON Schema object.", param="tools")
    return {"name": name, "parameters": json_safe(parameters)}


def _tags(functions: list[dict]) -> list[dict]:
    """A tag per function and spacing: its name fixed, its arguments held to its parameters schema."""
    ends = ["}" + CALL_CLOSE, "}\n" + CALL_CLOSE]
    return [
        {
            "type": "tag",
            "begin": f'{CALL_OPEN}{space}{{"name": {json.dumps(f["name"])}, "arguments": ',
            "content": {"type": "json_schema", "json_schema": f["parameters"], "max_whitespace_cnt": MAX_WHITESPACE},
            "end": ends,
        }
        for f in functions
        for space in ("", "\n")
    ]


def _calls(functions: list[dict], parallel: bool) -> dict:
    """One call or more (one only when not parallel) of these functions, and nothing else."""
    return {
        "type": "tags_with_separator",
        "tags": _tags(functions),
        "separator": CALL_SEPARATOR,
        "at_least_one": True,
        "stop_after_first": not parallel,
    }


def _json_format(answer: dict) -> dict:
    return {"type": "json_schema", "json_schema": answer["schema"], "max_whitespace_cnt": MAX_WHITESPACE}


def _tag_plan(format_: dict) -> Plan:
    return Plan(
        json.dumps({"structural_tag": {"type": "structural_tag", "format": format_}}), True
    )  # key order kept: properties are written in the order the schema declares


def json_safe(schema: Any) -> Any:
    """The schema with each length-bounded string given a pattern that keeps control characters out.

    xgrammar writes a string with minLength/maxLength (and no pattern or format) from a rule that lets raw control
    characters through, which no JSON parser accepts; as a pattern, the same bounds exclude them (and quotes and
    backslashes, which a bounded string then cannot hold: still valid against the schema)."""
    if isinstance(schema, list):
        return [json_safe(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    safe = {key: value if key in _NOT_SCHEMAS else json_safe(value) for key, value in schema.items()}
    types = safe.get("type")
    is_string = types == "string" or (isinstance(types, list) and types == ["string"])
    bounded = "minLength" in safe or "maxLength" in safe
    if is_string and bounded and not {"pattern", "format", "enum", "const"} & safe.keys():
        low, high = int(safe.pop("minLength", 0)), safe.pop("maxLength", None)
        safe["pattern"] = f'^[^"\\\\\\x00-\\x1f]{{{low},{"" if high is None else int(high)}}}$'
    return safe


class Grammars:
    """Compiled grammars, per tokenizer and plan, the last GRAMMAR_CACHE used; and each tokenizer as xgrammar sees
    it. One per ChatEngine; thread-safe."""

    def __init__(self, size: int = GRAMMAR_CACHE):
        self.size = size
        self._compiled: OrderedDict[tuple, Compiled] = OrderedDict()
        self._vocabularies: OrderedDict[tuple, _Vocabulary] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every compiled grammar and tokenizer."""
        with self._lock:
            self._compiled.clear()
            self._vocabularies.clear()

    def compile(self, tokenizer: Any, vocab_size: int, eos_ids: frozenset[int], plan: Plan) -> Compiled:
        """The plan's grammar for this tokenizer (the model's vocabulary size, its end-of-turn ids), compiled once."""
        vocabulary_key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer), vocab_size, tuple(sorted(eos_ids)))
        key = (vocabulary_key, plan.spec)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
            vocabulary = self._vocabularies.get(vocabulary_key)
            if vocabulary is None:
                vocabulary = _Vocabulary(tokenizer, vocab_size, eos_ids)
                self._vocabularies[vocabulary_key] = vocabulary
                while len(self._vocabularies) > VOCABULARY_CACHE:
                    self._vocabularies.popitem(last=False)
            self._vocabularies.move_to_end(vocabulary_key)
            compiled = Compiled(vocabulary, vocabulary.compile(json.loads(plan.spec)), plan.reads_calls)
            self._compiled[key] = compiled
            while len(self._compiled) > self.size:
                self._compiled.popitem(last=False)
        return compiled


class _Vocabulary:
    """A tokenizer as xgrammar sees it: its special tokens (the end-of-turn ones aside) never allowed, and what
    the UTF-8 check needs (each token's last byte; the tokens each narrow lead byte forbids next)."""

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: frozenset[int]):
        import torch
        import xgrammar as xgr

        stops = sorted(eos_ids)
        found = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stops)
        # xgrammar reads special tokens as their text (`<|im_start|>` could sit inside a JSON string, then vanish
        # from the decoded reply): as empty tokens they are never allowed.
        special = set(getattr(tokenizer, "all_special_ids", [])) - eos_ids
        special.update(i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special)
        special -= eos_ids
        encoded = [""] * vocab_size
        for token, index in tokenizer.get_vocab().items():
            if index < vocab_size and index not in special:
                encoded[index] = token
        self.info = xgr.TokenizerInfo(
            encoded, found.vocab_type, vocab_size=vocab_size, stop_token_ids=stops,
            add_prefix_space=found.add_prefix_space,
        )  # fmt: skip
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.size = vocab_size
        self.eos_ids = stops
        pieces = self.info.decoded_vocab
        self.last_byte = [piece[-1] if piece else -1 for piece in pieces]
        self.after_lead: dict[int, torch.Tensor] = {
            lead: torch.tensor([i for i, p in enumerate(pieces) if p and low <= p[0] <= high], dtype=torch.long)
            for lead, (low, high) in _NARROW_LEADS.items()
        }

    def compile(self, spec: dict) -> xgrammar.CompiledGrammar:
        """Compile a plan's spec; Invalid when xgrammar refuses the schema."""
        try:
            if "structural_tag" in spec:
                return self.compiler.compile_structural_tag(spec["structural_tag"])
            if "any_text" in spec:
                excluded = {"type": "any_text", "excludes": spec["any_text"]}
                return self.compiler.compile_structural_tag({"type": "structural_tag", "format": excluded})
            return self.compiler.compile_json_schema(
                spec["schema"], any_whitespace=True, max_whitespace_cnt=MAX_WHITESPACE, strict_mode=spec["strict"]
            )
        except (RuntimeError, ValueError, TypeError) as exc:  # xgrammar's errors on a schema it cannot follow
            raise Invalid(f"This schema cannot be used to constrain the reply: {exc}", param="response_format") from exc


@dataclass(frozen=True)
class Compiled:
    """A compiled grammar for one tokenizer, and whether tool calls are read out of the replies it guides."""

    vocabulary: _Vocabulary
    grammar: Any  # xgrammar.CompiledGrammar
    reads_calls: bool

    def guide(self) -> Guide:
        """A fresh guide for one reply."""
        return Guide(self)


class Guide:
    """One reply's way through a grammar: mask the logits before each sample, accept the token sampled."""

    def __init__(self, compiled: Compiled):
        import xgrammar as xgr

        vocabulary = self.vocabulary = compiled.vocabulary
        self.matcher = xgr.GrammarMatcher(compiled.grammar, override_stop_tokens=vocabulary.eos_ids)
        self.bitmask = xgr.allocate_token_bitmask(1, vocabulary.size)
        self._apply = xgr.apply_token_bitmask_inplace
        self.last_byte = -1  # the reply's last byte so far

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """The next-token logits (changed in place) with every token the grammar forbids at -inf."""
        if self.matcher.fill_next_token_bitmask(self.bitmask):
            self._apply(logits, self.bitmask, vocab_size=self.vocabulary.size)
        forbidden = self.vocabulary.after_lead.get(self.last_byte)
        if forbidden is not None:
            logits[forbidden] = float("-inf")
        return logits

    def accept(self, token: int) -> None:
        """Move past a sampled token (one that mask allowed)."""
        if not self.matcher.accept_token(token):
            raise RuntimeError(f"the grammar refused token {token}, which its mask allowed")
        last = self.vocabulary.last_byte[token] if token < self.vocabulary.size else -1
        if last >= 0:
            self.last_byte = last
