"""/api/base-models and the pages: add from the stand-in hub, follow progress, list, cancel, delete."""

from __future__ import annotations

from app.basemodels import hub as hub_module
from tests.basemodels.conftest import REPO
from tests.support.waiting import wait_for


def _finished(api, name: str) -> dict:
    def ended():
        body = api.get(f"/api/base-models/downloads/{name}").json()
        return body["status"] != "running" and body

    return wait_for(ended, timeout=60, what=f"download {name}")


def test_the_api_downloads_a_repo_reports_progress_and_lists_the_model(api, hub):
    started = api.post("/api/base-models", json={"source": {"kind": "hf", "repo": REPO}})
    assert started.status_code == 202, started.text
    assert started.json()["name"] == "tiny-llama" and started.json()["total_bytes"] > 0
    done = _finished(api, "tiny-llama")
    assert done["status"] == "done", done["message"]
    assert done["done_bytes"] == done["total_bytes"]
    assert {f["name"] for f in done["files"]} >= {"model.safetensors", "config.json"}
    models = {m["name"]: m for m in api.get("/api/base-models?batch=2&sequence=256").json()["data"]}
    tiny = models["tiny-llama"]
    assert tiny["source"] == "Hugging Face" and tiny["origin"] == f"{REPO}@main" and tiny["ready"]
    assert tiny["architecture"] == "llama" and tiny["licence"] == "apache-2.0"
    assert tiny["context_length"] == 1024 and tiny["parameters"] > 0
    assert tiny["fits"][0]["where"] == "RAM" and tiny["fits"][0]["fits"] is True
    assert "SmolLM2-135M-Instruct" in models
    assert "tiny-llama" in [m["id"] for m in api.get("/v1/models").json()["data"]]


def test_the_api_answers_a_gated_repo_and_a_full_disk_in_words(api, hub, monkeypatch):
    hub.token = "hf_secret"
    refused = api.post("/api/base-models", json={"source": {"kind": "hf", "repo": REPO}})
    assert refused.status_code == 403
    assert refused.json()["code"] == "hub_token_needed" and "access token" in refused.json()["detail"]
    monkeypatch.setattr(hub_module, "free_bytes", lambda path: 10)
    full = api.post("/api/base-models", json={"source": {"kind": "hf", "repo": REPO, "token": "hf_secret"}})
    assert full.status_code == 400 and full.json()["code"] == "disk_full"


def test_the_api_adds_a_directory_and_deletes_it_only_with_maintenance_on(api, tiny_dir):
    added = api.post("/api/base-models", json={"source": {"kind": "directory", "path": str(tiny_dir)}, "name": "d1"})
    assert added.status_code == 201, added.text
    assert added.json()["facts"]["architecture"] == "llama"
    assert api.delete("/api/base-models/d1").status_code == 403
    api.put("/api/settings/maintenance", json={"enabled": True})
    assert api.delete("/api/base-models/d1").json()["deleted"] is True
    assert api.delete("/api/base-models/d1").status_code == 404
    assert api.get("/api/base-models/downloads/nothing").status_code == 404


def test_a_download_can_be_cancelled_over_the_api(api, hub):
    hub.hold.add("model.safetensors")
    api.post("/api/base-models", json={"source": {"kind": "hf", "repo": REPO}, "name": "held"})
    assert hub.held.wait(30)
    assert api.post("/api/base-models/downloads/held/cancel").status_code == 200
    assert _finished(api, "held")["status"] == "cancelled"
    hub.release.set()


def test_the_add_page_has_three_forms_and_follows_a_download(client, hub):
    page = client.get("/models/add")
    assert page.status_code == 200
    for action in ("/models/add/hub", "/models/add/directory", "/models/add/gguf"):
        assert f'action="{action}"' in page.text
    assert hub.url in page.text
    posted = client.post("/models/add/hub", data={"repo": REPO, "revision": "main"}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"].startswith("/models/add?download=tiny-llama")
    wait_for(lambda: "badge ok" in client.get("/models/downloads/tiny-llama", headers={"HX-Request": "true"}).text)
    fragment = client.get("/models/downloads/tiny-llama", headers={"HX-Request": "true"}).text
    assert 'id="download-tiny-llama"' in fragment and "<html" not in fragment
    assert 'hx-trigger="every 1s"' not in fragment  # a finished download stops polling
    listing = client.get("/models/base")
    assert 'id="base-tiny-llama"' in listing.text and "apache-2.0" in listing.text and "<td>llama</td>" in listing.text
    assert 'href="/models/add"' in client.get("/models").text


def test_a_form_error_comes_back_as_a_message(client, tmp_path):
    refused = client.post(
        "/models/add/directory", data={"path": str(tmp_path)}, headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert refused.status_code == 400
    assert "It has no config.json." in refused.text


def test_the_add_page_says_downloads_are_off_in_offline_mode(tmp_path):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.tables.migrate import upgrade
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "data", hf_hub_offline=True)
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        page = client.get("/models/add").text
    assert "Downloads are off on this server" in page and 'action="/models/add/hub"' not in page
