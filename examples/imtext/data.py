"""Twitter2015 and Sarcasm image-text pairs as datasets of mappings.

Layouts (under ``root``):

* Twitter2015: ``annotations/{train,dev,test}.tsv`` (tab-separated with a header naming the
  columns ``Label``, ``String`` and ``ImageID``; ``#1 Label``-style names are accepted) and
  ``twitter2015_images/<ImageID>``. Text is lower-cased, stripped of punctuation and cut to 20
  words; BERT sequences are 30 tokens. A tweet holding the ``$T$`` placeholder with a second
  ``String`` column (the aspect target) gets the target put back in.
* Sarcasm: ``annotations/{train_data,test_data}.json`` and the optional ``valid_data.json``,
  each a list of ``{"image": path, "text": str, "label": int}``, images at
  ``images/<basename of path>``. Text is cut to 50 words; training images get
  RandomResizedCrop(224, scale 0.5-1), a flip and RandAugment-style ops.

Every image is ImageNet-normalised (the released code feeds unnormalised images to an
ImageNet-pretrained ResNet50). Items: ``{"image": float32 (3, S, S), "input_ids": int64 (L,),
"attention_mask": int64 (L,), "target": int64, "index": int64}``; texts are tokenised once.
Training augmentation draws from a generator seeded by ``(seed, epoch, index)`` (call
``set_epoch``; the training loop does), so items do not depend on the DataLoader workers.
"""

from __future__ import annotations

import csv
import json
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from examples.vision.transforms import EvalImage, TrainImage, item_generator

__all__ = [
    "DATASETS",
    "ImageTextDataset",
    "ImageTextSpec",
    "Record",
    "clean_text",
    "read_sarcasm",
    "read_split",
    "read_twitter2015",
]


@dataclass(frozen=True)
class Record:
    """One pair: the image file, the raw text and the 0-based label."""

    image: Path
    text: str
    label: int


@dataclass(frozen=True)
class ImageTextSpec:
    """Per-dataset constants: classes, text cleaning, sequence length, image size, files."""

    num_classes: int
    max_words: int
    strip_punctuation: bool
    max_length: int
    image_size: int
    augment: bool
    splits: dict[str, str]  #: our split name -> file under ``annotations/``
    optional: tuple[str, ...] = ()  #: splits that may be absent


#: Dataset name -> spec. Sarcasm's 80-token length is ours (the notes fix only 50 words).
DATASETS: dict[str, ImageTextSpec] = {
    "twitter2015": ImageTextSpec(
        num_classes=3,
        max_words=20,
        strip_punctuation=True,
        max_length=30,
        image_size=384,
        augment=False,
        splits={"train": "train.tsv", "val": "dev.tsv", "test": "test.tsv"},
    ),
    "sarcasm": ImageTextSpec(
        num_classes=2,
        max_words=50,
        strip_punctuation=False,
        max_length=80,
        image_size=224,
        augment=True,
        splits={"train": "train_data.json", "val": "valid_data.json", "test": "test_data.json"},
        optional=("val",),
    ),
}

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def clean_text(text: str, max_words: int, *, strip_punctuation: bool = False) -> str:
    """Lower-case, optionally drop ASCII punctuation, keep the first ``max_words`` words.

    >>> clean_text("RT @user: What a GREAT day!!", 4, strip_punctuation=True)
    'rt user what a'
    """
    text = text.lower()
    if strip_punctuation:
        text = text.translate(_PUNCTUATION)
    return " ".join(text.split()[:max_words])


def _column(header: Sequence[str], name: str) -> list[int]:
    """Positions of the columns called ``name`` (ignoring a ``#<n> `` prefix)."""
    found = [i for i, h in enumerate(header) if h.split(" ")[-1].strip() == name]
    if not found:
        raise ValueError(f"column {name!r} not found in header {list(header)}")
    return found


def read_twitter2015(root: str | Path, file: str) -> list[Record]:
    """The rows of ``root/annotations/<file>`` (a Twitter2015 ``.tsv``)."""
    root = Path(root)
    path = root / "annotations" / file
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise ValueError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    label, image = _column(header, "Label")[0], _column(header, "ImageID")[0]
    text_cols = _column(header, "String")
    records = []
    for row in body:
        text = row[text_cols[0]]
        if len(text_cols) > 1 and "$T$" in text:
            text = text.replace("$T$", row[text_cols[1]])
        records.append(Record(root / "twitter2015_images" / row[image], text, int(row[label])))
    return records


def read_sarcasm(root: str | Path, file: str) -> list[Record]:
    """The entries of ``root/annotations/<file>`` (a Sarcasm ``.json`` list)."""
    root = Path(root)
    entries: list[dict[str, Any]] = json.loads((root / "annotations" / file).read_text("utf-8"))
    return [
        Record(root / "images" / Path(e["image"]).name, str(e["text"]), int(e["label"]))
        for e in entries
    ]


_READERS: dict[str, Callable[[str | Path, str], list[Record]]] = {
    "twitter2015": read_twitter2015,
    "sarcasm": read_sarcasm,
}


def read_split(dataset: str, root: str | Path, split: str) -> list[Record] | None:
    """The records of ``split`` (``train``, ``val``, ``test``); None if optional and absent."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    spec = DATASETS[dataset]
    file = spec.splits[split]
    if split in spec.optional and not (Path(root) / "annotations" / file).is_file():
        return None
    records = _READERS[dataset](root, file)
    for r in records:
        if not 0 <= r.label < spec.num_classes:
            raise ValueError(f"{dataset} label must lie in [0, {spec.num_classes - 1}], got {r}")
    return records


class ImageTextDataset(Dataset[dict[str, Tensor]]):
    """Image-text pairs, texts cleaned and tokenised once (``tokenizer``: a Hugging Face one).

    ``train=True`` uses the dataset's training augmentation (Sarcasm), else a plain resize.
    ``image_size``/``max_length`` override the spec (tiny tests); ``seed`` seeds augmentation.
    """

    def __init__(
        self,
        dataset: str,
        records: Sequence[Record],
        tokenizer: Any,
        *,
        train: bool = False,
        image_size: int | None = None,
        max_length: int | None = None,
        seed: int = 0,
    ) -> None:
        spec = DATASETS[dataset]
        self.records = list(records)
        self.num_classes = spec.num_classes
        size = image_size or spec.image_size
        self.augment = train and spec.augment
        self.transform = TrainImage(size) if self.augment else EvalImage(size)
        self.seed, self.epoch = seed, 0
        texts = [
            clean_text(r.text, spec.max_words, strip_punctuation=spec.strip_punctuation)
            for r in self.records
        ]
        tokens = tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=max_length or spec.max_length,
            return_tensors="pt",
        )
        self.input_ids: Tensor = tokens["input_ids"].long()
        self.attention_mask: Tensor = tokens["attention_mask"].long()
        self.targets = torch.tensor([r.label for r in self.records], dtype=torch.long)

    def set_epoch(self, epoch: int) -> None:
        """Select the training augmentations of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        gen = item_generator(self.seed, self.epoch, i) if self.augment else None
        with Image.open(self.records[i].image) as img:
            image = self.transform(img, gen)
        return {
            "image": image,
            "input_ids": self.input_ids[i],
            "attention_mask": self.attention_mask[i],
            "target": self.targets[i],
            "index": torch.tensor(i),
        }
