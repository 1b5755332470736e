"""``image_text.py --preset official`` against the released pipelines, re-written here from their
documented parameters (issue 28, items 5, 6 and 8), on real photographs and realistic tweets.

The references below are written independently of the example's code, in OpenCV and numpy as
the released RandomAugment works on arrays (its sharpness casts float32 to ``uint8`` without
clipping: out-of-range values wrap around). Every op, resize and normalisation is exact: the
same grey levels (up to float rounding of the statistics).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")
pytest.importorskip("cv2")

import cv2

from examples.common.frames import random_resized_crop
from examples.imtext.data import ImageTextDataset, Record
from examples.imtext.demo_data import make_tiny_bert
from examples.imtext.models import build_image_text_model
from examples.imtext.text import pre_caption, released_twitter_text
from examples.vision.randaugment import Draw, ReleasedRandAugment
from examples.vision.transforms import item_generator

# -- the released parameters, as documented (docs/presets.md, issue 28) --------------------------
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])
LEVEL = 7 / 10  # RandomAugment(2, 7): level 7 of 10
ENHANCE = LEVEL * 1.8 + 0.1  # brightness, sharpness: 1.36
MAGNITUDE = {"shear_x": LEVEL * 0.3, "shear_y": LEVEL * 0.3, "translate_x": LEVEL * 10,
             "translate_y": LEVEL * 10, "rotate": LEVEL * 30}  # fmt: skip
GREY = (128, 128, 128)
SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13

#: Realistic tweets (Twitter2015 keeps the ``$T$`` placeholder and a target; the last is long).
TWEETS = [
    ("RT @NBCNews: $T$ wins the 2014 Nobel Peace Prize http://t.co/x7Zq9Lm", "Malala"),
    ("Can't believe #Apple did that... iPhone 6 bends?! #bendgate @tim_cook", "Apple"),
    ("$T$ fans outside Stamford Bridge after the 2-1 win vs t37 tonight", "Chelsea"),
    ("Happy 80th birthday to $T$ ! Still rocking at 80 :) http://t.co/abc123", "Leonard Cohen"),
    ("@jenny_k I'm so done w/ this weather -- snow in April?! #NotCool", "April"),
    ("Great... another Monday-morning \"meeting\" (yay!) w/ the boss :) #blessed", "Monday"),
    ("<PERSON> at the café: naïve_fans say $T$ is über-cool, 100% #win", "Zoë"),
    ("$T$ " + " ".join(["Supercalifragilistic", "Antidisestablishmentarianism",
     "Pneumonoultramicroscopic", "Floccinaucinihilipilification"] * 6), "Words"),
]  # fmt: skip


def ref_twitter_text(text: str) -> str:
    """Released Twitter2015 cleaning: of the maximal runs of (Unicode) word characters, those made
    of ASCII letters only, lower-cased, 20 at most (``@tim_cook``, ``t37``, ``café`` vanish)."""
    runs = re.findall(r"\w+", text)
    return " ".join([w.lower() for w in runs if w.isascii() and w.isalpha()][:20])


def ref_pre_caption(text: str) -> str:
    """Released Sarcasm cleaning: lower-case, delete ,.'!?"()*#:;~, split on - and /; whitespace
    runs of 2+ become a space, trailing newlines and outer spaces go; 50 space-separated words."""
    text = re.sub(r"[,.'!?\"()*#:;~]", "", text.lower()).replace("-", " ").replace("/", " ")
    text = re.sub(r"\s\s+", " ", text.replace("<person>", "person"))
    words = text.rstrip("\n").strip(" ").split(" ")
    return " ".join(words[:50])


def ref_op(a: np.ndarray, d: Draw) -> np.ndarray:
    """The released op ``d`` on an RGB uint8 array, in OpenCV and numpy."""
    h, w = a.shape[:2]
    m = d.magnitude
    if d.name == "identity":
        return a
    if d.name in ("autocontrast", "equalize"):
        out = a.copy()
        for c in range(3):
            x = a[..., c]
            if d.name == "autocontrast":  # stretch [min, max] to [0, 255]
                lo, hi = int(x.min()), int(x.max())
                if hi > lo:
                    scale = 255.0 / (hi - lo)
                    lut = np.clip(np.arange(256) * scale - lo * scale, 0, 255)
                    out[..., c] = lut.astype(np.uint8)[x]
            else:  # histogram equalisation: lut = (cumulative count + step / 2) / step
                hist = np.bincount(x.ravel(), minlength=256)
                used = hist[hist > 0]
                step = (used.sum() - used[-1]) // 255
                if len(used) > 1 and step:
                    before = np.concatenate([[0], np.cumsum(hist)[:-1]])
                    out[..., c] = np.clip((before + step // 2) // step, 0, 255).astype(np.uint8)[x]
        return out
    if d.name == "brightness":
        return np.clip(a * m, 0, 255).astype(np.uint8)
    if d.name == "sharpness":  # blend with a 3x3 smoothing, the border kept, NOT clipped:
        blur = cv2.filter2D(a, -1, SMOOTH).astype(np.float32)  # the cast wraps modulo 256
        blur[0], blur[-1], blur[:, 0], blur[:, -1] = a[0], a[-1], a[:, 0], a[:, -1]
        mixed = blur + np.float32(m) * (a.astype(np.float32) - blur)
        return np.fmod(np.fmod(np.trunc(mixed), 256) + 256, 256).astype(np.uint8)
    matrices = {
        "shear_x": [[1, m, 0], [0, 1, 0]],
        "shear_y": [[1, 0, 0], [m, 1, 0]],
        "translate_x": [[1, 0, -m], [0, 1, 0]],
        "translate_y": [[1, 0, 0], [0, 1, -m]],
    }
    # float32 matrices as written in the released code; the rotation's stays float64
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), m, 1) if d.name == "rotate" else None
    matrix = np.float32(matrices[d.name]) if rotation is None else rotation
    return cv2.warpAffine(a, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=GREY)


def photos() -> list[Image.Image]:
    """Photographs shipped by dependencies, and a dim copy (autocontrast/equalize act on it)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out = [Image.open(path).convert("RGB")]
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:  # pragma: no cover - scikit-learn is optional
        pass
    else:
        out += [Image.fromarray(a) for a in load_sample_images().images]
    dim = (np.asarray(out[0]).astype(np.float32) * 0.4 + 70).astype(np.uint8)
    return [*out, Image.fromarray(dim)]


def assert_same_levels(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    """The same grey levels everywhere."""
    diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    assert diff.max() == 0, (what, diff.max(), diff.mean(), (diff > 0).mean())


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return photos()


def test_each_released_op_matches_the_reference(images: list[Image.Image]) -> None:
    augment = ReleasedRandAugment(2, 7)
    assert {k: augment.magnitudes[k] for k in MAGNITUDE} == pytest.approx(MAGNITUDE)
    assert augment.magnitudes["brightness"] == augment.magnitudes["sharpness"] == ENHANCE
    changed = 0
    for img in images:
        a = np.asarray(img)
        for name, magnitude in augment.magnitudes.items():
            for sign in (1, -1) if name in augment.SIGNED else (1,):
                d = Draw(name, sign * magnitude)
                ours = np.asarray(augment.apply(img, [d]))
                ref = ref_op(a, d)
                assert_same_levels(ours, ref, f"{name} {d.magnitude}")
                changed += not np.array_equal(ref, a)
    assert changed >= len(images) * 12  # the ops act: only identity (and autocontrast) may not


def test_released_policy_draws() -> None:
    """2 ops uniformly with replacement, each applied with p = 0.5, a random sign each."""
    augment, gen = ReleasedRandAugment(2, 7), torch.Generator().manual_seed(0)
    draws = [augment.draw(gen) for _ in range(4000)]
    counts = np.bincount([len(d) for d in draws], minlength=3) / len(draws)
    assert counts == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    applied = [d for ds in draws for d in ds]
    names = [d.name for d in applied]
    for name in augment.OPS:
        assert names.count(name) / len(applied) == pytest.approx(0.1, abs=0.02)
        signs = [np.sign(d.magnitude) for d in applied if d.name == name]
        if name in augment.SIGNED:
            assert np.mean(np.array(signs) > 0) == pytest.approx(0.5, abs=0.08)
            assert {abs(d.magnitude) for d in applied if d.name == name} == {MAGNITUDE[name]}


def dataset(dataset: str, records: list[Record], tokenizer: Any, **kw: Any) -> ImageTextDataset:
    return ImageTextDataset(dataset, records, tokenizer, official=True, **kw)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A WordPiece tokenizer (no BERT vocabulary is reachable offline): whole words for the
    common ones, single letters and ``##`` letters for the rest."""
    from transformers import AutoTokenizer

    folder = make_tiny_bert(tmp_path_factory.mktemp("bert"))
    words = {w for t, _ in TWEETS for w in re.findall(r"[a-z]+", t.lower()) if len(w) < 9}
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words), *letters]
    vocab += [f"##{c}" for c in letters] + [f"##{d}" for d in "0123456789"] + list("0123456789")
    vocab += [c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory, images: list[Image.Image]) -> list[Record]:
    folder = tmp_path_factory.mktemp("photos")
    out = []
    for i, (text, target) in enumerate(TWEETS):
        path = folder / f"{i}.jpg"
        images[i % len(images)].save(path, quality=95)
        out.append(Record(path, text, i % 2, target))
    return out


def test_released_text_cleaning() -> None:
    assert released_twitter_text("RT @Mets: $T$ wins 2014 t37 opener") == "rt mets t wins opener"
    assert (
        pre_caption('Great... #Monday-morning w/ "him" (yay!)') == "great monday morning w him yay"
    )
    for text, _ in TWEETS:
        assert released_twitter_text(text) == ref_twitter_text(text)
        assert pre_caption(text) == ref_pre_caption(text)
    assert len(released_twitter_text(TWEETS[-1][0]).split()) == 20
    # a lone tab, line break or no-break space does not separate the released words: 60 words
    # in 30 "words" are all kept (BERT splits them), 50 when they are spaces
    tabbed = " ".join(["snow\tday", "cold\xa0feet", "ice\nage"] * 10) + "\n"
    assert pre_caption(tabbed) == ref_pre_caption(tabbed) == tabbed[:-1]
    spaced = re.sub(r"\s", " ", tabbed)
    assert pre_caption(spaced) == ref_pre_caption(spaced) == " ".join(spaced.split()[:50])


def test_twitter2015_official_token_ids(tokenizer: Any, records: list[Record]) -> None:
    """Released call: ``tokenizer(texts, padding='longest', max_length=30)``, no truncation."""
    ds = dataset("twitter2015", records, tokenizer)
    for i, (text, _) in enumerate(TWEETS):
        want = tokenizer(ref_twitter_text(text))["input_ids"]  # the raw text: $T$ is "t"
        mask = ds.attention_mask[i].bool()
        assert ds.input_ids[i][mask].tolist() == want
        assert ds.input_ids[i][~mask].eq(tokenizer.pad_token_id).all()
    longest = int(ds.attention_mask.sum(1).max())
    assert longest > 30 and ds.input_ids.shape[1] == longest  # kept whole, not cut at 30
    cut = dataset("twitter2015", records, tokenizer, max_length=30)  # an explicit length cuts
    sep = tokenizer.sep_token_id
    assert cut.input_ids.shape[1] == 30
    assert cut.input_ids[-1].tolist() == [*ds.input_ids[-1][:29].tolist(), sep]
    ours = ImageTextDataset("twitter2015", records, tokenizer)
    assert ours.input_ids.shape[1] == 30  # ours: the target put back, cut at 30
    assert "malala" in ours.texts[0] and "malala" not in ds.texts[0]


def test_sarcasm_official_token_ids(tokenizer: Any, records: list[Record]) -> None:
    ds = dataset("sarcasm", records, tokenizer)
    for i, (text, _) in enumerate(TWEETS):
        want = tokenizer(ref_pre_caption(text))["input_ids"]  # padding='longest', not truncated
        assert ds.input_ids[i][ds.attention_mask[i].bool()].tolist() == want
    assert ds.input_ids.shape[1] == int(ds.attention_mask.sum(1).max()) > 80  # kept whole


def test_eval_images_match_the_released_resize_and_statistics(
    tokenizer: Any, records: list[Record], images: list[Image.Image]
) -> None:
    sarcasm = dataset("sarcasm", records, tokenizer)
    twitter = dataset("twitter2015", records, tokenizer)
    for i in range(3):
        with Image.open(records[i].image) as img:
            rgb = img.convert("RGB")
            bicubic = np.asarray(rgb.resize((224, 224), Image.Resampling.BICUBIC)) / 255.0
            bilinear = np.asarray(rgb.resize((384, 384), Image.Resampling.BILINEAR)) / 255.0
        ref = torch.from_numpy((bicubic - CLIP_MEAN) / CLIP_STD).permute(2, 0, 1).float()
        assert torch.allclose(sarcasm[i]["image"], ref, atol=1e-5)
        unnormalised = torch.from_numpy(bilinear).permute(2, 0, 1).float()
        assert torch.allclose(twitter[i]["image"], unnormalised, atol=1e-6)


def test_sarcasm_training_images_replay_the_released_transform(
    tokenizer: Any, records: list[Record]
) -> None:
    """RandomResizedCrop(224, 0.5-1, bicubic) + flip + RandomAugment(2, 7) + CLIP statistics,
    replayed from the same random draws with the reference ops."""
    ds = dataset("sarcasm", records, tokenizer, train=True, seed=5)
    augment = ReleasedRandAugment(2, 7)
    applied = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(records)):
            gen = item_generator(5, epoch, i)
            with Image.open(records[i].image) as img:
                rgb = img.convert("RGB")
            top, left, h, w = random_resized_crop((rgb.height, rgb.width), gen, (0.5, 1.0))
            crop = rgb.crop((left, top, left + w, top + h)).resize((224, 224), Image.BICUBIC)
            a = np.asarray(crop)
            if bool(torch.rand(1, generator=gen) < 0.5):
                a = a[:, ::-1].copy()
            draws = augment.draw(gen)
            for d in draws:
                a = ref_op(a, d)
            applied += len(draws)
            ref = (a / 255.0 - CLIP_MEAN) / CLIP_STD
            ours = ds[i]["image"].permute(1, 2, 0).numpy()
            levels = np.round((ours * CLIP_STD + CLIP_MEAN) * 255)  # back to 0-255
            back = np.round((ref * CLIP_STD + CLIP_MEAN) * 255)
            assert_same_levels(levels, back, str(draws))
    assert applied >= 10


def test_official_models(tmp_path: Path) -> None:
    """Sarcasm: ResNet50 logits -> Linear(1000, H), raw [CLS], one shared head, fusion 2H.
    Twitter2015: text projected Linear(H, image width) (H = 768 and 2048 at full size)."""
    bert = make_tiny_bert(tmp_path / "bert")
    kw: dict[str, Any] = {"resnet_width": 0.0625, "random_init": True}
    sarcasm = build_image_text_model(2, bert, dataset="sarcasm", official=True, **kw)
    image, text = sarcasm.encoders["image"], sarcasm.encoders["text"]
    assert image.encoder.fc.out_features == 1000  # type: ignore[union-attr]
    assert (image.proj.in_features, image.proj.out_features) == (1000, 16)  # type: ignore[union-attr]
    assert sarcasm.heads["image"] is sarcasm.heads["text"]
    assert sarcasm.fusion_head.in_features == 32
    assert text.bert.pooler is None  # type: ignore[union-attr]
    ids = torch.tensor([[2, 7, 8, 3], [2, 9, 3, 0]])
    mask = (ids > 0).long()
    text.eval()
    raw = text.bert(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]  # type: ignore[operator,union-attr]
    assert torch.equal(text(ids, mask), raw)
    params = {id(p) for p in sarcasm.parameters()}
    assert len(params) == len(list(sarcasm.parameters()))
    out, (img_logits, txt_logits) = sarcasm(
        image=torch.randn(2, 3, 32, 32), input_ids=ids, attention_mask=mask
    )
    assert out.shape == img_logits.shape == txt_logits.shape == (2, 2)

    twitter = build_image_text_model(3, bert, dataset="twitter2015", official=True, **kw)
    proj = twitter.encoders["text"].proj  # type: ignore[union-attr]
    assert (proj.in_features, proj.out_features) == (16, 128)  # 768 -> 2048 at full size
    assert twitter.fusion_head.in_features == 256 and twitter.heads["text"].in_features == 128
    ours = build_image_text_model(2, bert, dataset="sarcasm", **kw)
    assert (
        ours.fusion_head.in_features == 128 + 16 and ours.heads["image"] is not ours.heads["text"]
    )


#: Twitter2015 rows whose texts hold quote characters: pandas (the released reader) treats a
#: field that starts with ``"`` as quoted (tabs and line breaks inside belong to it, ``""`` is one
#: quote, the text after the closing quote is kept).
QUOTED_TSV = (
    "index\tLabel\tImageID\tString\tString\n"
    '1\t2\t1.jpg\t" Great " day for $T$ !\tMalala\n'
    '2\t1\t2.jpg\tHe said " hi " to $T$\t"Apple"\n'
    '3\t0\t3.jpg\t"a quote\tthat spans\na tab and a line" then $T$\tChelsea\n'
    '4\t1\t4.jpg\t""quoted twice"" $T$\tApril\n'
    '5\t2\t5.jpg\t"He said ""yes"" to $T$"\tZoe\n'
)


def test_twitter2015_official_reads_the_tsv_as_pandas(tmp_path: Path) -> None:
    """``--preset official`` reads the file as ``pandas.read_csv(path, sep='\\t')``; ours keeps
    every character (a quote is text); a file ending inside a quoted field is refused."""
    pd = pytest.importorskip("pandas")
    from examples.imtext.data import read_split

    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "train.tsv"
    path.write_text("\ufeff" + QUOTED_TSV, encoding="utf-8")  # a byte-order mark as well
    frame = pd.read_csv(path, sep="\t")
    records = read_split("twitter2015", tmp_path, "train", official=True)
    assert records is not None and len(records) == len(frame) == 5
    for r, (_, row) in zip(records, frame.iterrows()):
        assert (r.label, r.image.name, r.text) == (int(row["Label"]), row["ImageID"], row["String"])
    assert records[2].text == "a quote\tthat spans\na tab and a line then $T$"
    with pytest.raises(ValueError, match="line 5: 2 tab-separated fields"):  # ours: no quoting
        read_split("twitter2015", tmp_path, "train")
    path.write_text("".join(QUOTED_TSV.splitlines(keepends=True)[:3]), encoding="utf-8")
    ours = read_split("twitter2015", tmp_path, "train")
    assert ours is not None
    assert [r.text for r in ours] == ['" Great " day for $T$ !', 'He said " hi " to $T$']

    path.write_text(QUOTED_TSV + '6\t0\t6.jpg\t"never closed $T$\tX\n', encoding="utf-8")
    with pytest.raises(pd.errors.ParserError, match="EOF inside string"):
        pd.read_csv(path, sep="\t")
    with pytest.raises(ValueError, match="never closed"):
        read_split("twitter2015", tmp_path, "train", official=True)
