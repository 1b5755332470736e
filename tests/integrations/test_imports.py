"""The frameworks are optional: importing the package (integrations included) imports none."""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("lightning", "pytorch_lightning", "accelerate", "transformers", "torchdata")


def test_importing_bss_sampler_imports_no_framework() -> None:
    code = (
        "import json, sys\n"
        "import bss_sampler, bss_sampler.integrations, bss_sampler.integrations.accelerate\n"
        f"print(json.dumps([m for m in {FRAMEWORKS!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []
