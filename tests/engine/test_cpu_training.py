"""The CPU training path computes what PEFT's forward with a packed-row mask computes, loss and gradients."""

from __future__ import annotations

import random

import pytest

from app.engine.data import Example, pack, segment_lengths


def _examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        length = rng.randint(4, 30)
        ids = [rng.randint(3, 300) for _ in range(length)]
        examples.append(Example(ids, [False] * (length // 2) + [True] * (length - length // 2)))
    return examples


def _model_with_trained_adapters(model_dir):
    """A LoRA model whose B matrices are not zero, so the adapters change the loss and A gets gradients."""
    import torch

    from app.engine.lora_model import load_lora_model

    model = load_lora_model(model_dir, 4, "cpu", 1)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


def _loss_and_grads(stepper, rows):
    total = 0.0
    stepper.model.zero_grad(set_to_none=True)
    for row in rows:
        loss, _, _ = stepper.row_loss(*row)
        loss.backward()
        total += float(loss.detach())
    grads = {n: q.grad.clone() for n, q in stepper.model.named_parameters() if q.requires_grad}
    return total, grads


def test_segment_lengths_follow_the_restarting_positions():
    assert segment_lengths([0, 1, 2, 0, 1, 0]) == (3, 2, 1)
    assert segment_lengths([0, 1, 2, 3]) == (4,)
    rows = pack(_examples(6), 60)
    for ids, positions, _ in rows:
        assert sum(segment_lengths(positions)) == len(ids)


def test_the_cpu_training_path_matches_peft_with_a_packed_mask_in_loss_and_gradients(tiny_model_dir):
    from app.engine import cpu_training
    from app.engine.lora_model import Stepper

    rows = pack(_examples(7), 64)
    assert any(len(segment_lengths(row[1])) > 1 for row in rows)  # rows really hold several examples
    reference = Stepper(_model_with_trained_adapters(tiny_model_dir), "cpu", None)
    packed_model = _model_with_trained_adapters(tiny_model_dir)
    assert cpu_training.prepare(packed_model, None)
    packed = Stepper(packed_model, "cpu", None, packed=True)
    ref_loss, ref_grads = _loss_and_grads(reference, rows)
    packed_loss, packed_grads = _loss_and_grads(packed, rows)
    assert packed_loss == pytest.approx(ref_loss, rel=1e-5)
    assert ref_grads.keys() == packed_grads.keys()
    for name, grad in ref_grads.items():
        assert grad.abs().sum() > 0, name
        assert (packed_grads[name] - grad).abs().max() <= 1e-4 * grad.abs().max() + 1e-7, name


def test_the_cpu_training_path_keeps_peft_adapter_names_and_float32_adapters_under_bf16(tiny_model_dir):
    import torch

    from app.engine import cpu_training
    from app.engine.lora_model import load_lora_model

    model = load_lora_model(tiny_model_dir, 4, "cpu", 1)
    before = sorted(model.state_dict())
    cpu_training.prepare(model, torch.bfloat16)
    assert sorted(model.state_dict()) == before
    trainable = [q for q in model.parameters() if q.requires_grad]
    assert trainable and all(q.dtype == torch.float32 for q in trainable)
    frozen_linear = model.get_base_model().model.layers[0].mlp.up_proj.base_layer
    assert frozen_linear.weight.dtype == torch.bfloat16
    stepper_rows = pack(_examples(3), 64)
    from app.engine.lora_model import Stepper

    stepper = Stepper(model, "cpu", torch.bfloat16, packed=True)
    loss, n, _ = stepper.row_loss(*stepper_rows[0])
    loss.backward()
    assert n > 0 and torch.isfinite(loss)
    assert all(q.grad is not None and q.grad.dtype == torch.float32 for q in trainable)


def test_chunked_head_loss_matches_cross_entropy_and_argmax_with_ties(monkeypatch):
    import torch

    from app.engine import cpu_training

    monkeypatch.setattr(cpu_training, "HEAD_CHUNK", 16)  # several chunks, the last one partial
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(50, 8, generator=generator)
    weight[7] = weight[3]  # two vocabulary rows tie everywhere: argmax picks 3, never 7
    hidden = torch.randn(40, 8, generator=generator)
    hidden[10:14] = weight[3] * 5  # rows whose best tokens are 3 and 7, tied
    hidden.requires_grad_()
    logits = hidden @ weight.t()
    targets = logits.argmax(-1)
    targets[:10] = torch.randint(0, 50, (10,), generator=generator)
    targets[10:12] = 7  # tied with 3, which comes first: a miss for argmax
    assert (logits.argmax(-1)[10:14] == 3).all()
    expected_loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    (expected_grad,) = torch.autograd.grad(expected_loss, hidden)
    expected_correct = int((logits.argmax(-1) == targets).sum())

    loss, correct = cpu_training.head_loss(hidden, weight, targets)
    (grad,) = torch.autograd.grad(loss * 0.5, hidden)
    assert float(loss.detach()) == pytest.approx(float(expected_loss.detach()), rel=1e-5)
    assert int(correct) == expected_correct == 40 - 10 - 2 + int((targets[:10] == logits.argmax(-1)[:10]).sum())
    assert torch.allclose(grad, expected_grad * 0.5, atol=1e-5)
    with torch.no_grad():
        assert float(cpu_training.head_loss(hidden, weight, targets)[0]) == pytest.approx(
            float(loss.detach()), rel=1e-6
        )
