"""The image-text example (Twitter2015, Sarcasm) end to end on tiny fixtures, and its parts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from examples import image_text
from examples.imtext.data import ImageTextDataset, clean_text, read_split
from examples.imtext.demo_data import make_image_text_demo_data, make_tiny_bert
from examples.vision.resnet import ResNet50
from examples.vision.weights import adapt_input_channels, load_local_weights

TINY = [
    "--resnet-width", "0.0625", "--image-size", "32", "--max-length", "16", "--batch-size", "4",
    "--epochs", "2", "--no-progress", "--quiet", "--device", "cpu", "--lambda0", "0.5",
    "--update-every", "1", "--random-init",
]  # fmt: skip


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("imtext")
    out = {k: make_image_text_demo_data(k, base / k) for k in ("twitter2015", "sarcasm")}
    return {**out, "bert": make_tiny_bert(base / "bert")}


def run(roots: dict[str, Path], dataset: str, out: Path, *extra: str) -> list[dict[str, float]]:
    argv = ["--dataset", dataset, "--root", str(roots[dataset]), "--bert", str(roots["bert"])]
    return image_text.main([*argv, "--out", str(out), *TINY, *extra])


@pytest.mark.parametrize(
    ("dataset", "sampler"),
    [
        ("twitter2015", "random"),
        ("twitter2015", "heuristic"),
        ("twitter2015", "learned"),
        ("sarcasm", "learned"),
    ],
)
def test_end_to_end(roots: dict[str, Path], tmp_path: Path, dataset: str, sampler: str) -> None:
    history = run(roots, dataset, tmp_path, "--sampler", sampler)
    assert [row["epoch"] for row in history] == [1, 2]
    for split in ("val", "test"):
        for head in ("", "multi_", "image_", "text_"):
            assert 0.0 <= history[-1][f"{split}_{head}acc"] <= 1.0
            assert 0.0 <= history[-1][f"{split}_{head}f1"] <= 1.0
    assert math.isfinite(history[-1]["train_loss"])
    assert json.loads((tmp_path / "best.json").read_text())["split"] == "val"
    assert {"history.csv", "last.pt", "best.pt", "accuracy.png"} <= {
        p.name for p in tmp_path.iterdir()
    }


def test_resume_matches_uninterrupted_run(roots: dict[str, Path], tmp_path: Path) -> None:
    args = ("--sampler", "learned", "--scoring", "online")
    full = run(roots, "sarcasm", tmp_path / "full", *args)
    run(roots, "sarcasm", tmp_path / "part", *args, "--epochs", "1")
    last = str(tmp_path / "part" / "last.pt")
    resumed = run(roots, "sarcasm", tmp_path / "part", *args, "--resume", last)

    def strip(rows: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]

    assert strip(resumed) == strip(full)


def test_sarcasm_without_validation_file_holds_out_train(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "sarcasm"
    make_image_text_demo_data("sarcasm", root, per_class=4)
    (root / "annotations" / "valid_data.json").unlink()
    assert read_split("sarcasm", root, "val") is None
    args = image_text.parse_args(
        [
            "--dataset",
            "sarcasm",
            "--root",
            str(root),
            "--bert",
            str(roots["bert"]),
            "--val-fraction",
            "0.25",
            *TINY,
        ]
    )
    train, evals, score = image_text.load_data(args)
    assert (len(train), len(evals["val"]), len(score)) == (6, 2, 6)
    assert train.augment and not score.augment


def test_twitter_rows_and_text_cleaning(roots: dict[str, Path]) -> None:
    records = read_split("twitter2015", roots["twitter2015"], "train")
    assert records is not None and len(records) == 6
    assert all(r.target == "the" and r.image.is_file() for r in records)
    assert any("$T$" in r.text for r in records)  # the raw text keeps the placeholder
    assert all(r.filled() == r.text.replace("$T$", "the") for r in records)
    assert [r.label for r in records] == [0, 0, 1, 1, 2, 2]
    assert clean_text("A, b! c d", 3, strip_punctuation=True) == "a b c"
    assert clean_text(" ".join(["w"] * 60), 50).count("w") == 50


def test_paper_defaults() -> None:
    args = image_text.parse_args(["--dataset", "sarcasm", "--root", "r", "--bert", "b"])
    cfg = args
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.alpha) == ("adam", 1e-5, 64, 0.2)


def test_resnet50_names_and_local_weights(tmp_path: Path) -> None:
    tiny = ResNet50(0.0625)
    names = set(tiny.state_dict())
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var"} <= names
    assert tiny(torch.randn(2, 3, 32, 32)).shape == (2, tiny.out_features)
    torch.save({"fc.weight": torch.zeros(3), **tiny.state_dict()}, tmp_path / "r.pth")
    grey = ResNet50(0.0625, in_channels=1)
    missing, skipped = load_local_weights(grey, tmp_path / "r.pth", verbose=False)
    assert missing == [] and skipped == ["fc.weight"]
    expected = adapt_input_channels(tiny.conv1.weight, 1)
    assert torch.allclose(grey.conv1.weight, tiny.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(grey.conv1.weight, expected)


def write_tsv(root: Path, split: str, header: str, rows: list[str]) -> None:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"{split}.tsv").write_text("\n".join([header, *rows]) + "\n")


def test_twitter2015_public_file_shapes(tmp_path: Path) -> None:
    """TomBERT's public test.tsv names 4 columns over 5 fields (the label unnamed); its train and
    dev name all 5; a plain header is accepted too. Before the fix: "column 'Label' not found"."""
    rows = [
        "0\t2\t1860693.jpg\tRT @ltsChuckBass : $T$ is everything # MCM\tChuck Bass",
        "1\t0\t1860694.jpg\t$T$ loses 2014 opener vs t37\tMets",
    ]
    write_tsv(tmp_path, "test", "index\t#1 ImageID\t#2 String\t#2 String", rows)
    write_tsv(tmp_path, "train", "index\t#1 Label\t#2 ImageID\t#3 String\t#3 String", rows)
    write_tsv(tmp_path, "dev", "Label\tImageID\tString", ["1\t5.jpg\tno target here"])
    for split in ("test", "train"):
        records = read_split("twitter2015", tmp_path, split)
        assert records is not None
        assert [(r.label, r.image.name, r.target) for r in records] == [
            (2, "1860693.jpg", "Chuck Bass"),
            (0, "1860694.jpg", "Mets"),
        ]
        assert records[0].text == "RT @ltsChuckBass : $T$ is everything # MCM"
        assert records[0].filled() == "RT @ltsChuckBass : Chuck Bass is everything # MCM"
    dev = read_split("twitter2015", tmp_path, "val")
    assert dev is not None and (dev[0].label, dev[0].target, dev[0].filled()) == (
        1,
        "",
        "no target here",
    )
    # a UTF-8 byte-order mark (pandas skips it) does not hide the header's first name
    write_tsv(tmp_path, "test", "\ufeffindex\t#1 ImageID\t#2 String\t#2 String", rows)
    for official in (False, True):
        records = read_split("twitter2015", tmp_path, "test", official=official)
        assert records is not None and [r.label for r in records] == [2, 0]
    write_tsv(tmp_path, "test", "index\t#1 Label\t#2 ImageID\t#3 String", [rows[0]])
    with pytest.raises(ValueError, match="test.tsv line 2: 5 tab-separated fields, expected 4"):
        read_split("twitter2015", tmp_path, "test")
    write_tsv(tmp_path, "test", "index\t#1 ImageID\t#2 String\t#2 String", ["0\tx\ta.jpg\tt\tT"])
    with pytest.raises(ValueError, match="line 2: label 'x' \\(column 2\\), expected 0, 1 or 2"):
        read_split("twitter2015", tmp_path, "test")


@pytest.mark.parametrize("official", [False, True])
def test_twitter2015_bad_files_name_the_file_and_line(tmp_path: Path, official: bool) -> None:
    """Each refusal names the file, the line a row starts on (blank lines and CRLF counted) and
    what was expected; before: a wrong line, a label out of range or a missing column without the
    file, and a header-only file read as 0 pairs."""
    header = "index\t#1 Label\t#2 ImageID\t#3 String\t#3 String"
    good = "0\t1\ta.jpg\t$T$ rocks\tT"
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "train.tsv"
    cases = {
        "\r\n".join([header, good, "", "", good, "1\t2\tb.jpg\tonly four"]): "line 6: 4 tab",
        "\n".join([header, good, "2\t-1\tb.jpg\tt\tT"]): "line 3: label '-1'.*expected 0, 1",
        "\n".join([header, good, "2\t3\tb.jpg\tt\tT"]): "line 3: label '3'",
        "\n".join(["index\tLabel\tImage\tString", "0\t1\ta.jpg\tt"]): "line 1: column 'ImageID'",
        header + "\n": "holds a header and no row",
    }
    for text, message in cases.items():
        path.write_bytes(text.encode())
        with pytest.raises(ValueError, match=f"{path} {message}"):
            read_split("twitter2015", tmp_path, "train", official=official)
    # TomBERT's test.tsv (4 names over 5 fields) with one short row: that row is named
    tombert = "index\t#1 ImageID\t#2 String\t#2 String"
    path.write_text("\n".join([tombert, good, good, "2\t1\tb.jpg\tno target"]))
    with pytest.raises(ValueError, match=f"{path} line 4: 4 tab-separated fields, expected 5"):
        read_split("twitter2015", tmp_path, "train", official=official)
    path.write_bytes("\n".join([header, good.replace("rocks", "café")]).encode("latin-1"))
    with pytest.raises(ValueError, match=f"{path}: line 2 is not UTF-8"):
        read_split("twitter2015", tmp_path, "train", official=official)
    # a $T$ with no target to put back is read as "t": said, not silent
    path.write_text("\n".join(["Label\tImageID\tString", "1\ta.jpg\t$T$ wins", "0\tb.jpg\tno"]))
    with pytest.warns(UserWarning, match="1 of 2 tweets hold the \\$T\\$ placeholder with no"):
        read_split("twitter2015", tmp_path, "train", official=official)


@pytest.mark.parametrize("dataset", ["twitter2015", "sarcasm"])
def test_official_preset_end_to_end(roots: dict[str, Path], tmp_path: Path, dataset: str) -> None:
    """--preset official trains the released model on the released inputs."""
    history = run(roots, dataset, tmp_path, "--preset", "official", "--epochs", "1")
    assert math.isfinite(history[-1]["train_loss"]) and 0 <= history[-1]["test_acc"] <= 1
    args = image_text.parse_args(
        ["--dataset", dataset, "--root", str(roots[dataset]), "--bert", str(roots["bert"]),
         *TINY, "--preset", "official"]
    )  # fmt: skip
    train, _, _ = image_text.load_data(args)
    official = dataset == "sarcasm"  # CLIP statistics: negative values; Twitter2015: [0, 1]
    assert (train[0]["image"].min() < 0) == official
    state = torch.load(tmp_path / "best.pt", weights_only=True)["model"]
    shared = dataset == "sarcasm"
    assert torch.equal(state["heads.image.weight"], state["heads.text.weight"]) == shared


def test_sarcasm_bad_files_name_the_file_and_entry(tmp_path: Path) -> None:
    """A byte-order mark is skipped; an entry of another shape, a label other than 0/1, a file
    that is not a JSON list and a missing image are refused naming the file (before: a bare
    KeyError / JSONDecodeError / TypeError, a null text read as the word "none", an empty list
    read as 0 pairs, a missing image found only when an epoch reads it)."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "1.jpg")
    path = tmp_path / "annotations" / "train_data.json"
    good = {"image": "dataset_image/1.jpg", "text": "so fun #not", "label": "1"}
    entries = [good, {**good, "label": False}, {**good, "label": 1.0}]
    path.write_text("\ufeff" + json.dumps(entries), "utf-8")
    records = read_split("sarcasm", tmp_path, "train")
    assert records is not None and [r.label for r in records] == [1, 0, 1]
    cases = {
        json.dumps([{**good, "text": None}]): "entry 0: .* expected a JSON list of",
        json.dumps([good, {"img": "1.jpg", "text": "t", "label": 0}]): "entry 1: ",
        json.dumps([{**good, "label": "sarcastic"}]): "entry 0: label 'sarcastic', expected 0 or 1",
        json.dumps([{**good, "label": 2}]): "entry 0: label 2, expected 0 or 1",
        json.dumps([{**good, "label": 0.5}]): "entry 0: label 0.5, expected 0 or 1",
        json.dumps({"data": [good]}): "dict, expected a JSON list",
        "[]": "an empty list, expected",
        "['1', 'so fun', 1]": "not JSON .* must be converted",
    }
    for text, message in cases.items():
        path.write_text(text, "utf-8")
        with pytest.raises(ValueError, match=f"{path}:? {message}"):
            read_split("sarcasm", tmp_path, "train")
    path.write_text(json.dumps([good, {**good, "image": "dataset_image/2.jpg"}]), "utf-8")
    records = read_split("sarcasm", tmp_path, "train")
    assert records is not None
    with pytest.raises(FileNotFoundError, match="1 of 2 images not found, e.g. .*images/2.jpg"):
        ImageTextDataset("sarcasm", records, None)
