"""The providers Parley speaks to, by name. ``get(name)`` imports one on first use."""

from __future__ import annotations

import importlib

from sessions_app.providers.base import Provider

MODULES = {
    "simulator": "sessions_app.providers.simulator",
    "cloud_api": "sessions_app.providers.cloud_api",
    "evolution": "sessions_app.providers.evolution",
    "gowa": "sessions_app.providers.gowa",
}


def get(name: str) -> type[Provider]:
    """The provider class registered as ``name`` (``KeyError`` for an unknown one)."""
    module = importlib.import_module(MODULES[name])
    return module.PROVIDER


def names() -> list[str]:
    return list(MODULES)
