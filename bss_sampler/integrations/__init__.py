"""BSS in training frameworks: one submodule per framework, each an optional extra.

* `bss_sampler.integrations.lightning`: a Lightning ``Callback`` and the ``Trainer`` settings it
  needs (``pip install "bss-sampler[lightning]"``).
* `bss_sampler.integrations.accelerate`: a prepared loader that resumes exactly under
  ``save_state``/``load_state`` (``pip install "bss-sampler[accelerate]"``).
* `bss_sampler.integrations.transformers`: a Hugging Face ``Trainer`` with a BSS sampler and a
  ``TrainerCallback`` that re-scores and checkpoints it (``pip install transformers accelerate``).

Importing this package imports none of the frameworks; each submodule imports its own when it is
imported. `scoring_loader` (torch only) builds the per-rank loader ``update_scores`` needs.
"""

from ._common import scoring_loader

__all__ = ["scoring_loader"]
