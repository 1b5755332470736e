"""The image-text model: ResNet50 image encoder + BERT text encoder, late fusion.

``forward(image, input_ids, attention_mask) -> (multimodal_logits, [image_logits,
text_logits])``: a :class:`examples.common.models.LateFusionClassifier` whose text encoder reads
two inputs (its ``input_keys``).
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from examples.common.models import LateFusionClassifier
from examples.vision.resnet import ResNet50

__all__ = ["BertTextEncoder", "build_image_text_model", "load_tokenizer"]


def _transformers() -> object:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the image-text example needs `pip install transformers`") from err
    return transformers


def _local_dir(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"BERT directory {path} does not exist (give a local copy of bert-base-uncased: "
            "config.json, the weights and vocab.txt; nothing is downloaded)"
        )
    return path


def load_tokenizer(path: str | Path) -> object:
    """The tokenizer saved in the local directory ``path`` (never downloads)."""
    transformers = _transformers()
    return transformers.AutoTokenizer.from_pretrained(  # type: ignore[attr-defined]
        str(_local_dir(path)), local_files_only=True
    )


class BertTextEncoder(nn.Module):
    """``forward(input_ids, attention_mask) -> (B, hidden_size)``: BERT's pooled [CLS].

    The pooled output is ``tanh(W h_[CLS])`` (BERT's pooler); a checkpoint without a pooler falls
    back to the raw ``[CLS]`` state. Loaded with ``AutoModel.from_pretrained(path,
    local_files_only=True)``.
    """

    input_keys = ("input_ids", "attention_mask")

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        transformers = _transformers()
        self.bert = transformers.AutoModel.from_pretrained(  # type: ignore[attr-defined]
            str(_local_dir(path)), local_files_only=True
        )
        self.out_features: int = self.bert.config.hidden_size

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        pooled: Tensor | None = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]


def build_image_text_model(
    num_classes: int,
    bert: str | Path,
    *,
    resnet50: str | Path | None = None,
    resnet_width: float = 1.0,
) -> LateFusionClassifier:
    """ResNet50 (ImageNet weights from the local ``resnet50`` file when given) and BERT."""
    image, text = ResNet50(resnet_width, weights=resnet50), BertTextEncoder(bert)
    dims = {"image": image.out_features, "text": text.out_features}
    return LateFusionClassifier({"image": image, "text": text}, dims, num_classes)
