"""Export fixtures: the tiny model, a LoRA adapter of it with an effect, and a tuned model and checkpoint using it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session

from app.engine.chat_types import ChatParams, ModelRef
from app.engine.inference import ChatEngine
from app.tables import Checkpoint, Job, JobStatus, TunedModel
from tests.support.jobs_fixtures import TINY, settings, tiny_model

__all__ = ["TINY", "Tuned", "greedy_chat", "settings", "tiny_model", "tuned"]

PROMPTS = [
    "Tell me about the quick brown fox",
    "What is the capital of France?",
    "hello world",
    '{"answer": "yes"}',
    "Héllo wörld, ça va? 日本語",
]


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory) -> Path:
    """A LoRA adapter of the tiny model (random B, so it changes the answers), saved as the trainer saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from app.engine._hf import quiet

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    torch.manual_seed(11)
    with quiet():
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    out = tmp_path_factory.mktemp("adapter")
    with quiet():
        model.save_pretrained(out)
    (out / "trainer_state.json").write_text('{"step": 4}')  # the trainer's own files, which exports leave behind
    return out


@dataclass
class Tuned:
    """A succeeded local job's tuned model and its one checkpoint, both on the tiny adapter."""

    model_id: str
    checkpoint_id: str
    adapter: Path


@pytest.fixture
def tuned(session: Session, settings, tiny_adapter: Path) -> Tuned:
    """A tuned model whose adapter (and checkpoint's) lies in the data dir, as a finished local job leaves it."""
    job = Job(provider="local", model=TINY, status=JobStatus.succeeded, suffix="demo")
    session.add(job)
    session.commit()
    name = f"ft:{TINY}:demo:{job.id}"
    root = settings.data_dir / "jobs" / job.id
    shutil.copytree(tiny_adapter, root / "adapter")
    shutil.copytree(tiny_adapter, root / "checkpoints" / "step-4")
    checkpoint = f"{name}:ckpt-step-4"
    job.fine_tuned_model = name
    session.add_all(
        [
            job,
            TunedModel(id=name, job_id=job.id, provider="local", base_model=TINY, path=f"jobs/{job.id}/adapter"),
            Checkpoint(
                job_id=job.id,
                step_number=4,
                fine_tuned_model_checkpoint=checkpoint,
                metrics={"step": 4},
                path=f"jobs/{job.id}/checkpoints/step-4",
            ),
        ]
    )
    session.commit()
    return Tuned(name, checkpoint, root / "adapter")


@pytest.fixture
def exact_chat(settings) -> Iterator[ChatEngine]:
    """Tuneboard's chat on float32 weights (bit-for-bit the training maths), closed after the test."""
    with ChatEngine(settings.model_copy(update={"engine_quantize": False})) as engine:
        yield engine


def greedy_chat(engine: ChatEngine, ref: ModelRef, prompts: list[str], max_tokens: int = 12) -> list[str]:
    """Tuneboard's greedy answer to each prompt."""
    params = ChatParams(temperature=0, max_tokens=max_tokens)
    return ["".join(c.text for c in engine.stream_chat(ref, [{"role": "user", "content": p}], params)) for p in prompts]


def greedy_hf(model, tokenizer, prompts: list[str], max_tokens: int = 12) -> list[str]:
    """transformers' greedy answer to each prompt, the prompt rendered by the model's own chat template."""
    import torch

    from app.engine._hf import quiet

    answers = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad(), quiet():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    return answers
