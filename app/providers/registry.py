"""Provider name → class. The only place that knows which providers exist.

Importing the provider modules is cheap: each loads its SDK (openai) or engine (torch, in a subprocess) only when
a job or a chat needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from app.config import Settings
from app.errors import Invalid
from app.providers.base import Provider
from app.providers.local import LocalProvider
from app.providers.openai import OpenAIProvider

PROVIDERS: Mapping[str, type[Provider]] = MappingProxyType({"local": LocalProvider, "openai": OpenAIProvider})


def provider_names() -> list[str]:
    """Every provider name."""
    return list(PROVIDERS)


def provider_class(name: str) -> type[Provider]:
    """The class of the provider called name; Invalid when there is none."""
    cls = PROVIDERS.get(name)
    if cls is None:
        raise Invalid(f"Unknown provider {name!r}; choose one of: {', '.join(PROVIDERS)}.", param="provider")
    return cls


def get_provider(name: str, settings: Settings, **options: Any) -> Provider:
    """A ready provider instance. Options go to its constructor (e.g. `api_key`, `engine`, retry delays)."""
    return provider_class(name)(settings, **options)
