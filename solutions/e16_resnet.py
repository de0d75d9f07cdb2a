"""Lesson 16: Residual networks -- BasicBlock, ResNet and a 1-D audio CNN

The idea
Stacking more layers should never hurt -- the extra ones could learn the identity -- yet plain
deep networks train WORSE as they get deeper (He et al. 2015). A residual block makes the
identity the default: it learns only a correction F(x) and adds it to its input,
    y = ReLU(F(x) + shortcut(x)),     F = conv 3×3 -> BN -> ReLU -> conv 3×3 -> BN
If the identity is best, F → 0 is easy to reach, and the gradient flows back through the "+"
unchanged, however many blocks there are.

BasicBlock(in_channels, out_channels, stride=1): the names are torch's, so weights map
    conv1  Conv2d(in, out, 3, stride=stride, padding=1, bias=False)     may halve H and W
    bn1    BatchNorm2d(out);  relu  ReLU()
    conv2  Conv2d(out, out, 3, padding=1, bias=False);  bn2  BatchNorm2d(out)
    shortcut  Identity() when stride = 1 and in = out; otherwise conv_bn(in, out, 1, stride), a
              1×1 convolution with the same stride + batch norm, so that the "+" adds equal shapes
    forward:  y = relu(bn1(conv1(x))); y = bn2(conv2(y)); return relu(y + shortcut(x))
The last ReLU comes AFTER the addition. bias=False: the batch norm that follows subtracts
the mean (which would remove a bias) and its β adds the per-channel offset anyway.

ResNet(config): stem, stages, global pooling, head
    stem     conv 3×3 -> BN -> ReLU (given): (N, C, H, W) -> (N, widths[0], H, W)
    stages   nn.Sequential of one nn.Sequential per stage; stage i holds depths[i] blocks:
             BasicBlock(channels, widths[i], stride 1 for stage 0, else 2), then
             depths[i] − 1 × BasicBlock(widths[i], widths[i]).  Keys: stages.1.0.conv1.weight
    pool     AdaptiveAvgPool2d(1) (lesson 14): any H, W -> 1 × 1, so any image size works
    head     Linear(feature_dim, num_classes), feature_dim = widths[-1]
A 3×3 convolution with padding 1 and stride 2 gives ⌊(H − 1)/2⌋ + 1 = ⌈H/2⌉ (lesson 13):
    (N, 3, 32, 32) -> stem (N, 16, 32, 32) -> stages (N, 16, 32, 32), (N, 32, 16, 16),
    (N, 64, 8, 8) -> pool + flatten (N, 64) -> head (N, 10)     (the default config)

Body and replaceable head: the shape of fine-tuning
features(x) = pool(stages(stem(x))).flatten(1) is the body: one vector per example.
forward(x) = head(features(x)). A new task only needs a new head, and the body can be frozen:
    model.head = nn.Linear(model.feature_dim, 3)
    model.requires_grad_(False); model.head.requires_grad_(True)
Weights: _init_conv (given) draws every convolution from kaiming_normal_(mode="fan_out",
nonlinearity="relu"), as torchvision's ResNet; batch norms start at γ = 1, β = 0.

AudioCNN(config): the same recipe in 1-D, for audio features (N, frames, n_features)
Time is the convolution axis and the coefficients are the channels, so transpose to
(N, n_features, frames) first: x.transpose(1, 2). The body is one nn.Sequential holding, for
each width, Conv1d(channels, width, kernel_size, stride 1 for the first and 2 after,
padding=kernel_size // 2, bias=False), BatchNorm1d(width), ReLU() -- keys body.0, body.1, ...
Then AdaptiveAvgPool1d(1) over time, flatten, and the head: any number of frames ≥ 1 works.

What you write
BasicBlock's layers and forward; the stages of ResNet.__init__, ResNet.features and forward;
the body of AudioCNN.__init__, AudioCNN.features (after its input check) and forward. The
configs, conv_bn, the stem, pool and head, and _init_conv are given; Conv2d, BatchNorm2d and the
rest come from minimod (lessons 13-15), so this lesson stands alone.

Classic pitfalls
- relu(bn2(conv2(y))) + x: a ReLU before the addition, or none after it.
- A shortcut without the stride (the shapes differ at the "+"), or a projection where the
  identity fits (extra keys that no torchvision-style checkpoint has).
- The stride on conv2 instead of conv1: same shapes, a different network.
- Blocks kept in a Python list: not registered, so no parameters and no state_dict keys.
- AudioCNN without the transpose: Conv1d wants (N, channels, length).
- Evaluating in train mode: the batch norms then use each batch's statistics.

Run it
Once `minimod exercises check 16` passes, your AudioCNN (its layers, features and forward)
learns the Free Spoken Digit Dataset's real recordings, as MFCC frames (after `make real`;
--use-mine swaps in every lesson that passes and says which; `minimod finetune cnn --from
scratch --task digits --use-mine` trains your ResNet on scikit-learn's handwritten digits:
test accuracy 0.9432, but 300 steps took 6.5 min here):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e16
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test
accuracy 0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the
per-class table (about 40 s on 2 cores shared with other jobs).
Next: lesson 19 (Classification metrics: confusion matrix, precision, recall, F1)

Check it: minimod exercises check 16
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod import nn
    >>> from minimod.models.cnn import AudioCNNConfig, ResNetConfig
    >>> from exercises.e16_resnet import AudioCNN, BasicBlock, ResNet
    >>> block = BasicBlock(4, 8, stride=2)
    >>> y = block(torch.randn(2, 4, 9, 9))
    >>> tuple(y.shape), bool((y >= 0).all()), type(BasicBlock(8, 8).shortcut).__name__
    ((2, 8, 5, 5), True, 'Identity')
    >>> model = ResNet(ResNetConfig(in_channels=1, num_classes=10, widths=(4, 8), depths=(1, 1)))
    >>> x = torch.randn(3, 1, 8, 8)
    >>> tuple(model.features(x).shape), tuple(model(x).shape)
    ((3, 8), (3, 10))
    >>> model.head = nn.Linear(model.feature_dim, 2)  # a new task: a new head
    >>> tuple(model(x).shape)
    (3, 2)
    >>> audio = AudioCNN(AudioCNNConfig(n_features=6, num_classes=3, widths=(4, 8)))
    >>> tuple(audio(torch.randn(2, 17, 6)).shape)
    (2, 3)
"""

# Lesson 16 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import torch

from minimod import nn
from minimod.models.cnn import AudioCNNConfig, ResNetConfig

# ---- from minimod/models/cnn.py ----------------------------------------


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
        # BEGIN YOUR CODE
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
        # END YOUR CODE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN YOUR CODE
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))
        # END YOUR CODE


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
        # BEGIN YOUR CODE
        stages, channels = [], widths[0]
        for index, (width, depth) in enumerate(zip(widths, config.depths, strict=True)):
            blocks = [BasicBlock(channels, width, stride=1 if index == 0 else 2)]
            blocks += [BasicBlock(width, width) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        # END YOUR CODE
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, config.num_classes)
        self.apply(_init_conv)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> pooled features (N, feature_dim)."""
        # BEGIN YOUR CODE
        return self.pool(self.stages(self.stem(x))).flatten(1)
        # END YOUR CODE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> class scores (N, num_classes) (or whatever the head gives)."""
        # BEGIN YOUR CODE
        return self.head(self.features(x))
        # END YOUR CODE


class AudioCNN(nn.Module):
    """Audio features (N, frames, n_features) -> class scores. Time is the convolution axis;
    the coefficients are the input channels. Every layer after the first halves the frames
    (stride 2), so any number of frames ≥ 1 works; global average pooling over time."""

    def __init__(self, config: AudioCNNConfig) -> None:
        super().__init__()
        self.config = config
        # BEGIN YOUR CODE
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
        # END YOUR CODE
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
        # BEGIN YOUR CODE
        return self.pool(self.body(x.transpose(1, 2))).flatten(1)  # time is the conv axis
        # END YOUR CODE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, frames, n_features) -> class scores (N, num_classes)."""
        # BEGIN YOUR CODE
        return self.head(self.features(x))
        # END YOUR CODE


def _init_conv(module: nn.Module) -> None:
    """He initialisation for convolutions feeding ReLUs (as torchvision's ResNet)."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
