"""GET /api/models/{id}/export and the export page: streamed tars and GGUF files, the cache, auth and errors."""

from __future__ import annotations

import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.engine import export as engine_export
from app.jobs import export as exports
from app.jobs.tar_stream import tar_chunks, tar_size
from app.settings.maintenance import set_maintenance
from tests.export.conftest import TINY


def _url(model_id: str, export_format: str, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"format": export_format, **extra}.items())
    return f"/api/models/{quote(model_id, safe='')}/export?{query}"


def _tar(response) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]


def test_the_adapter_comes_as_a_tar_of_what_peft_and_vllm_read(api, tuned):
    response = api.get(_url(tuned.model_id, "adapter"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    assert int(response.headers["content-length"]) == len(response.content)
    stem = exports.stem(tuned.model_id)
    assert f'filename="{stem}-adapter.tar"' in response.headers["content-disposition"]
    files = _tar(response)
    assert sorted(files) == [f"{stem}-adapter/adapter_config.json", f"{stem}-adapter/adapter_model.safetensors"]
    assert (
        files[f"{stem}-adapter/adapter_model.safetensors"] == (tuned.adapter / "adapter_model.safetensors").read_bytes()
    )
    assert f'"base_model_name_or_path": "{TINY}"' in files[f"{stem}-adapter/adapter_config.json"].decode()


def test_the_merged_model_comes_as_a_tar_of_a_hugging_face_directory(api, tuned):
    response = api.get(_url(tuned.model_id, "merged"))
    assert response.status_code == 200, response.text
    names = {name.split("/", 1)[1] for name in _tar(response)}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    } <= names


def test_a_gguf_comes_as_one_file_and_q8_0_is_smaller(api, tuned):
    f16 = api.get(_url(tuned.model_id, "gguf"))
    q8 = api.get(_url(tuned.model_id, "gguf", quant="q8_0"))
    assert f16.status_code == q8.status_code == 200
    assert f16.content[:4] == q8.content[:4] == b"GGUF"
    assert f16.headers["content-type"] == "application/octet-stream"
    assert f'filename="{exports.stem(tuned.model_id)}-f16.gguf"' in f16.headers["content-disposition"]
    assert len(q8.content) < len(f16.content)


def test_a_second_download_streams_from_the_cache(api, tuned, monkeypatch):
    first = api.get(_url(tuned.model_id, "gguf"))

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(engine_export, "export_merged", no_build)
    monkeypatch.setattr(engine_export, "export_gguf", no_build)
    second = api.get(_url(tuned.model_id, "gguf"))
    assert second.status_code == 200 and second.content == first.content
    assert api.get(_url(tuned.model_id, "merged")).status_code == 200  # the GGUF's merged directory, kept


def test_a_checkpoint_is_exportable_too(api, tuned):
    response = api.get(_url(tuned.checkpoint_id, "adapter"))
    assert response.status_code == 200, response.text
    assert f"{exports.stem(tuned.checkpoint_id)}-adapter/adapter_model.safetensors" in _tar(response)


def test_without_a_key_the_export_is_refused(app, tuned):
    with TestClient(app) as anonymous:
        assert anonymous.get(_url(tuned.model_id, "adapter")).status_code == 401


def test_an_unknown_model_is_404_and_a_base_model_400(api, tuned):
    missing = api.get(_url("ft:nope:x:ftjob-0", "adapter"))
    assert missing.status_code == 404 and missing.json()["code"] == "model_not_found"
    base = api.get(_url(TINY, "adapter"))
    assert base.status_code == 400 and base.json()["code"] == "export_unsupported"
    assert "Only local tuned models and checkpoints" in base.json()["detail"]


@pytest.mark.parametrize("query", ["format=zip", "format=gguf&quant=q4_k", ""])
def test_an_unknown_format_or_quantization_is_refused(api, tuned, query):
    response = api.get(f"/api/models/{quote(tuned.model_id, safe='')}/export?{query}")
    assert response.status_code == 422


def test_a_missing_adapter_is_404(api, tuned):
    (tuned.adapter / "adapter_model.safetensors").unlink()
    assert api.get(_url(tuned.model_id, "adapter")).status_code == 404


def test_the_tar_stream_announces_its_length_and_opens(tuned):
    chunks = b"".join(tar_chunks(tuned.adapter, "x"))
    assert len(chunks) == tar_size(tuned.adapter, "x")
    with tarfile.open(fileobj=io.BytesIO(chunks)) as archive:
        assert {"x/adapter_config.json", "x/trainer_state.json"} <= set(archive.getnames())


def test_the_models_page_links_each_local_model_to_its_export_page(client, tuned):
    page = client.get("/models").text
    assert f'href="/models/{quote(tuned.model_id, safe="/")}/export"' in page


def test_the_export_page_offers_four_downloads_and_an_ollama_modelfile(client, tuned):
    page = client.get(f"/models/{quote(tuned.model_id)}/export")
    assert page.status_code == 200
    html = page.text
    assert html.count("built on first download") == 4
    assert "format=adapter" in html and "format=merged" in html and "quant=q8_0" in html
    assert f"FROM ./{exports.stem(tuned.model_id)}-f16.gguf" in html
    assert "&lt;|im_start|&gt;{{ .Role }}" in html  # the ChatML template in Ollama's form
    assert 'data-copy="#ollama-modelfile"' in html


def test_the_export_page_shows_a_size_once_built_and_the_dashboard_downloads(client, tuned):
    download = client.get(f"/models/{quote(tuned.model_id)}/export/download?format=adapter")
    assert download.status_code == 200 and download.headers["content-type"] == "application/x-tar"
    fragment = client.get(f"/models/{quote(tuned.model_id)}/export", headers={"HX-Request": "true"}).text
    assert fragment.lstrip().startswith('<section id="model-export"')
    assert fragment.count("built on first download") == 3
    assert "KB" in fragment or "kB" in fragment


def test_the_export_page_of_a_base_model_says_why_not(client):
    page = client.get(f"/models/{TINY}/export")
    assert page.status_code == 400
    assert "Only local tuned models and checkpoints can be exported" in page.text


def test_two_downloads_at_once_build_the_merged_model_once(settings, session, tuned, monkeypatch):
    calls = []
    real = engine_export.export_merged

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_export, "export_merged", counted)

    def fetch(export_format: str) -> tuple[str, int, int]:
        with Session(session.get_bind()) as own:
            download = exports.download(own, settings, tuned.model_id, export_format)
        return download.filename.rsplit(".", 1)[1], download.size, len(b"".join(download.chunks))

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(fetch, ["gguf", "merged"]))
    assert len(calls) == 1
    assert [kind for kind, _, _ in results] == ["gguf", "tar"]
    assert all(size == sent for _, size, sent in results)


def test_deleting_the_model_deletes_its_exports(api, session, settings, tuned):
    assert api.get(_url(tuned.model_id, "adapter")).status_code == 200
    folder = exports.exports_folder(settings, tuned.model_id)
    assert any(folder.rglob("*.tar")) or any(folder.iterdir())
    set_maintenance(session, True)
    assert api.delete(f"/v1/models/{quote(tuned.model_id, safe='')}").status_code == 200
    assert not folder.exists()
