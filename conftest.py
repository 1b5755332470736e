"""Collection for ``pytest --doctest-modules``: skip the integration modules whose framework is
not installed (the ``test`` extra has none of them), as their imports would fail."""

from __future__ import annotations

import importlib.util

collect_ignore = [
    f"bss_sampler/integrations/{module}.py"
    for module, package in (
        ("lightning", "lightning"),
        ("accelerate", "accelerate"),
        ("transformers", "transformers"),
    )
    if importlib.util.find_spec(package) is None
]
