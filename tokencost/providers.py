"""Which provider a model name belongs to, as litellm names them in events."""

from __future__ import annotations

from typing import Any

from tokencost.pricing.litellm_map import model_info

__all__ = ["provider_of", "split_model"]

_PROVIDERS: dict[str, str] = {}  # model -> provider, remembered (bounded)


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
    """Return (model, provider) as litellm names them in events: ``openai/gpt-4o`` -> (``gpt-4o``, ``openai``)."""
    import litellm

    try:
        name, found, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=provider or None)
        return str(name), str(found)
    except Exception:  # litellm does not know it: keep the name as given
        return model, str(provider) if provider else provider_of(model)
