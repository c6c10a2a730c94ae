"""The model catalog offers OpenAI's base chat models only when an OpenAI key is configured."""

from app.jobs.model_catalog import list_models, resolve_model
from app.settings import store as app_settings


def test_openai_base_models_are_hidden_without_a_key(session, settings):
    kinds = {m.kind for m in list_models(session, settings)}
    assert "openai" not in kinds
    assert any(m.id == "SmolLM2-135M-Instruct" and m.kind == "base" for m in list_models(session, settings))


def test_a_key_saved_on_the_settings_page_offers_openai_models_for_chat(session, settings):
    app_settings.set_value(session, app_settings.OPENAI_API_KEY, "sk-test-1234")
    models = {m.id: m for m in list_models(session, settings)}
    assert models["gpt-4o-mini-2024-07-18"].kind == "openai"
    resolved = resolve_model(session, settings, "gpt-4o-mini-2024-07-18")
    assert resolved.provider == "openai" and resolved.ref == "gpt-4o-mini-2024-07-18"
