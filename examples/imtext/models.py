"""The image-text model: ResNet50 image encoder + BERT text encoder, late fusion.

``forward(image, input_ids, attention_mask) -> (multimodal_logits, [image_logits,
text_logits])``: a :class:`examples.common.models.LateFusionClassifier` whose text encoder reads
two inputs (its ``input_keys``).

Ours (both datasets): ResNet50's 2048-d pooled features, BERT's pooled ``[CLS]`` (the pooler,
``tanh(W h_[CLS])``), one linear head per modality, fusion ``Linear(2048 + 768, C)``. The
released models (``official=True``, ``--preset official``):

* Sarcasm: the image branch is ResNet50's ImageNet classifier, 1000 logits, then
  ``Linear(1000, 768)``; the text feature is BERT's raw ``[CLS]`` state (no pooler); ONE
  unimodal head ``Linear(768, 2)`` shared by both modalities; fusion ``Linear(1536, 2)``.
* Twitter2015: as ours, but the text feature is projected by ``Linear(768, 2048)`` before its
  head and the fusion (``Linear(4096, 3)``).

BERT (``--bert``) is a local directory or a Hugging Face hub name (``bert-base-uncased``: from
the hub, through its cache ``HF_HOME``; offline once cached, or with ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from examples.common.models import LateFusionClassifier
from examples.vision.resnet import ResNet50
from examples.vision.weights import announce_random_init

__all__ = [
    "BertTextEncoder",
    "Projected",
    "bert_source",
    "build_image_text_model",
    "load_tokenizer",
]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the image-text example needs `pip install transformers`") from err
    return transformers


def bert_source(spec: str | Path) -> tuple[str, dict[str, Any]]:
    """``(name or directory, from_pretrained keywords)`` of a ``--bert`` value.

    An existing directory loads with ``local_files_only=True``; a value shaped like a hub name
    (``name`` or ``org/name``) goes to the hub and its cache; any other path that does not exist
    raises ``FileNotFoundError``.
    """
    text = str(spec)
    if Path(text).expanduser().is_dir():
        return str(Path(text).expanduser()), {"local_files_only": True}
    parts = text.split("/")
    hub_like = 1 <= len(parts) <= 2 and all(parts) and not text.startswith((".", "~"))
    if not hub_like:
        raise FileNotFoundError(
            f"--bert {text!r}: no such directory (expected a local copy of a BERT: config.json, "
            "the weights and vocab.txt, or a Hugging Face hub name such as bert-base-uncased)"
        )
    return text, {}


def _pretrained(loader: Callable[..., Any], spec: str | Path, what: str, **kwargs: Any) -> Any:
    """``loader(name, **kwargs)`` on the ``--bert`` source, errors naming the flag's value."""
    source, local = bert_source(spec)
    try:
        return loader(source, **local, **kwargs)
    except OSError as err:
        where = (
            "the local directory"
            if local
            else "the Hugging Face hub or its cache (HF_HOME; and no such local directory)"
        )
        raise OSError(
            f"--bert {str(spec)!r}: could not load the {what} from {where}: {err}"
        ) from err


def load_tokenizer(spec: str | Path) -> Any:
    """The tokenizer of ``spec``: a local directory (never downloads) or a hub name."""
    return _pretrained(_transformers().AutoTokenizer.from_pretrained, spec, "tokenizer")


class BertTextEncoder(nn.Module):
    """``forward(input_ids, attention_mask) -> (B, hidden_size)``: BERT's [CLS] feature.

    ``pooled=True``: the pooled output ``tanh(W h_[CLS])`` (BERT's pooler); ``False``: the raw
    ``[CLS]`` state of the last layer (the model is then built without its pooler, so no
    parameter is left without a gradient). ``random_init``: the architecture of ``spec``
    (its ``config.json``) with random weights, announced on stderr.
    """

    input_keys = ("input_ids", "attention_mask")

    def __init__(self, spec: str | Path, *, pooled: bool = True, random_init: bool = False) -> None:
        super().__init__()
        transformers = _transformers()
        self.pooled = pooled
        if random_init:
            config = _pretrained(transformers.AutoConfig.from_pretrained, spec, "configuration")
            announce_random_init(f"the BERT text encoder ({spec})", "--random-init")
            self.bert = transformers.AutoModel.from_config(config, add_pooling_layer=pooled)
        else:
            self.bert = _pretrained(
                transformers.AutoModel.from_pretrained, spec, "model", add_pooling_layer=pooled
            )
        self.out_features: int = self.bert.config.hidden_size

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        pooled: Tensor | None = getattr(out, "pooler_output", None) if self.pooled else None
        if pooled is not None:
            return pooled
        cls: Tensor = out.last_hidden_state[:, 0]
        return cls


class Projected(nn.Module):
    """An encoder followed by ``Linear(encoder.out_features, out_features)``; keeps the
    encoder's ``input_keys``."""

    def __init__(self, encoder: nn.Module, out_features: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.proj = nn.Linear(int(encoder.out_features), out_features)  # type: ignore[arg-type]
        self.out_features = out_features
        if hasattr(encoder, "input_keys"):
            self.input_keys = encoder.input_keys

    def forward(self, *inputs: Tensor) -> Tensor:
        out: Tensor = self.proj(self.encoder(*inputs))
        return out


def _resnet50(width: float, weights: str | Path | None, num_classes: int | None = None) -> ResNet50:
    if weights is None:
        announce_random_init("the ResNet50 image encoder", "--random-init")
    return ResNet50(width, num_classes=num_classes, weights=weights)


def build_image_text_model(
    num_classes: int,
    bert: str | Path,
    *,
    resnet50: str | Path | None = None,
    resnet_width: float = 1.0,
    random_init: bool = False,
    dataset: str = "twitter2015",
    official: bool = False,
) -> LateFusionClassifier:
    """ResNet50 (weights ``resnet50``: ``imagenet``, a URL or a file; None: random, announced)
    and BERT (``bert``; ``random_init``: its architecture, random weights); ``official``: the
    released model of ``dataset`` (module docstring)."""
    if official and dataset == "sarcasm":
        text = BertTextEncoder(bert, pooled=False, random_init=random_init)
        logits = _resnet50(resnet_width, resnet50, num_classes=1000)
        encoders: dict[str, nn.Module] = {"image": Projected(logits, text.out_features)}
        encoders["text"] = text
    else:
        image = _resnet50(resnet_width, resnet50)
        bert_encoder = BertTextEncoder(bert, random_init=random_init)
        encoders = {"image": image, "text": bert_encoder}
        if official:  # Twitter2015: text projected to the image's width
            encoders["text"] = Projected(bert_encoder, image.out_features)
    dims = {k: int(e.out_features) for k, e in encoders.items()}  # type: ignore[arg-type]
    model = LateFusionClassifier(encoders, dims, num_classes)
    if official and dataset == "sarcasm":  # one unimodal head for both modalities
        model.heads["text"] = model.heads["image"]
    return model
