"""Downloading a base model from a Hugging Face Hub (the stand-in on 127.0.0.1): progress, resume, checksums,
disk space, gated repos, offline mode."""

from __future__ import annotations

import hashlib

import pytest

from app.basemodels import hub as hub_module
from app.basemodels.downloads import Download, ModelDownloads, partial_dir
from app.basemodels.service import add_from_hub
from app.engine.catalog import list_base_models, resolve_base_model
from app.engine.model_files import read_manifest
from app.errors import Forbidden, Invalid
from tests.basemodels.conftest import REPO
from tests.support.waiting import wait_for


def _finished(downloads: ModelDownloads, name: str) -> Download:
    return wait_for(lambda: (d := downloads.get(name)).is_terminal and d, timeout=60, what=f"download {name}")


def test_a_download_fetches_every_file_verifies_it_and_lists_the_model(settings, hub, tiny_dir):
    downloads = ModelDownloads(settings)
    started = add_from_hub(settings, downloads, REPO, "main", None, None)
    assert started.name == "tiny-llama"
    assert {f.name for f in started.files} >= {"config.json", "model.safetensors", "README.md"}
    done = _finished(downloads, "tiny-llama")
    assert done.status == "done", done.message
    assert done.done_bytes == done.total_bytes > 0
    path = resolve_base_model(settings, "tiny-llama")
    assert (path / "model.safetensors").read_bytes() == (tiny_dir / "model.safetensors").read_bytes()
    assert not (path / ".partial").exists()
    manifest = read_manifest(path)
    assert manifest is not None
    assert manifest.source == {"kind": "hf", "repo": REPO, "revision": "main", "commit": hub.commit(REPO)}
    assert manifest.facts.architecture == "llama"
    assert manifest.facts.licence == "apache-2.0"
    assert manifest.facts.context_length == 1024
    weights = next(f for f in manifest.files if f["name"] == "model.safetensors")
    assert weights["sha256"] == hashlib.sha256((tiny_dir / "model.safetensors").read_bytes()).hexdigest()
    assert any(m.name == "tiny-llama" and m.source == "hf" and m.cached for m in list_base_models(settings))


def test_a_connection_dropped_mid_file_resumes_with_a_range_request(settings, hub):
    hub.drop_once.add("model.safetensors")
    downloads = ModelDownloads(settings)
    add_from_hub(settings, downloads, REPO, "main", None, None)
    done = _finished(downloads, "tiny-llama")
    assert done.status == "done", done.message
    gets = hub.gets("model.safetensors")
    assert len(gets) == 2
    assert gets[0].range is None and gets[1].range is not None and gets[1].range.startswith("bytes=")
    assert int(gets[1].range[len("bytes=") :].rstrip("-")) > 0


def test_a_cancelled_download_keeps_its_partial_file_and_resumes_when_added_again(settings, hub):
    hub.hold.add("model.safetensors")
    downloads = ModelDownloads(settings)
    add_from_hub(settings, downloads, REPO, "main", None, None)
    assert hub.held.wait(30)
    wait_for(lambda: next(f for f in downloads.get("tiny-llama").files if f.name == "model.safetensors").done > 0)
    downloads.cancel("tiny-llama")
    cancelled = _finished(downloads, "tiny-llama")
    hub.release.set()
    assert cancelled.status == "cancelled"
    kept = list((partial_dir(settings, "tiny-llama") / ".partial").rglob("model.safetensors"))
    assert kept and kept[0].stat().st_size > 0

    add_from_hub(settings, downloads, REPO, "main", None, None)
    done = _finished(downloads, "tiny-llama")
    assert done.status == "done", done.message
    resumed = hub.gets("model.safetensors")[-1]
    assert resumed.range is not None and int(resumed.range[len("bytes=") :].rstrip("-")) > 0


def test_a_file_that_does_not_match_the_hubs_sha256_is_refused_and_removed(settings, hub):
    hub.corrupt.add("model.safetensors")
    downloads = ModelDownloads(settings)
    add_from_hub(settings, downloads, REPO, "main", None, None)
    failed = _finished(downloads, "tiny-llama")
    assert failed.status == "failed"
    assert "sha256 of model.safetensors does not match" in failed.message
    assert not (partial_dir(settings, "tiny-llama") / "model.safetensors").exists()
    assert "tiny-llama" not in {m.name for m in list_base_models(settings)}


def test_too_little_disk_space_is_refused_before_anything_is_fetched(settings, hub, monkeypatch):
    monkeypatch.setattr(hub_module, "free_bytes", lambda path: 1000)
    with pytest.raises(Invalid) as refused:
        add_from_hub(settings, ModelDownloads(settings), REPO, "main", None, None)
    assert refused.value.code == "disk_full"
    assert "Not enough disk space" in refused.value.message and "1.0 MB free" not in refused.value.message
    assert not [r for r in hub.log if "/resolve/" in r.path]


def test_a_gated_repo_without_a_token_says_a_token_is_needed_and_the_token_opens_it(settings, hub):
    hub.token = "hf_secret"
    downloads = ModelDownloads(settings)
    with pytest.raises(Forbidden) as refused:
        add_from_hub(settings, downloads, REPO, "main", None, None)
    assert refused.value.code == "hub_token_needed"
    assert "gated or private" in refused.value.message
    with pytest.raises(Forbidden, match="refused this token"):
        add_from_hub(settings, downloads, REPO, "main", "hf_wrong", None)
    add_from_hub(settings, downloads, REPO, "main", "hf_secret", "gated-tiny")
    assert _finished(downloads, "gated-tiny").status == "done"
    assert all(r.authorization == "Bearer hf_secret" for r in hub.log if "/resolve/" in r.path)
    assert (
        "hf_secret" not in (settings.data_dir / "models" / "added" / "gated-tiny" / "tuneboard-model.json").read_text()
    )


def test_offline_mode_refuses_downloads_in_words(settings, hub):
    offline = settings.model_copy(update={"hf_hub_offline": True})
    with pytest.raises(Invalid, match="downloads are off"):
        add_from_hub(offline, ModelDownloads(offline), REPO, "main", None, None)
    assert hub.log == []


def test_a_repo_with_only_pickled_weights_is_refused(settings, hub, tiny_dir):
    hub.repos["tiny-org/pickled"] = {"config.json": b"{}", "pytorch_model.bin": b"\x80\x04pickle"}
    with pytest.raises(Invalid, match="only pickled weights"):
        add_from_hub(settings, ModelDownloads(settings), "tiny-org/pickled", "main", None, None)


@pytest.mark.parametrize("repo", ["no-slash", "a/b/c", "../etc/passwd", "org/..", "org/na me"])
def test_a_repo_id_that_is_not_owner_slash_name_is_refused(settings, hub, repo):
    with pytest.raises(Invalid, match="owner/name"):
        add_from_hub(settings, ModelDownloads(settings), repo, "main", None, None)
    assert hub.log == []
