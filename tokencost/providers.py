"""Which provider a model name belongs to, as litellm names them in events."""

from __future__ import annotations

from typing import Any

from tokencost.pricing.litellm_map import model_info

__all__ = ["BILLED_BY_RESPONSE_MODEL", "billed_model", "provider_of", "split_model"]

_PROVIDERS: dict[str, str] = {}  # model -> provider, remembered (bounded)
_SPLITS: dict[tuple[str, str | None], tuple[str, str]] = {}  # (model, provider) -> split_model's answer (bounded)
# Providers where the requested name is a deployment the user named, and the response says which model ran.
BILLED_BY_RESPONSE_MODEL = frozenset({"azure", "azure_openai", "azure_ai"})


def provider_of(model: str) -> str:
    """Return the provider a model name implies (its prefix, else litellm's map), remembered per model."""
    provider = _PROVIDERS.get(model)
    if provider is None:
        if "/" in model:
            provider = model.split("/", 1)[0]
        else:
            info = model_info(model, None)
            found = info.get("litellm_provider") if info else None
            provider = found if isinstance(found, str) else "unknown"
        if len(_PROVIDERS) < 10_000:
            _PROVIDERS[model] = provider
    return provider


def split_model(model: str, provider: Any = None) -> tuple[str, str]:
    """Return (model, provider) as litellm names them in events: ``openai/gpt-4o`` -> (``gpt-4o``, ``openai``).

    Remembered per (model, provider): a strict or per-model budget asks for every call before it is sent.
    """
    key = (model, provider or None) if isinstance(provider, (str, type(None))) else None
    split = _SPLITS.get(key) if key is not None else None
    if split is None:
        import litellm

        try:
            name, found, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=provider or None)
            split = str(name), str(found)
        except Exception:  # litellm does not know it: keep the name as given
            split = model, str(provider) if provider else provider_of(model)
        if key is not None and len(_SPLITS) < 10_000:
            _SPLITS[key] = split
    return split


def billed_model(provider: str, requested: str, reported: Any = None, base_model: Any = None) -> str:
    """Return the model a call is priced as.

    ``base_model`` (litellm's ``base_model`` / ``model_info.base_model`` setting, or the caller's) wins; for Azure
    the model the response says ran (``response.model``, e.g. ``gpt-4o-2024-05-13``), not the deployment's name;
    else the requested model.
    """
    if isinstance(base_model, str) and base_model:
        return base_model
    if provider in BILLED_BY_RESPONSE_MODEL and isinstance(reported, str) and reported:
        return reported
    return requested
