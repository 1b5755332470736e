"""Twitter2015 and Sarcasm image-text pairs as datasets of mappings.

Layouts (under ``root``):

* Twitter2015: ``annotations/{train,dev,test}.tsv`` (tab-separated with a header naming the
  columns ``Label``, ``String`` and ``ImageID``; ``#1 Label``-style names are accepted, and so is
  the public TomBERT ``test.tsv`` whose header ``index  #1 ImageID  #2 String  #2 String`` names
  4 of its 5 fields, the label second) and ``twitter2015_images/<ImageID>``. Text is
  lower-cased, stripped of punctuation and cut to 20 words; BERT sequences are 30 tokens. A
  tweet holding the ``$T$`` placeholder with a second ``String`` column (the aspect target) gets
  the target put back in.
* Sarcasm: ``annotations/{train_data,test_data}.json`` and the optional ``valid_data.json``,
  each a list of ``{"image": path, "text": str, "label": int}``, images at
  ``images/<basename of path>``. Text is cut to 50 words; training images get
  RandomResizedCrop(224, scale 0.5-1), a flip and RandAugment-style ops.

Every image is ImageNet-normalised. ``official=True`` (``--preset official``) gives the released
pipelines instead (:data:`PIPELINES`; :func:`read_split` reads the ``.tsv`` files with pandas'
quoting, as the released code): Twitter2015 text by
:func:`~examples.imtext.text.released_twitter_text` (``$T$`` kept as ``t``), not truncated
(padded to the longest text), images unnormalised; Sarcasm text by
:func:`~examples.imtext.text.pre_caption`, bicubic resizes, CLIP's statistics and the released
``RandomAugment(2, 7)``. Items: ``{"image": float32 (3, S, S), "input_ids": int64 (L,),
"attention_mask": int64 (L,), "target": int64, "index": int64}``; texts are tokenised once.
Training augmentation draws from a generator seeded by ``(seed, epoch, index)`` (call
``set_epoch``; the training loop does), so items do not depend on the DataLoader workers.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from examples.common.textfiles import numbered_rows, read_utf8
from examples.imtext.text import clean_text, pre_caption, released_twitter_text
from examples.vision.randaugment import ReleasedRandAugment
from examples.vision.transforms import CLIP, IMAGENET, EvalImage, Stats, TrainImage, item_generator

__all__ = [
    "DATASETS",
    "PIPELINES",
    "ImageTextDataset",
    "ImageTextSpec",
    "Pipeline",
    "Record",
    "clean_text",
    "read_sarcasm",
    "read_split",
    "read_twitter2015",
]


@dataclass(frozen=True)
class Record:
    """One pair: the image file, the raw text, the 0-based label and, for Twitter2015, the
    aspect target that the text's ``$T$`` placeholder stands for (``""``: none)."""

    image: Path
    text: str
    label: int
    target: str = ""

    def filled(self) -> str:
        """The text with ``$T$`` replaced by the target (the text itself without a target)."""
        return self.text.replace("$T$", self.target) if self.target else self.text


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


@dataclass(frozen=True)
class Pipeline:
    """How a dataset's pairs become model inputs (ours, or the released code's).

    ``text``: record -> cleaned text; ``truncate``: pad and cut to ``max_length`` tokens (else
    no truncation, padded to the longest text); ``resample``/``stats``: image resizing and
    normalisation; ``released_augment``: the released ``RandomAugment(2, 7)`` instead of ours.
    """

    text: Callable[[Record, ImageTextSpec], str]
    truncate: bool = True
    resample: Image.Resampling = Image.Resampling.BILINEAR
    stats: Stats = IMAGENET
    released_augment: bool = False


def _our_text(r: Record, spec: ImageTextSpec) -> str:
    return clean_text(r.filled(), spec.max_words, strip_punctuation=spec.strip_punctuation)


#: ``(dataset, official)`` -> its pipeline; ``official`` is ``--preset official``.
PIPELINES: dict[tuple[str, bool], Pipeline] = {
    ("twitter2015", False): Pipeline(_our_text),
    ("sarcasm", False): Pipeline(_our_text),
    ("twitter2015", True): Pipeline(
        lambda r, spec: released_twitter_text(r.text, spec.max_words), truncate=False, stats=None
    ),
    ("sarcasm", True): Pipeline(
        lambda r, spec: pre_caption(r.text, spec.max_words),
        truncate=False,
        resample=Image.Resampling.BICUBIC,
        stats=CLIP,
        released_augment=True,
    ),
}


def _name(column: str) -> str:
    return column.split(" ")[-1].strip()


def _column(header: Sequence[str], name: str, path: Path) -> list[int]:
    """Positions of the columns called ``name`` (ignoring a ``#<n> `` prefix)."""
    found = [i for i, h in enumerate(header) if _name(h) == name]
    if not found:
        raise ValueError(
            f"{path} line 1: column {name!r} not found in the header {list(header)}; expected a "
            "header naming the columns Label, ImageID and String (e.g. 'index  #1 Label  "
            "#2 ImageID  #3 String  #3 String', tab-separated)"
        )
    return found


def _twitter_header(header: list[str], body: list[list[str]]) -> list[str]:
    """The header, with the label column TomBERT's public ``test.tsv`` leaves unnamed put back.

    That file's header names 4 columns (``index``, ``#1 ImageID``, ``#2 String``, ``#2 String``)
    over rows of 5 fields: index, label, image id, text, target. Recognised when most rows have
    5 fields, so that a malformed row is then refused naming its line.
    """
    names = [_name(h) for h in header]
    tombert = ["index", "ImageID", "String", "String"]
    if names == tombert and 2 * sum(len(row) == len(header) + 1 for row in body) > len(body):
        return [header[0], "Label", *header[1:]]
    return header


def _ends_inside_quotes(text: str) -> bool:
    """Whether ``text``, read with a quote character ``"`` that opens a quoted field only at
    the start of a field (``""`` inside is one quote), ends inside a quoted field."""
    quoted = closed = False
    start = True
    for c in text:
        if quoted:
            quoted, closed = c != '"', c == '"'
        elif closed and c == '"':  # a doubled quote inside the field
            quoted, closed = True, False
        else:
            closed = False
            quoted = start and c == '"'
            start = c in "\t\r\n"
    return quoted


def _tsv_rows(path: Path, quoted: bool) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of the tab-separated rows of ``path`` (UTF-8, a byte-order mark
    skipped, empty lines dropped; the number is the line a row starts on).

    ``quoted``: pandas' ``read_csv(sep='\\t')`` convention, as the released code reads the
    files: a field that *starts* with ``"`` is quoted (tabs and line breaks inside it belong to
    it, ``""`` is one quote, the quotes are removed, what follows the closing quote is kept); a
    file that ends inside a quoted field raises, as pandas does. Else no quoting: every
    character is text."""
    text = read_utf8(path)
    if quoted and _ends_inside_quotes(text):
        raise ValueError(
            f'{path}: a field opened with a quote character (") is never closed; pandas, which '
            "the released code reads the file with, refuses it (EOF inside string)"
        )
    lines = io.StringIO(text, newline="")
    if quoted:
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
    else:
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return numbered_rows(reader)


def read_twitter2015(root: str | Path, file: str, *, quoted: bool = False) -> list[Record]:
    """The rows of ``root/annotations/<file>`` (a Twitter2015 ``.tsv``); ``quoted``: pandas'
    quoting, as the released code (``--preset official``, see :func:`_tsv_rows`)."""
    root = Path(root)
    path = root / "annotations" / file
    rows = _tsv_rows(path, quoted)
    if not rows:
        raise ValueError(f"{path} is empty")
    body = rows[1:]
    header = _twitter_header(rows[0][1], [row for _, row in body])
    label, image = _column(header, "Label", path)[0], _column(header, "ImageID", path)[0]
    text_cols = _column(header, "String", path)
    records = []
    for n, row in body:
        if len(row) != len(header):
            raise ValueError(
                f"{path} line {n}: {len(row)} tab-separated fields, expected {len(header)} "
                f"(the header's {header})"
            )
        try:
            value = int(row[label])
        except ValueError:
            value = -1
        if not 0 <= value < DATASETS["twitter2015"].num_classes:
            raise ValueError(
                f"{path} line {n}: label {row[label]!r} (column {label + 1}), expected 0, 1 or 2 "
                "(negative, neutral, positive)"
            )
        target = row[text_cols[1]] if len(text_cols) > 1 else ""
        records.append(
            Record(root / "twitter2015_images" / row[image], row[text_cols[0]], value, target)
        )
    if not records:
        raise ValueError(f"{path} holds a header and no row")
    unfilled = [r for r in records if "$T$" in r.text and not r.target]
    if unfilled:  # ours would read the placeholder as the word "t"
        warnings.warn(
            f"{path}: {len(unfilled)} of {len(records)} tweets hold the $T$ placeholder with no "
            f"aspect target to put back (no second String column, or an empty one), e.g. "
            f"{unfilled[0].text!r}: their $T$ is read as the word 't'",
            stacklevel=2,
        )
    return records


def _sarcasm_label(value: object) -> int:
    """An entry's label: an integer, a whole float (``1.0``), or a string or a bool of one
    (``int()``, as the released code); -1 for anything else, which the caller refuses."""
    if isinstance(value, bool | int) or (isinstance(value, float) and value.is_integer()):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return -1


def read_sarcasm(root: str | Path, file: str, *, quoted: bool = False) -> list[Record]:
    """The entries of ``root/annotations/<file>`` (a Sarcasm ``.json`` list; ``quoted`` is
    Twitter2015's and has no effect here). A byte-order mark is skipped; an entry that is not
    ``{"image": str, "text": str, "label": 0 or 1}`` is refused, naming its position."""
    root = Path(root)
    path = root / "annotations" / file
    shape = 'a JSON list of {"image": path, "text": str, "label": 0 or 1}'
    try:
        entries = json.loads(read_utf8(path))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not JSON ({err}); expected {shape} (the public release's text/*.txt "
            "lines, Python lists, must be converted to it)"
        ) from None
    if not isinstance(entries, list) or not entries:
        got = f"an empty {type(entries).__name__}" if not entries else type(entries).__name__
        raise ValueError(f"{path}: {got}, expected {shape}")
    records = []
    for n, e in enumerate(entries):
        ok = isinstance(e, dict) and isinstance(e.get("image"), str) and e["image"]
        if not (ok and isinstance(e.get("text"), str) and "label" in e):
            raise ValueError(f"{path} entry {n}: {e!r:.200}, expected {shape}")
        label = _sarcasm_label(e["label"])
        if label not in (0, 1):
            raise ValueError(f"{path} entry {n}: label {e['label']!r}, expected 0 or 1")
        records.append(Record(root / "images" / Path(e["image"]).name, e["text"], label))
    return records


_READERS: dict[str, Callable[..., list[Record]]] = {
    "twitter2015": read_twitter2015,
    "sarcasm": read_sarcasm,
}


def read_split(
    dataset: str, root: str | Path, split: str, *, official: bool = False
) -> list[Record] | None:
    """The records of ``split`` (``train``, ``val``, ``test``); None if optional and absent.

    ``official``: read as the released code (``--preset official``): Twitter2015's ``.tsv``
    with pandas' quoting (:func:`_tsv_rows`)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    spec = DATASETS[dataset]
    file = spec.splits[split]
    if split in spec.optional and not (Path(root) / "annotations" / file).is_file():
        return None
    return _READERS[dataset](root, file, quoted=official)


class ImageTextDataset(Dataset[dict[str, Tensor]]):
    """Image-text pairs, texts cleaned and tokenised once (``tokenizer``: a Hugging Face one).

    ``train=True`` uses the dataset's training augmentation (Sarcasm), else a plain resize.
    ``image_size``/``max_length`` override the spec (tiny tests; ``max_length`` also truncates
    a pipeline that does not); ``seed`` seeds augmentation;
    ``official``: the released pipeline (:data:`PIPELINES`).
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
        official: bool = False,
    ) -> None:
        spec = DATASETS[dataset]
        pipe = PIPELINES[dataset, official]
        self.records = list(records)
        missing = [r.image for r in self.records if not r.image.is_file()]
        if missing:  # refused now, not at the first epoch that reads one
            raise FileNotFoundError(
                f"{dataset}: {len(missing)} of {len(self.records)} images not found, "
                f"e.g. {missing[0]}"
            )
        self.num_classes = spec.num_classes
        size = image_size or spec.image_size
        self.augment = train and spec.augment
        self.transform: EvalImage | TrainImage = EvalImage(
            size, resample=pipe.resample, stats=pipe.stats
        )
        if self.augment:
            policy = ReleasedRandAugment(2, 7) if pipe.released_augment else None
            self.transform = TrainImage(
                size, policy=policy, resample=pipe.resample, stats=pipe.stats
            )
        self.seed, self.epoch = seed, 0
        self.texts = [pipe.text(r, spec) for r in self.records]
        length = max_length or spec.max_length
        # Released (both datasets): padding="longest" without truncation (its max_length=30 is
        # inert);
        # padded to the longest text of the split, not of the batch (BERT masks the padding).
        # An explicit max_length cuts there in every pipeline.
        cut = {"padding": "max_length", "truncation": True, "max_length": length}
        whole = {"padding": "longest"}
        tokens = tokenizer(
            self.texts,
            **(cut if pipe.truncate or max_length is not None else whole),
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
