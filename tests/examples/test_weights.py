"""Pretrained weights of the examples, offline: names, ``file://`` URLs with their hash checked,
hub names through a local Hugging Face cache, and the loud line of a random start (issue 28,
item 10)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from examples.vision.resnet import ResNet50
from examples.vision.weights import (
    RESNET50_WEIGHTS,
    fetch_url,
    load_local_weights,
    resolve_weights,
)


@pytest.fixture(autouse=True)
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, so nothing of the user's cache is read or written."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def hashed_copy(state: dict[str, torch.Tensor], folder: Path, stem: str) -> tuple[Path, str]:
    """``state`` saved as ``<stem>-<first 8 hex of its SHA-256>.pth``; returns (file, digest)."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / f"{stem}.pth"
    torch.save(state, plain)
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    named = plain.rename(folder / f"{stem}-{digest[:8]}.pth")
    return named, digest


def test_file_url_with_its_hash_loads(tmp_path: Path, torch_home: Path) -> None:
    source = ResNet50(0.0625, num_classes=10)
    file, _ = hashed_copy(source.state_dict(), tmp_path / "remote", "tiny")
    model = ResNet50(0.0625, num_classes=10, weights=file.as_uri())
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    cached = torch_home / "hub" / "checkpoints" / file.name
    assert cached.is_file()  # downloaded once, then read from the cache
    file.unlink()
    assert fetch_url(file.as_uri()) == cached


def test_wrong_hash_is_refused_naming_both_hashes(tmp_path: Path, torch_home: Path) -> None:
    file, digest = hashed_copy({"w": torch.ones(3)}, tmp_path / "remote", "tiny")
    wrong = file.rename(file.with_name("tiny-deadbeef.pth"))
    with pytest.raises(
        RuntimeError, match=f'{wrong.as_uri()}.*expected "deadbeef", got "{digest}"'
    ):
        resolve_weights(wrong.as_uri(), progress=False)
    assert not (torch_home / "hub" / "checkpoints" / wrong.name).exists()


def test_an_unreachable_url_says_which_and_what_to_do(tmp_path: Path, torch_home: Path) -> None:
    # no network here: a file:// URL whose file is absent fails the same way (urllib's URLError)
    url = (tmp_path / "absent-12345678.pth").as_uri()
    with pytest.raises(OSError, match=f"weights URL '{url}' could not be downloaded.*local path"):
        resolve_weights(url, progress=False)
    assert not (torch_home / "hub" / "checkpoints" / "absent-12345678.pth").exists()


def test_a_tampered_cached_copy_is_refused(tmp_path: Path, torch_home: Path) -> None:
    # torch.hub checks the hash on download only; a cached copy is checked again here. The
    # name 'imagenet' resolves to torchvision's file, found in the (fake) cache: no network.
    cached = torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    cached.parent.mkdir(parents=True)
    torch.save({"w": torch.ones(1)}, cached)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert RESNET50_WEIGHTS["imagenet"].endswith("/resnet50-0676ba61.pth")
    with pytest.raises(RuntimeError, match=f'expected "0676ba61", got "{digest}"'):
        resolve_weights("imagenet", names=RESNET50_WEIGHTS)


def test_local_paths_and_bad_values(tmp_path: Path) -> None:
    torch.save(ResNet50(0.0625).state_dict(), tmp_path / "r.pth")
    assert resolve_weights(tmp_path / "r.pth") == tmp_path / "r.pth"
    with pytest.raises(FileNotFoundError, match="'nope.pth'.*one of the names \\['imagenet'\\]"):
        resolve_weights("nope.pth", names=RESNET50_WEIGHTS)
    # a checkpoint of which nothing fits (another width) is refused, not loaded as 0 tensors
    with pytest.raises(ValueError, match="none of its .* tensors fits ResNet50"):
        load_local_weights(ResNet50(0.125), tmp_path / "r.pth")


def test_resnet50_classifier_loads_with_num_classes(tmp_path: Path) -> None:
    source = ResNet50(0.0625, num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r.pth")
    encoder = ResNet50(0.0625, weights=tmp_path / "r.pth")  # fc ignored: pooled features
    logits = ResNet50(0.0625, num_classes=1000, weights=tmp_path / "r.pth")
    assert logits.fc is not None and source.fc is not None
    assert torch.equal(logits.fc.weight, source.fc.weight)
    x = torch.randn(2, 3, 32, 32)
    source.eval(), encoder.eval(), logits.eval()
    assert encoder(x).shape == (2, encoder.out_features) and logits(x).shape == (2, 1000)
    assert torch.allclose(logits(x), source.fc(encoder(x)), atol=1e-5)


# -- BERT: a hub name through the Hugging Face cache, a local directory, random init ---------------


@pytest.fixture
def hub_bert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny BERT saved as ``bert-base-uncased`` in a Hugging Face hub cache of its own
    (``HF_HOME``, offline): its snapshot folder."""
    transformers = pytest.importorskip("transformers")
    import huggingface_hub.constants as hf

    from examples.imtext.demo_data import make_tiny_bert

    hub = tmp_path / "hf" / "hub"
    repo = hub / "models--bert-base-uncased"
    commit = "0" * 40
    snapshot = make_tiny_bert(repo / "snapshots" / commit, seed=3)
    transformers.AutoTokenizer.from_pretrained(snapshot).save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub read the variables at import: set its constants too (read at each call)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    return snapshot


def test_bert_hub_name_resolves_through_the_cache(
    hub_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import BertModel

    from examples import image_text
    from examples.imtext.models import build_image_text_model, load_tokenizer

    args = image_text.parse_args(["--dataset", "twitter2015", "--root", "r"])
    assert (args.bert, args.resnet50, args.random_init) == ("bert-base-uncased", "imagenet", False)
    image = ResNet50(0.0625)
    file, _ = hashed_copy(image.state_dict(), tmp_path / "remote", "tiny")
    model = build_image_text_model(
        3, "bert-base-uncased", resnet50=file.as_uri(), resnet_width=0.0625
    )
    saved = BertModel.from_pretrained(hub_bert).state_dict()
    loaded = model.encoders["text"].bert.state_dict()  # type: ignore[union-attr]
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert torch.equal(model.encoders["image"].conv1.weight, image.conv1.weight)  # type: ignore[union-attr]
    ids = load_tokenizer("bert-base-uncased")("great day")["input_ids"]
    vocab = (hub_bert / "vocab.txt").read_text().split()
    assert [vocab[i] for i in ids] == ["[CLS]", "great", "day", "[SEP]"]
    assert "RANDOM" not in capsys.readouterr().err


def test_bert_values_that_are_neither_directory_nor_hub_name() -> None:
    pytest.importorskip("transformers")
    from examples.imtext.models import bert_source

    for value in ("./weights/bert", "~/bert", "/abs/bert", "a/b/c"):
        with pytest.raises(FileNotFoundError, match=f"--bert '{value}': no such directory"):
            bert_source(value)
    assert bert_source("bert-base-uncased") == ("bert-base-uncased", {})


def test_random_init_is_announced_and_explicit(
    hub_bert: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import BertModel

    from examples import image_text
    from examples.imtext.models import build_image_text_model

    model = build_image_text_model(3, hub_bert, resnet_width=0.0625, random_init=True)
    err = capsys.readouterr().err
    assert "WARNING: the ResNet50 image encoder starts from RANDOM weights" in err
    assert "WARNING: the BERT text encoder" in err and err.count("RANDOM") == 2
    saved = BertModel.from_pretrained(hub_bert).state_dict()
    bert = model.encoders["text"].bert  # type: ignore[union-attr]
    assert bert.config.hidden_size == 16  # --bert's architecture ...
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(bert.state_dict()[key], saved[key])  # ... with random weights
    base = ["--dataset", "sarcasm", "--root", "r"]
    contradictions = {
        ("--random-init", "--resnet50", "w.pth"): "drop --resnet50 'w.pth', or pass --no-r",
        ("--resnet-width", "0.5"): "--resnet-width 0.5 has no pretrained weights",
    }
    for flags, message in contradictions.items():
        with pytest.raises(SystemExit):
            image_text.parse_args([*base, *flags])
        assert message in capsys.readouterr().err
    assert image_text.parse_args([*base, "--resnet-width", "0.5", "--random-init"]).resnet50 is None
    with pytest.raises(SystemExit):
        image_text.parse_args(["--demo", "--resnet50", "w.pth"])
    assert "--random-init (set by --demo) starts every encoder" in capsys.readouterr().err


def test_trimodal_weight_flags(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cv2")
    from examples import trimodal

    args = trimodal.parse_args(["--root", "r"])
    assert (args.i3d_rgb, args.i3d_flow, args.i3d_depth) == ("imagenet", "imagenet", None)
    demo = trimodal.parse_args(["--demo"])
    assert demo.random_init and demo.i3d_rgb is None
    with pytest.raises(SystemExit):
        trimodal.parse_args(["--root", "r", "--random-init", "--i3d-flow", "f.pt"])
    assert "drop --i3d-flow 'f.pt'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        trimodal.parse_args(["--root", "r", "--i3d-width", "0.25"])
    assert "--i3d-width 0.25 has no pretrained weights" in capsys.readouterr().err


def test_script_reads_bert_base_uncased_from_the_cache(hub_bert: Path, tmp_path: Path) -> None:
    """``--bert bert-base-uncased`` end to end (with random weights: a pretrained ResNet50 exists
    only at full width, too slow here): configuration and vocabulary come from the cache."""
    from examples import image_text
    from examples.imtext.demo_data import make_image_text_demo_data

    root = make_image_text_demo_data("twitter2015", tmp_path / "data")
    history = image_text.main(
        ["--dataset", "twitter2015", "--root", str(root), "--bert", "bert-base-uncased",
         "--random-init", "--resnet-width", "0.0625", "--image-size", "32", "--batch-size", "4",
         "--epochs", "1", "--no-progress", "--quiet", "--device", "cpu",
         "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert len(history) == 1 and 0.0 <= history[0]["test_acc"] <= 1.0
