"""Provider name → class. The only place that knows which providers exist; SDKs load lazily behind it."""

from __future__ import annotations

import importlib
from typing import Any

from app.config import Settings
from app.errors import Invalid
from app.providers.base import Provider

# Module paths, not classes: importing app.providers.openai pulls in the SDK, which the server should not pay
# for at start.
_PROVIDERS: dict[str, str | type[Provider]] = {
    "local": "app.providers.local:LocalProvider",
    "openai": "app.providers.openai:OpenAIProvider",
}


def provider_names() -> list[str]:
    """Every registered provider name."""
    return list(_PROVIDERS)


def register_provider(name: str, cls: type[Provider] | str) -> None:
    """Add or replace a provider (tests register fakes this way)."""
    _PROVIDERS[name] = cls


def provider_class(name: str) -> type[Provider]:
    """The class registered under name; Invalid when there is none."""
    target = _PROVIDERS.get(name)
    if target is None:
        raise Invalid(f"Unknown provider {name!r}; choose one of: {', '.join(_PROVIDERS)}.", param="provider")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
        _PROVIDERS[name] = target
    return target


def get_provider(name: str, settings: Settings, **options: Any) -> Provider:
    """A ready provider instance. Options go to its constructor (e.g. `api_key`, `engine`, retry delays)."""
    return provider_class(name)(settings, **options)
