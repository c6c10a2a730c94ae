"""The bulk fixes through the dashboard and /api: the Fix panel, a preview, apply, the history and undo."""

from __future__ import annotations

from sqlmodel import Session

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example
from tests.integration.test_fixes import PII_ANSWER, chat


def seeded(engine) -> tuple[int, int]:
    with Session(engine) as session:
        dataset = create_dataset(session, "routes")
        spaced = add_example(session, dataset.id, chat("Hi  ", "Hello. "))
        add_example(session, dataset.id, chat("Mail me", PII_ANSWER))
        return dataset.id, spaced.id


def test_the_api_previews_applies_lists_and_undoes_a_fix(api, engine):
    dataset_id, _ = seeded(engine)
    listed = api.get(f"/api/datasets/{dataset_id}/fixes").json()
    assert {f["name"]: f["n_changed"] for f in listed} == {
        "tool_arguments": 0,
        "trailing_whitespace": 1,
        "mask_pii": 1,
        "near_duplicates": 0,
    }
    preview = api.get(f"/api/datasets/{dataset_id}/fixes/mask_pii").json()
    assert preview["n_changed"] == 1 and "jane.doe@acmecorp.io" not in str(preview)

    applied = api.post(f"/api/datasets/{dataset_id}/fixes/trailing_whitespace").json()
    assert applied["n_changed"] == 1 and applied["message"] == "Cut trailing whitespace in 1 example."
    [revision] = api.get(f"/api/datasets/{dataset_id}/revisions").json()
    assert revision["id"] == applied["revision_id"] and "before" not in revision

    undone = api.post(f"/api/datasets/{dataset_id}/revisions/{revision['id']}/undo")
    assert undone.status_code == 200 and undone.json()["revision"]["undone_at"]
    again = api.post(f"/api/datasets/{dataset_id}/revisions/{revision['id']}/undo")
    assert again.status_code == 409 and again.json()["code"] == "revision_undone"
    assert api.get(f"/api/datasets/{dataset_id}/fixes/nope").status_code == 404
    assert api.post(f"/api/datasets/{dataset_id}/fixes/mask_pii", json={"example_ids": [999]}).json()["n_changed"] == 0


def test_the_pages_show_the_panel_the_preview_and_the_history(client, engine):
    dataset_id, spaced_id = seeded(engine)
    panel = client.get(f"/datasets/{dataset_id}/fixes").text
    assert "Trailing whitespace" in panel and "Mask personal data" in panel and "Tool call arguments" not in panel
    preview = client.get(f"/datasets/{dataset_id}/fixes/mask_pii").text
    assert "This changes <strong>1</strong> of 2 examples" in preview
    assert "jane.doe@acmecorp.io" not in preview and "&lt;EMAIL&gt;" in preview
    assert 'id="sensitive-list"' in preview and "an e-mail address" in preview and "j•••@acmecorp.io" in preview

    done = client.post(f"/datasets/{dataset_id}/fixes/mask_pii", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/datasets/{dataset_id}"
    history = client.get(f"/datasets/{dataset_id}/revisions").text
    assert "Masked personal data and secrets in 1 example." in history and ">Undo</button>" in history

    sensitive = client.get(f"/examples/{spaced_id}/sensitive").text
    assert "Mask in this example" not in sensitive
    page = client.get(f"/datasets/{dataset_id}").text
    assert f'hx-get="/datasets/{dataset_id}/fixes"' in page and "revisions?panel=true" in page
