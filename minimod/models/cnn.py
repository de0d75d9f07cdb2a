"""Convolutional networks from minimod layers: a small ResNet for images and a 1-D CNN for
audio features. Both split into a body (``features``: input -> one vector per example) and a
replaceable ``head`` (vector -> class scores), so fine-tuning can freeze the body and swap
the head: ``model.head = nn.Linear(model.feature_dim, new_classes)``.

ResNet (He et al. 2015), for images (N, C, H, W) from 1×8×8 up to 3×64×64:
    stem: conv 3×3 -> batch norm -> ReLU
    stages: each a few BasicBlocks; every stage after the first halves H and W and its first
            block widens the channels.  BasicBlock: y = ReLU(F(x) + shortcut(x)),
            F = conv-BN-ReLU-conv-BN, shortcut = identity, or 1×1 conv + BN when shapes change
    global average pooling -> (N, widths[-1]) -> head
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minimod import nn


@dataclass
class ResNetConfig:
    in_channels: int = 3
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 64)  # channels of each stage
    depths: tuple[int, ...] = (1, 1, 1)  # BasicBlocks per stage

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.depths) or not self.widths:
            raise ValueError(
                f"ResNetConfig: widths {self.widths} and depths {self.depths} "
                f"must be non-empty and of equal length"
            )
        if min(self.widths) < 1 or min(self.depths) < 1:
            raise ValueError("ResNetConfig: widths and depths must be ≥ 1")


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Module:
    """Convolution (no bias: the batch norm's β does that job) followed by batch norm."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """y = ReLU(F(x) + shortcut(x)): conv1 (3×3, stride) -> bn1 -> relu -> conv2 (3×3) -> bn2,
    plus the shortcut (Identity, or conv_bn 1×1 with the stride when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # When the block changes the shape, the shortcut must change it too.
        changes_shape = stride != 1 or in_channels != out_channels
        self.shortcut = (
            conv_bn(in_channels, out_channels, 1, stride) if changes_shape else nn.Identity()
        )
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))
        # END SOLUTION


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        # BEGIN SOLUTION
        stages, channels = [], widths[0]
        for index, (width, depth) in enumerate(zip(widths, config.depths, strict=True)):
            blocks = [BasicBlock(channels, width, stride=1 if index == 0 else 2)]
            blocks += [BasicBlock(width, width) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        # END SOLUTION
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, config.num_classes)
        self.apply(_init_conv)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> pooled features (N, feature_dim)."""
        # BEGIN SOLUTION
        return self.pool(self.stages(self.stem(x))).flatten(1)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> class scores (N, num_classes) (or whatever the head gives)."""
        # BEGIN SOLUTION
        return self.head(self.features(x))
        # END SOLUTION


@dataclass
class AudioCNNConfig:
    n_features: int = 40  # coefficients per frame (e.g. log-mel bands or MFCCs)
    num_classes: int = 10
    widths: tuple[int, ...] = (32, 64, 64)
    kernel_size: int = 5

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(
                f"AudioCNNConfig: kernel_size must be odd and ≥ 1, got {self.kernel_size}"
            )
        if not self.widths or min(self.widths) < 1 or self.n_features < 1:
            raise ValueError(
                f"AudioCNNConfig: widths {self.widths} and n_features {self.n_features} "
                "must be non-empty and ≥ 1"
            )


class AudioCNN(nn.Module):
    """Audio features (N, frames, n_features) -> class scores. Time is the convolution axis;
    the coefficients are the input channels. Every layer after the first halves the frames
    (stride 2), so any number of frames ≥ 1 works; global average pooling over time."""

    def __init__(self, config: AudioCNNConfig) -> None:
        super().__init__()
        self.config = config
        # BEGIN SOLUTION
        layers, channels = [], config.n_features
        for index, width in enumerate(config.widths):
            layers += [
                nn.Conv1d(
                    channels,
                    width,
                    config.kernel_size,
                    stride=1 if index == 0 else 2,
                    padding=config.kernel_size // 2,
                    bias=False,
                ),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
            channels = width
        self.body = nn.Sequential(*layers)
        # END SOLUTION
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.feature_dim = config.widths[-1]
        self.head = nn.Linear(self.feature_dim, config.num_classes)
        self.apply(_init_conv)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, frames, n_features) -> (N, feature_dim)."""
        if x.dim() != 3 or x.shape[-1] != self.config.n_features:
            raise ValueError(
                f"AudioCNN: expected features of shape (N, frames, "
                f"{self.config.n_features}), got {tuple(x.shape)}"
            )
        # BEGIN SOLUTION
        return self.pool(self.body(x.transpose(1, 2))).flatten(1)  # time is the conv axis
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, frames, n_features) -> class scores (N, num_classes)."""
        # BEGIN SOLUTION
        return self.head(self.features(x))
        # END SOLUTION


def _init_conv(module: nn.Module) -> None:
    """He initialisation for convolutions feeding ReLUs (as torchvision's ResNet)."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
