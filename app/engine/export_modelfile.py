"""An Ollama Modelfile for an exported GGUF: the chat template in Ollama's Go-template form where it is ChatML or
Llama 3's, found by rendering the model's own Jinja template on probe messages; else the minimal form (Ollama reads
the template stored in the GGUF) with the end-of-turn tokens as stop parameters.

Pure Python and jinja2: the models page builds it without loading torch or transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Distinct enough that no template writes them by itself.
_SYSTEM, _USER, _ASSISTANT, _USER2 = "S-7f3a", "U-1c9e", "A-5b2d", "U-8e4f"
_END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>", "</s>")

_CHATML_GO = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
_LLAMA3_GO = (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def chat_template(model_dir: Path) -> str | None:
    """The model's chat template: chat_template.jinja (transformers 5) or the tokenizer config's entry."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text()
    template = read_json(model_dir / "tokenizer_config.json").get("chat_template")
    return template if isinstance(template, str) else None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when the file is missing."""
    return json.loads(path.read_text()) if path.exists() else {}


def special_token(model_dir: Path, role: str) -> str | None:
    """The text of the tokenizer's bos/eos/... token, as tokenizer_config.json names it."""
    token = read_json(model_dir / "tokenizer_config.json").get(f"{role}_token")
    return token.get("content") if isinstance(token, dict) else token


def modelfile(gguf_name: str, model_dir: Path | None) -> str:
    """The Modelfile text for `ollama create` run beside the downloaded GGUF file gguf_name."""
    template = chat_template(model_dir) if model_dir is not None else None
    bos = special_token(model_dir, "bos") if model_dir is not None else None
    eos = special_token(model_dir, "eos") if model_dir is not None else None
    lines = [f"FROM ./{gguf_name}"]
    style = _style(template, bos, eos) if template else None
    if style is None:
        lines.append("# Ollama uses the chat template stored in the GGUF file.")
        stops = [m for m in _END_MARKERS if template and m in template]
    else:
        go, prefix, system, stop = style
        lines.append(f'TEMPLATE """{prefix}{go}"""')
        if system and '"""' not in system:
            lines.append(f'SYSTEM """{system}"""')
        stops = [stop]
    if eos and eos not in stops:
        stops.append(eos)
    lines += [f"PARAMETER stop {json.dumps(stop)}" for stop in stops]
    return "\n".join(lines) + "\n"


def _render(template: str, messages: list[dict[str, str]], bos: str | None, eos: str | None) -> str | None:
    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos or "", eos_token=eos or ""
        )
    except (TemplateError, TypeError, ValueError):
        return None


def _style(template: str, bos: str | None, eos: str | None) -> tuple[str, str, str, str] | None:
    """(Go template, fixed prefix, default system prompt, end-of-turn marker) when the template is ChatML or
    Llama 3 in every probe, else None."""
    chatml = ("<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n", _CHATML_GO, "<|im_end|>")
    llama3 = (
        "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        _LLAMA3_GO,
        "<|eot_id|>",
    )
    for turn, prompt, go, stop in (chatml, llama3):

        def expected(messages: list[dict[str, str]], turn: str = turn, prompt: str = prompt) -> str:
            return "".join(turn.format(role=m["role"], content=m["content"]) for m in messages) + prompt

        with_system = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER}]
        conversation = [
            {"role": "user", "content": _USER},
            {"role": "assistant", "content": _ASSISTANT},
            {"role": "user", "content": _USER2},
        ]
        rendered = _render(template, with_system, bos, eos)
        if rendered is None or not rendered.endswith(expected(with_system)):
            continue
        prefix = rendered[: -len(expected(with_system))]  # a BOS the template writes itself
        plain = _render(template, conversation, bos, eos)
        if plain is None or not plain.startswith(prefix) or not plain.endswith(expected(conversation)):
            continue
        added = plain[len(prefix) : -len(expected(conversation))]
        system = _default_system(added, turn)
        if added and system is None:
            continue
        return go, prefix, system or "", stop
    return None


def _default_system(added: str, turn: str) -> str | None:
    """The system prompt a template adds when the conversation has none (None: what it added is not one)."""
    head, tail = turn.split("{content}")
    head = head.format(role="system")
    if added.startswith(head) and added.endswith(tail):
        return added[len(head) : len(added) - len(tail)]
    return None
