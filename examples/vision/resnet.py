"""ResNet50 (He et al., 2016; v1.5: stride on the 3x3 conv) as an image feature encoder.

Parameter names follow torchvision's ``resnet50`` so its ImageNet ``state_dict`` loads with
:func:`examples.vision.weights.load_local_weights` (``weights="imagenet"``: torchvision's
IMAGENET1K_V1 file, downloaded once and hash-checked; a URL or a local ``.pth`` as well).
``width`` scales every channel count (``width=1/16`` gives a tiny network for tests).
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from examples.vision.weights import RESNET50_WEIGHTS, load_local_weights, resolve_weights

__all__ = ["Bottleneck", "ResNet50"]


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, plus the (projected) identity."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        out: Tensor = self.relu(y + identity)
        return out


class ResNet50(nn.Module):
    """``forward(x: (B, 3, H, W)) -> (B, out_features)``, globally average-pooled features.

    ``out_features`` is 2048 at ``width=1``. ``num_classes``: keep torchvision's classifier
    ``fc`` (``Linear(2048, num_classes)``) and return its logits instead (``out_features`` is
    then ``num_classes``; the released Sarcasm model reads ImageNet's 1000 logits). ``weights``:
    a torchvision-style ``state_dict`` (see :func:`examples.vision.weights.resolve_weights`:
    ``imagenet``, a URL or a local file); without ``fc`` its classifier is ignored.
    """

    def __init__(
        self,
        width: float = 1.0,
        *,
        in_channels: int = 3,
        num_classes: int | None = None,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        base = max(1, round(64 * width))
        self.conv1 = nn.Conv2d(in_channels, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = base
        layers: list[nn.Sequential] = []
        for i, (blocks, stride) in enumerate(zip((3, 4, 6, 3), (1, 2, 2, 2))):
            planes = base * 2**i
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(channels, planes, stride if b == 0 else 1))
                channels = planes * Bottleneck.expansion
            layers.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_features = channels
        self.fc: nn.Linear | None = None
        if num_classes is not None:
            self.fc = nn.Linear(channels, num_classes)
            self.out_features = num_classes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if weights is not None:
            load_local_weights(self, resolve_weights(weights, names=RESNET50_WEIGHTS))

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        out: Tensor = self.avgpool(x).flatten(1)
        return out if self.fc is None else self.fc(out)
