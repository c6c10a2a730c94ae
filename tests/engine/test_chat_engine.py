"""The engine's switches come from Settings, and the chat engine the app builds is cheap and owns its models."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.engine import protocol as p
from app.engine.chat_types import ChatParams, ModelRef
from app.providers.base import ProviderError
from app.providers.local import LocalProvider
from tests.engine.conftest import TINY


@pytest.mark.parametrize(("raw", "spin"), [("0", "off"), ("1", "on"), ("auto", "auto"), ("off", "off"), ("on", "on")])
def test_engine_spin_reads_the_old_digits_and_the_new_words(monkeypatch, tmp_path, raw, spin):
    monkeypatch.setenv("TUNEBOARD_ENGINE_SPIN", raw)
    assert Settings(data_dir=tmp_path).engine_spin == spin


def test_an_unknown_engine_spin_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEBOARD_ENGINE_SPIN", "2")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path)


def test_quantize_and_native_are_booleans_set_by_0_and_1(monkeypatch, tmp_path):
    assert Settings(data_dir=tmp_path).engine_quantize is True
    assert Settings(data_dir=tmp_path).engine_native is True
    monkeypatch.setenv("TUNEBOARD_ENGINE_QUANTIZE", "0")
    monkeypatch.setenv("TUNEBOARD_ENGINE_NATIVE", "0")
    assert Settings(data_dir=tmp_path).engine_quantize is False
    assert Settings(data_dir=tmp_path).engine_native is False


def test_building_the_app_and_its_chat_engine_loads_no_torch_and_sets_the_openmp_policy(tmp_path):
    code = (
        "import os, sys\n"
        "from app.config import Settings\n"
        "from app.main import create_app\n"
        f"app = create_app(Settings(data_dir={str(tmp_path / 'data')!r}, engine_spin='off'))\n"
        "print(app.state.chat_engine is not None, 'torch' in sys.modules, 'transformers' in sys.modules, "
        "os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "TUNEBOARD_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["True", "False", "False", "PASSIVE"]


def test_the_trainer_spec_carries_the_spin_setting():
    base = dict.fromkeys(("job_id", "base_model", "fine_tuned_model", "train_file", "output_dir", "data_dir"), "x")
    assert p.TrainSpec.from_dict(base).engine_spin == "auto"
    assert p.TrainSpec.from_dict({**base, "engine_spin": "off"}).engine_spin == "off"


def test_a_local_provider_chats_through_the_chat_engine_it_was_given(tiny_settings, tiny_chat):
    ref, messages, params = ModelRef(TINY, TINY), [{"role": "user", "content": "hi"}], ChatParams(max_tokens=2)
    chunks = list(LocalProvider(tiny_settings, chat_engine=tiny_chat).stream_chat(ref, messages, params))
    assert chunks[-1].finish_reason in ("stop", "length")
    assert tiny_chat.get_model(ref) is tiny_chat.get_model(ref)  # loaded once, kept by the engine
    with pytest.raises(ProviderError):
        LocalProvider(tiny_settings).stream_chat(ref, messages, params)
