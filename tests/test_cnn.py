"""minimod.models.cnn: the ResNet and the 1-D AudioCNN against torch.nn twins: the ResNet's is
benchmarks/twins.py's (the one the benchmark times), the AudioCNN's is written here.

Each twin has minimod's module names (stem.0/1, stages.i.j.conv1/bn1/conv2/bn2/shortcut.0/1,
head; body.k for the AudioCNN), loads minimod's state_dict strictly, and must give the same
outputs, gradients and batch-norm buffers in training and then in eval mode.

Tolerance: strategies.TOLERANCES times 10 (float64 rtol 1e-8 / atol 1e-9, float32 rtol 1e-3 /
atol 1e-4): up to a dozen convolutions and batch norms in a row, each batch norm dividing by a
batch standard deviation, compound the rounding of both implementations (the observed
differences are within TOLERANCES itself; the factor is margin).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
import minimod.models.cnn
from benchmarks.twins import TwinResNet
from compare import assert_same_forward_backward, tolerance
from strategies import seeds

FACTOR = 10.0
cnn = impl.cnn  # ResNet, AudioCNN, … as implemented under test (--impl)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


# -- the torch.nn twins ----------------------------------------------------------------------


class TwinAudioCNN(torch.nn.Module):
    def __init__(self, n_features, num_classes, widths, kernel_size) -> None:
        super().__init__()
        nn = torch.nn
        layers, channels = [], n_features
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            layers += [
                nn.Conv1d(channels, width, kernel_size, stride, kernel_size // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):  # (N, frames, n_features)
        return self.head(self.body(x.transpose(1, 2)).mean(-1))


def resnet_pair(in_channels, num_classes, widths, depths, dtype):
    config = cnn.ResNetConfig(
        in_channels=in_channels, num_classes=num_classes, widths=widths, depths=depths
    )
    mine = cnn.ResNet(config).to(dtype)
    twin = TwinResNet(config).to(dtype)
    return mine, twin


RESNET_HINT = (
    "each block is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): the ReLU after the "
    "addition, the stride on conv1, and a strided 1×1 conv + BN shortcut only where the shape "
    "changes (stride ≠ 1 or a new width)"
)
AUDIO_HINT = "Conv1d wants (N, channels, length): transpose the (N, frames, features) input"
LAYOUT_HINT = (
    "the state_dict keys differ from the torchvision-style twin's: a projection shortcut only "
    "where the shape changes, and blocks registered in nn.Sequential (a Python list registers "
    "nothing)"
)


def assert_matches_twin_in_train_then_eval(mine, twin, x: torch.Tensor, hint: str) -> None:
    """Strict load into the twin; the eval outputs (with ``hint`` on a difference, before any
    buffer changes); one training step (outputs, every gradient, the buffers) then eval mode
    (outputs and gradients)."""
    try:
        twin.load_state_dict(mine.state_dict(), strict=True)
    except RuntimeError as error:
        raise AssertionError(f"{LAYOUT_HINT}\n{error}") from error
    mine.eval()
    twin.eval()
    with torch.no_grad():
        try:
            out = mine(x)
        except (RuntimeError, ValueError) as error:
            raise AssertionError(f"{hint}\n{type(error).__name__}: {error}") from error
        torch.testing.assert_close(
            out, twin(x), **tolerance(x.dtype, FACTOR), msg=lambda m: f"{hint}\n{m}"
        )
    params = list(mine.named_parameters()), list(twin.named_parameters())
    mine.train()
    twin.train()
    assert_same_forward_backward(mine, twin, [x], *params, factor=FACTOR)
    theirs = dict(twin.named_buffers())
    ours = dict(mine.named_buffers())
    assert sorted(ours) == sorted(theirs)
    for name, buffer in ours.items():
        tol = tolerance(x.dtype, FACTOR) if buffer.is_floating_point() else dict(rtol=0, atol=0)
        torch.testing.assert_close(
            buffer, theirs[name], **tol, msg=lambda m, n=name: f"buffer {n} differs\n{m}"
        )
    mine.zero_grad()
    twin.zero_grad()
    mine.eval()
    twin.eval()
    assert_same_forward_backward(mine, twin, [x], *params, factor=FACTOR)


# -- ResNet ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "in_channels, side, widths, depths, dtype",
    [
        (1, 8, (4,), (1,), torch.float64),
        (1, 8, (4, 6, 8), (1, 2, 1), torch.float64),
        (3, 10, (3, 5), (2, 1), torch.float32),
        (3, 32, (16, 32, 64), (1, 1, 1), torch.float32),  # the default widths, CIFAR-sized
        (3, 64, (4, 8, 8), (1, 1, 2), torch.float64),
    ],
)
def test_resnet_matches_torch_twin(in_channels, side, widths, depths, dtype):
    mine, twin = resnet_pair(in_channels, 5, widths, depths, dtype)
    x = randn((2, in_channels, side, side), dtype, side)
    assert_matches_twin_in_train_then_eval(mine, twin, x, RESNET_HINT)


def test_resnet_state_dict_layout():
    mine, twin = resnet_pair(3, 10, (4, 8), (2, 1), torch.float32)
    ours = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert ours == theirs, f"{LAYOUT_HINT}: {sorted(set(ours) ^ set(theirs))}"
    for key in (
        "stem.0.weight",
        "stem.1.running_var",
        "stages.0.1.conv2.weight",
        "stages.1.0.shortcut.0.weight",
        "stages.1.0.shortcut.1.num_batches_tracked",
        "head.bias",
    ):
        assert key in ours, f"missing {key}"
    assert not any(k.startswith("stages.0.0.shortcut") for k in ours), (
        "the first block keeps its shape: its shortcut is the identity (no parameters)"
    )
    # and the other way round: minimod loads the twin's weights strictly
    twin.eval()
    mine.load_state_dict(twin.state_dict())
    mine.eval()
    x = randn((2, 3, 8, 8), torch.float32, 0)
    with torch.no_grad():
        try:
            out = mine(x)
        except NotImplementedError:  # a stub: the learner has not written it yet
            raise
        except RuntimeError as error:
            raise AssertionError(f"{RESNET_HINT}\nRuntimeError: {error}") from error
        torch.testing.assert_close(
            out, twin(x), **tolerance(torch.float32, FACTOR), msg=lambda m: f"{RESNET_HINT}\n{m}"
        )


@pytest.mark.parametrize("in_channels, side", [(1, 8), (3, 32), (3, 64)])
def test_resnet_features_and_output_shapes(in_channels, side):
    config = cnn.ResNetConfig(in_channels=in_channels, num_classes=7, widths=(4, 6), depths=(1, 1))
    model = cnn.ResNet(config)
    x = randn((2, in_channels, side, side), torch.float32, 0)
    assert model.feature_dim == 6
    assert tuple(model.features(x).shape) == (2, 6)
    assert tuple(model(x).shape) == (2, 7)
    model.eval()
    assert tuple(model(x[:1]).shape) == (1, 7), "eval mode takes a single image"


def test_replacing_the_head():
    model = cnn.ResNet(
        cnn.ResNetConfig(in_channels=1, num_classes=10, widths=(4, 6), depths=(1, 1))
    )
    x = randn((3, 1, 8, 8), torch.float32, 0)
    model.head = impl.nn.Linear(model.feature_dim, 3)
    assert tuple(model(x).shape) == (3, 3)
    assert tuple(model.state_dict()["head.weight"].shape) == (3, 6)
    model.head = impl.nn.Sequential(
        impl.nn.Linear(model.feature_dim, 5), impl.nn.ReLU(), impl.nn.Linear(5, 2)
    )
    keys = [k for k in model.state_dict() if k.startswith("head.")]
    assert keys == ["head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"]
    assert tuple(model(x).shape) == (3, 2)
    # the body is untouched: features are unchanged by a new head
    model.eval()
    features = model.features(x)
    model.head = impl.nn.Linear(model.feature_dim, 4)
    torch.testing.assert_close(model.features(x), features, rtol=0, atol=0)


def test_freezing_the_body_leaves_only_head_gradients():
    model = cnn.ResNet(cnn.ResNetConfig(in_channels=1, num_classes=3, widths=(4, 6), depths=(1, 1)))
    model.requires_grad_(False)
    model.head.requires_grad_(True)
    model(randn((4, 1, 8, 8), torch.float32, 0)).square().sum().backward()
    with_grad = sorted(name for name, p in model.named_parameters() if p.grad is not None)
    assert with_grad == ["head.bias", "head.weight"]
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert sorted(trainable) == ["head.bias", "head.weight"]


def test_default_config_builds_and_runs():
    model = cnn.ResNet(cnn.ResNetConfig())
    assert tuple(model(randn((2, 3, 8, 8), torch.float32, 0)).shape) == (2, 10)
    assert model.feature_dim == 64


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(widths=(4, 8), depths=(1,)),
        dict(widths=(), depths=()),
        dict(widths=(0,), depths=(1,)),
        dict(widths=(4,), depths=(0,)),
    ],
)
def test_resnet_config_validation(kwargs):
    with pytest.raises(ValueError, match="ResNetConfig"):
        minimod.models.cnn.ResNetConfig(**kwargs)


def test_training_smoke_separates_two_patterns():
    """Vertical vs horizontal stripes under noise: a tiny ResNet learns them in 25 full-batch
    steps (about 0.2 s alone; no timing assertion, which would be flaky on a shared machine)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    stripes = (torch.arange(8) % 2).float() * 2 - 1
    vertical, horizontal = stripes.expand(8, 8), stripes[:, None].expand(8, 8)
    images = torch.where(labels[:, None, None] == 0, vertical, horizontal)
    images = images + 0.5 * torch.randn(64, 8, 8, generator=generator)
    images = images[:, None]  # (64, 1, 8, 8)
    model = cnn.ResNet(cnn.ResNetConfig(in_channels=1, num_classes=2, widths=(4, 8), depths=(1, 1)))
    optimizer = impl.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = impl.F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(images).argmax(-1) == labels).float().mean().item()
    assert losses[-1] < 0.5 * losses[0], (
        f"loss did not go down: {losses[0]:.3f} -> {losses[-1]:.3f}"
    )
    assert accuracy >= 0.95, f"train accuracy {accuracy:.2f} in eval mode"


# -- AudioCNN --------------------------------------------------------------------------------

AUDIO = dict(n_features=6, num_classes=4, widths=(4, 6, 5), kernel_size=3)


def audio_pair(dtype):
    mine = cnn.AudioCNN(cnn.AudioCNNConfig(**AUDIO)).to(dtype)
    return mine, TwinAudioCNN(**AUDIO).to(dtype)


@given(frames=st.integers(1, 50), batch=st.integers(2, 3), seed=seeds)
@example(frames=1, batch=2, seed=0)
@example(frames=2, batch=2, seed=0)
@example(frames=50, batch=3, seed=1)
def test_audio_cnn_matches_torch_twin(frames, batch, seed):
    mine, twin = audio_pair(torch.float64)
    x = randn((batch, frames, AUDIO["n_features"]), torch.float64, seed)
    assert_matches_twin_in_train_then_eval(mine, twin, x, AUDIO_HINT)


@pytest.mark.parametrize("frames", [1, 3, 16, 50])
def test_audio_cnn_shapes(frames):
    model = cnn.AudioCNN(cnn.AudioCNNConfig(**AUDIO))
    x = randn((2, frames, AUDIO["n_features"]), torch.float32, 0)
    assert tuple(model.features(x).shape) == (2, model.feature_dim) == (2, 5)
    assert tuple(model(x).shape) == (2, 4)
    model.eval()
    assert tuple(model(x[:1]).shape) == (1, 4)
    model.head = impl.nn.Linear(model.feature_dim, 9)
    assert tuple(model(x).shape) == (2, 9)


def test_audio_cnn_default_config():
    model = cnn.AudioCNN(cnn.AudioCNNConfig())
    assert tuple(model(randn((2, 20, 40), torch.float32, 0)).shape) == (2, 10)
    twin = TwinAudioCNN(40, 10, (32, 64, 64), 5)
    twin.load_state_dict(model.state_dict(), strict=True)


@pytest.mark.reference_only
def test_audio_cnn_bad_shapes_name_the_model():
    model = minimod.models.cnn.AudioCNN(minimod.models.cnn.AudioCNNConfig(**AUDIO))
    for shape in [(2, 10), (2, 10, 5), (2, 6, 10), (1, 2, 10, 6)]:
        with pytest.raises(
            ValueError, match=r"AudioCNN: expected features of shape \(N, frames, 6\)"
        ):
            model(torch.randn(shape))


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "kwargs", [dict(kernel_size=4), dict(kernel_size=0), dict(kernel_size=-1), dict(widths=(4, 0))]
)
def test_audio_cnn_config_validation(kwargs):
    with pytest.raises(ValueError, match="AudioCNNConfig"):
        minimod.models.cnn.AudioCNNConfig(**kwargs)
