"""ResNet18 encoders trained from scratch: audio (1-channel spectrogram) and visual (frames
folded into the batch, features averaged over time), ``width`` scaling every stage."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["AudioEncoder", "ResNet18", "VisualEncoder"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
        return out


class ResNet18(nn.Module):
    """ResNet18 trunk: ``(N, in_channels, H, W) -> (N, 8 * width)`` after global average pooling."""

    def __init__(self, in_channels: int, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        cin = width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = 8 * width
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        features: Tensor = self.pool(self.stages(self.stem(x)))
        return features.flatten(1)


class AudioEncoder(ResNet18):
    """``(B, 1, F, T)`` spectrogram -> ``(B, 8 * width)``."""

    def __init__(self, width: int = 64) -> None:
        super().__init__(1, width)


class VisualEncoder(ResNet18):
    """``(B, K, 3, H, W)`` frames -> per-frame features, mean over ``K`` -> ``(B, 8 * width)``."""

    def __init__(self, width: int = 64) -> None:
        super().__init__(3, width)

    def forward(self, x: Tensor) -> Tensor:
        b, k = x.shape[:2]
        return super().forward(x.flatten(0, 1)).view(b, k, -1).mean(1)
