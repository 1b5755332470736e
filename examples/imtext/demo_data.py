"""Tiny Twitter2015 and Sarcasm datasets in the real layouts and a tiny local BERT, for
``image_text.py --demo``.

Each pair is a small noisy single-colour JPEG (colour set by the class) and a short text of
class words plus filler. :func:`make_tiny_bert` saves a randomly initialised 1-layer BERT with a
vocabulary covering those words, so the example runs with no download.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = [
    "CLASS_WORDS",
    "FILLER_WORDS",
    "make_image_text_demo_data",
    "make_tiny_bert",
    "write_jpeg",
]

#: Words of the texts: one list per class, then filler words.
CLASS_WORDS = [["awful", "sad"], ["okay", "plain"], ["great", "happy"]]
FILLER_WORDS = ["the", "a", "day", "photo", "of", "my", "cat", "rt", "user"]
_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_jpeg(path: Path, colour: tuple[int, int, int], rng: np.random.Generator) -> None:
    """A noisy single-colour 24x32 RGB JPEG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.array(colour) + rng.normal(0, 20, (24, 32, 3)), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _text(label: int, rng: np.random.Generator, words: int) -> str:
    pool = CLASS_WORDS[label] * 2 + FILLER_WORDS
    picked = [str(w) for w in rng.choice(pool, size=words)]
    return " ".join(picked).capitalize() + "!"


def _pairs(num_classes: int, per_class: int) -> list[int]:
    return [c for c in range(num_classes) for _ in range(per_class)]


def _twitter2015(root: Path, per_class: int, rng: np.random.Generator) -> None:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        lines = ["index\t#1 Label\t#2 ImageID\t#3 String\t#3 String"]
        for i, label in enumerate(_pairs(3, per_class)):
            image = f"{split}_{i}.jpg"
            write_jpeg(root / "twitter2015_images" / image, _colour(label), rng)
            text = _text(label, rng, 6).replace("the", "$T$", 1)
            lines.append(f"{i}\t{label}\t{image}\t{text}\tthe")
        (root / "annotations" / f"{split}.tsv").write_text("\n".join(lines) + "\n")


def _sarcasm(root: Path, per_class: int, rng: np.random.Generator) -> None:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train_data", "valid_data", "test_data"):
        entries = []
        for i, label in enumerate(_pairs(2, per_class)):
            image = f"{split}_{i}.jpg"
            write_jpeg(root / "images" / image, _colour(2 * label), rng)
            # The released files hold paths from the authors' machines; only the name is used.
            entry = {"image": f"/data/sarcasm/{image}", "text": _text(2 * label, rng, 8)}
            entries.append({**entry, "label": label})
        (root / "annotations" / f"{split}.json").write_text(json.dumps(entries))


def _colour(label: int) -> tuple[int, int, int]:
    return ((90 * label) % 256, 128, (255 - 80 * label) % 256)


def make_image_text_demo_data(
    kind: str, root: str | Path, *, per_class: int = 2, seed: int = 0
) -> Path:
    """Write a ``twitter2015`` (3 classes) or ``sarcasm`` (2 classes) dataset in ``root``."""
    writers = {"twitter2015": _twitter2015, "sarcasm": _sarcasm}
    if kind not in writers:
        raise ValueError(f"kind must be one of {sorted(writers)}, got {kind!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    writers[kind](root, per_class, np.random.default_rng(seed))
    return root


def make_tiny_bert(path: str | Path, *, hidden: int = 16, seed: int = 0) -> Path:
    """Save a random 1-layer BERT (``hidden`` wide) and its ``vocab.txt`` in ``path``."""
    import torch
    from transformers import BertConfig, BertModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    words = sorted({w for group in CLASS_WORDS for w in group} | set(FILLER_WORDS))
    vocab = [*_SPECIAL, "t", *words]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    return path
