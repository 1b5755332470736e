"""What ``--preset official`` sets in the examples, per dataset, beyond the sampler's preset.

The library's ``preset="official"`` covers what every released script shares (pacing at
``epoch + 1``, re-scoring every epoch, no EMA, linear probabilities, train-mode scoring). The
released scripts (github: njustkmg/IJCAI25-BSS) also differ per dataset, and their loaders drop
the last incomplete batch; those choices live here and apply to the example scripts only:

* loss weights ``(w_multi, w_uni)`` of ``w_multi CE_multi + w_uni sum_m CE_m``, used for the
  training loss and the balance scores: CREMA-D ``(0.1, 0.9)``, every other dataset the
  unweighted sum ``(1, 1)``. The scores are min-max normalised, which is scale-free, so the
  released scores are exactly those of Eq. 5 with ``alpha = w_uni / (w_multi + w_uni)``: 0.9
  for CREMA-D, 0.5 for the others. The training loss keeps the released scale (the unweighted
  sum is twice Eq. 5 at ``alpha = 0.5``, which matters to SGD).
* ``drop_last=True`` on the training loader.
* the scoring pass sees the training augmentations; NVGesture's scores one clip at a time
  (``score_batch_size=1``: in train mode BatchNorm then uses each clip's own statistics).
* the audio-video and NVGesture heads start as the released ``weight_init`` sets them
  (``head_init="xavier"``: Xavier-normal weights, zero biases).
* Twitter2015's learned script scores in eval mode (every other script: train mode).
* what the loaders feed and what the models are (``data`` and ``model`` of :class:`ReleasedScript`,
  set as ``args.data_options`` and ``args.model_options``): VGGSound's clip ids read without
  their first character and clips of more than 3 frames; every audio-video loader's frames
  (the first entries of the unsorted folder listing); CREMA-D's 20 copies of a clip at most;
  Kinetics-Sounds' crop and flip drawn per frame and its class ids in first-seen order;
  NVGesture's BGR colour, raw flow (every stored frame), depth in [0, 1], zero-padded
  short clips, the I3D pooling ``AvgPool3d((8, 7, 7))`` and the depth I3D's first convolution
  left at random initialisation. ``docs/presets.md`` measures each. Twitter2015's and
  Sarcasm's released inputs and models (text cleaning, image statistics, augmentation, heads)
  are whole pipelines, chosen by ``image_text.py`` from ``--preset`` itself
  (``examples.imtext.data.PIPELINES``, ``build_image_text_model(official=True)``).

Flags given explicitly win: ``--alpha`` (Eq. 5 with that ``alpha`` for training and scoring),
``--no-drop-last``, ``--no-score-augmented``, ``--score-train-mode``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PAPER_ALPHA", "RELEASED", "ReleasedScript", "released_script", "resolve_preset"]

#: Paper Eq. 5's ``alpha`` (Section 4, implementation details).
PAPER_ALPHA = 0.2


@dataclass(frozen=True)
class ReleasedScript:
    """One dataset's released scripts, where they differ from the other datasets'."""

    #: ``(w_multi, w_uni)``: the released loss ``w_multi CE_multi + w_uni sum_m CE_m``.
    loss_weights: tuple[float, float] = (1.0, 1.0)
    #: Whether the learning-based script scores in train mode.
    learned_train_mode: bool = True
    #: How the heads start: ``default`` (``nn.Linear``'s) or ``xavier`` (the released
    #: ``weight_init``: ``xavier_normal_`` weights, zero biases; `models.xavier_heads`).
    head_init: str = "default"
    #: The scoring pass's batch size, where the released scripts fix one (``None``: the
    #: evaluation batch size); a script with ``--score-batch-size`` takes it as its default.
    score_batch_size: int | None = None
    #: The released model's number of outputs, where it is fixed in the model rather than read
    #: from the data (``None``: the dataset's classes); a class id beyond it is refused.
    head_classes: int | None = None
    #: What the released loader does differently: keyword arguments of the dataset's loader
    #: (``examples.av.datasets.vggsound`` / ``kinetics_sounds``; NVGesture: fields of
    #: ``examples.gesture.data.ClipSpec``).
    data: Mapping[str, Any] = field(default_factory=dict)
    #: What the released model does differently: modality -> keyword arguments of its encoder
    #: (NVGesture: ``examples.vision.i3d.I3D``).
    model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def alpha(self) -> float:
        """The Eq. 5 ``alpha`` whose min-max normalised scores equal the released ones."""
        multi, uni = self.loss_weights
        return uni / (multi + uni)


#: ``--dataset`` -> its released scripts. A dataset not listed (the quickstart's) gets the
#: convention of five of the six scripts: ``ReleasedScript()``.
RELEASED: dict[str, ReleasedScript] = {
    # Every audio-video loader reads the first frames of the unsorted ``os.listdir`` (ours: the
    # sorted listing, evenly spaced at test time, a seeded draw when training).
    # CREMA-D tiles at most 20 copies of a clip (``np.tile(samples, 20)``; ours: to 20 s).
    "cremad": ReleasedScript(
        loss_weights=(0.1, 0.9),
        head_init="xavier",
        data={"frame_choice": "listdir", "audio_repeats": 20},
    ),
    # A crop and a flip drawn for each of the 3 frames (ours: one per clip); class ids in the
    # order the classes first appear among the training clips found (ours: sorted names).
    "ks": ReleasedScript(
        head_init="xavier",
        head_classes=31,  # KS/models/basic_model.py: n_classes = 31
        data={"frame_augment": "frame", "frame_choice": "listdir", "class_order": "first_seen"},
    ),
    # Clip ids read as ``item[2][1:]``, clips with more than 3 frames (ours: auto-detected ids,
    # 1 frame or more).
    "vggsound": ReleasedScript(
        head_init="xavier",
        head_classes=310,  # VGGSound/models/basic_model.py: n_classes = 310 (309 classes)
        data={"clip_ids": "released", "min_frames": 4, "frame_choice": "listdir"},
    ),
    "twitter2015": ReleasedScript(learned_train_mode=False),
    "sarcasm": ReleasedScript(),
    # OpenCV's BGR frames under RGB statistics, raw flow (every stored frame), depth in [0, 1],
    # black frames after a short clip; I3D pooled by AvgPool3d((8, 7, 7)) (the first 8 of 10
    # temporal cells of an 80-frame clip), the depth I3D's first convolution never loaded.
    # Scored one clip at a time (batch_size=1, train mode), heads initialised by weight_init.
    "nvgesture": ReleasedScript(
        head_init="xavier",
        score_batch_size=1,
        data={"colour": "bgr", "flow": "raw", "depth": "unit", "pad": "zeros"},
        model={
            "rgb": {"pool": "released"},
            "flow": {"pool": "released"},
            "depth": {"pool": "released", "random_init": ("Conv3d_1a_7x7.conv3d.weight",)},
        },
    ),
}


def released_script(dataset: str | None) -> ReleasedScript:
    """The released scripts of ``dataset`` (the common convention when it has none)."""
    return RELEASED.get(dataset or "", ReleasedScript())


def resolve_preset(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` with the flags left unset (``None``) filled in from ``--preset``.

    ``paper``: ``alpha`` 0.2, Eq. 5 training loss (``loss_weights = (1 - alpha, alpha)``), no
    ``drop_last``, unaugmented scoring.
    ``official``: the released script of ``args.dataset`` (see the module docstring). Flags
    already set are kept, so resolving twice changes nothing.

    Sets ``head_classes``, ``head_init``, ``data_options`` and ``model_options`` (when
    unset): the released script's under ``official``; ``None``, ``default`` and empty (our
    heads, loaders and models) under ``paper``.
    """
    out = argparse.Namespace(**vars(args))
    official = out.preset == "official"
    script = released_script(getattr(out, "dataset", None))
    explicit_alpha = out.alpha is not None
    if out.alpha is None:
        out.alpha = script.alpha if official else PAPER_ALPHA
    if getattr(out, "loss_weights", None) is None:
        released = official and not explicit_alpha
        out.loss_weights = script.loss_weights if released else (1.0 - out.alpha, out.alpha)
    if out.drop_last is None:
        out.drop_last = official
    if getattr(out, "score_augmented", False) is None:
        out.score_augmented = official
    if getattr(out, "score_batch_size", False) is None:  # the scripts with the flag
        out.score_batch_size = script.score_batch_size if official else None
    if getattr(out, "head_classes", None) is None:
        out.head_classes = script.head_classes if official else None
    if getattr(out, "head_init", None) is None:
        out.head_init = script.head_init if official else "default"
    if getattr(out, "data_options", None) is None:
        out.data_options = dict(script.data) if official else {}
    if getattr(out, "model_options", None) is None:
        out.model_options = {k: dict(v) for k, v in script.model.items()} if official else {}
    learned = out.sampler == "learned"
    if out.score_train_mode is None and official and learned and not script.learned_train_mode:
        out.score_train_mode = False  # else None: the sampler preset's (official: train mode)
    return out
