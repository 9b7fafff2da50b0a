"""The tracker litellm's proxy loads (config.yaml: ``litellm_settings: callbacks: custom_callbacks.tracker``).

One ``CostTracker`` for the proxy process. ``TOKENCOST_STORE`` and ``TOKENCOST_BUDGET`` (USD) override the
defaults below; a ``redis://host:6379/0`` store shares one ledger and budget between several proxies.
The SQLite file is relative to the folder the proxy runs in; ``tokencost report`` run there (same default, and
the same ``TOKENCOST_STORE``) reads the ledger while the proxy runs, or after.
"""

import os

from tokencost import CostTracker

tracker = CostTracker(
    store=os.environ.get("TOKENCOST_STORE", "sqlite:///tokencost.db"),
    budget=os.environ.get("TOKENCOST_BUDGET", "5"),
)
