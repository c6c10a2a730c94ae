"""Adding base models from a local directory or a GGUF file; names; deleting; the list's facts and memory fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from app.basemodels import registry
from app.basemodels.fit import training_bytes
from app.basemodels.service import add_from_directory, add_from_gguf, base_model_rows
from app.engine.catalog import list_base_models, resolve_base_model
from app.engine.devices import Gpu
from app.engine.model_files import ModelFacts
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.settings.maintenance import set_maintenance


def write_gguf(path: Path) -> Path:
    """A small GGUF file with a Llama's metadata and two tensors (enough to be described, not to be run)."""
    writer = GGUFWriter(str(path), "llama")
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_string("general.license", "mit")
    writer.add_tensor("token_embd.weight", np.zeros((100, 64), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_local_directory_is_registered_where_it_is_with_its_facts(settings, tiny_dir):
    manifest = add_from_directory(settings, str(tiny_dir), "my-tiny")
    assert manifest.source == {"kind": "local", "path": str(tiny_dir)}
    assert manifest.facts.architecture == "llama" and manifest.facts.parameters
    assert resolve_base_model(settings, "my-tiny") == tiny_dir
    assert any(m.name == "my-tiny" and m.source == "directory" for m in list_base_models(settings))


def test_a_directory_without_weights_or_chat_template_is_refused_with_each_reason(settings, tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    (broken / "model.safetensors").rename(broken / "pytorch_model.bin")
    (broken / "chat_template.jinja").unlink()
    with pytest.raises(Invalid) as refused:
        add_from_directory(settings, str(broken), None)
    assert "no .safetensors weights" in refused.value.message
    assert "no chat template" in refused.value.message
    with pytest.raises(Invalid, match="absolute path"):
        add_from_directory(settings, "relative/dir", None)


def test_names_are_checked_and_never_taken_twice(settings, tiny_dir):
    add_from_directory(settings, str(tiny_dir), None)
    with pytest.raises(Conflict):
        add_from_directory(settings, str(tiny_dir), None)
    with pytest.raises(Conflict):
        add_from_directory(settings, str(tiny_dir), "SmolLM2-135M-Instruct")
    with pytest.raises(Invalid):
        add_from_directory(settings, str(tiny_dir), "ft:bad:name")
    assert registry.suggested_name("Org/Some Model v2.Q8_0.gguf") == "Some-Model-v2.Q8_0"


def test_a_gguf_file_is_described_from_its_metadata_and_converted_only_on_first_use(settings, tmp_path):
    manifest = add_from_gguf(settings, str(write_gguf(tmp_path / "little.gguf")), None)
    assert manifest.name == "little" and manifest.source["kind"] == "gguf"
    assert manifest.facts.architecture == "llama" and manifest.facts.context_length == 2048
    assert manifest.facts.parameters == 100 * 64 + 64 and manifest.facts.licence == "mit"
    listed = next(m for m in list_base_models(settings) if m.name == "little")
    assert listed.source == "gguf-file" and not listed.cached and listed.path is None


def test_a_file_that_is_not_gguf_is_refused(settings, tmp_path):
    other = tmp_path / "model.gguf"
    other.write_bytes(b"not a gguf file at all")
    with pytest.raises(Invalid, match="cannot be read as a GGUF file"):
        add_from_gguf(settings, str(other), None)


def test_deleting_an_added_model_needs_maintenance_and_keeps_a_local_directory(settings, session, tiny_dir):
    add_from_directory(settings, str(tiny_dir), "to-delete")
    with pytest.raises(Forbidden):
        registry.delete_added(session, settings, "to-delete")
    set_maintenance(session, True)
    registry.delete_added(session, settings, "to-delete")
    assert "to-delete" not in {m.name for m in list_base_models(settings)}
    assert (tiny_dir / "config.json").exists()
    with pytest.raises(NotFound):
        registry.delete_added(session, settings, "to-delete")


def test_the_list_shows_facts_and_whether_the_model_fits_ram_and_each_gpu(settings, tiny_dir, monkeypatch):
    add_from_directory(settings, str(tiny_dir), "fit-tiny")
    monkeypatch.setattr("app.basemodels.service.available_ram", lambda: 8 * 2**30)
    gpus = [Gpu(0, "Big", 80 * 2**30), Gpu(1, "Tiny", 1000)]
    row = next(r for r in base_model_rows(settings, 4, 1024, gpus=gpus) if r.name == "fit-tiny")
    assert row.source == "local directory" and row.origin == str(tiny_dir)
    assert row.facts.context_length == 1024 and row.facts.bytes and row.facts.bytes > 400_000
    assert [(f.where, f.fits) for f in row.fits] == [("RAM", True), ("GPU 0 (Big)", True), ("GPU 1 (Tiny)", False)]


def test_the_fit_rule_counts_weights_activations_and_logits():
    facts = ModelFacts(parameters=1_000_000, hidden_size=64, layers=2, vocab_size=100)
    weights, activations, logits = 4_000_000, 34 * 2 * 8 * 64 * 2, 8 * 2 * 8 * 100
    assert training_bytes(facts, 2, 8) == int((weights + activations + logits) * 1.2)
    assert training_bytes(ModelFacts(), 2, 8) is None


def test_a_manifest_that_cannot_be_read_is_skipped(settings, tiny_dir):
    add_from_directory(settings, str(tiny_dir), "good")
    bad = settings.data_dir / "models" / "added" / "bad"
    bad.mkdir()
    (bad / "tuneboard-model.json").write_text(json.dumps({"name": "bad"}))
    assert "bad" not in {m.name for m in list_base_models(settings)}
    assert "good" in {m.name for m in list_base_models(settings)}
