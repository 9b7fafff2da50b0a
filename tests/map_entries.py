"""Map entries the pricing tests need, for the oldest supported litellm (1.98) whose bundled map lacks them."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

# What each test needs of litellm 1.110.2's bundled map, for an older supported litellm (1.98) whose map lacks it:
# gpt-5's batch prices, Vertex AI's regional uplift, DeepSeek's off-peak hours and Gemini's cached-audio prices
# came in later releases.
NEWER_MAP: dict[str, dict[str, Any]] = {
    "gemini/gemini-3.1-flash-lite": {
        "cache_read_input_audio_token_cost": 5e-08,
        "cache_read_input_audio_token_cost_batches": 2.5e-08,
        "cache_read_input_audio_token_cost_flex": 2.5e-08,
        "cache_read_input_audio_token_cost_priority": 9e-08,
        "cache_read_input_token_cost_batches": 1.25e-08,
    },
    "gpt-5": {
        "cache_read_input_token_cost_batches": 6.25e-08,
        "input_cost_per_token_batches": 6.25e-07,
        "output_cost_per_token_batches": 5e-06,
    },
    "vertex_ai/gemini-3.5-flash": {"regional_endpoint_uplift_multiplier": 1.1},
    "deepseek/deepseek-flash": {
        "cache_read_input_token_cost": 6e-09,
        "input_cost_per_token": 3e-07,
        "litellm_provider": "deepseek",
        "mode": "chat",
        "off_peak_pricing": {
            "cache_read_input_token_cost": 3e-09,
            "input_cost_per_token": 1.5e-07,
            "output_cost_per_token": 6e-07,
            "windows": [
                {"hours_utc": ["00:00-01:00", "04:00-06:00", "10:00-00:00"], "weekdays": [1, 2, 3, 4, 5]},
                {"hours_utc": "00:00-00:00", "weekdays": [6, 7]},
            ],
        },
        "output_cost_per_token": 1.2e-06,
    },
}


def needs(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """Make sure the installed map has what ``NEWER_MAP`` says of ``model`` (it has, from litellm 1.110 on)."""
    entry = litellm.model_cost.get(model, {})
    if any(key not in entry for key in NEWER_MAP[model]):
        monkeypatch.setitem(litellm.model_cost, model, {**entry, **NEWER_MAP[model]})
