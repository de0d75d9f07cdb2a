"""Lesson 16's pitfalls: ResNet and the audio CNN."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_cnn.py::"
TWIN = (T + "test_resnet_matches_torch_twin",)

MUTANTS = [
    Mutant(
        "relu(bn2(conv2(y))) + x",
        "return self.relu(y + self.shortcut(x))",
        "return self.relu(y) + self.shortcut(x)",
        "the ReLU after the addition",
        TWIN,
    ),
    Mutant(
        "A shortcut without the stride",
        "conv_bn(in_channels, out_channels, 1, stride) if changes_shape",
        "conv_bn(in_channels, out_channels, 1) if changes_shape",
        "a strided 1×1 conv + BN shortcut",
        TWIN,
    ),
    Mutant(
        "A shortcut without the stride",
        "changes_shape = stride != 1 or in_channels != out_channels",
        "changes_shape = True",
        "a projection shortcut only where the shape changes",
        TWIN,
    ),
    Mutant(
        "The stride on conv2 instead of conv1",
        "self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)\n"
        "        self.bn1 = nn.BatchNorm2d(out_channels)\n"
        "        self.relu = nn.ReLU()\n"
        "        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)",
        "self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)\n"
        "        self.bn1 = nn.BatchNorm2d(out_channels)\n"
        "        self.relu = nn.ReLU()\n"
        "        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False)",
        "the stride on conv1",
        TWIN,
    ),
    Mutant(
        "Blocks kept in a Python list",
        "self.stages = nn.Sequential(*stages)",
        "self.blocks = stages\n"
        "        self.stages = lambda x: [x := stage(x) for stage in self.blocks][-1]",
        "a Python list registers nothing",
        TWIN,
    ),
    Mutant(
        "AudioCNN without the transpose",
        "return self.pool(self.body(x.transpose(1, 2))).flatten(1)",
        "return self.pool(self.body(x)).flatten(1)",
        "transpose the (N, frames, features) input",
        (T + "test_audio_cnn_matches_torch_twin",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Evaluating in train mode",
        "a mistake in the code that evaluates a model (model.eval() forgotten), not in the "
        "model this lesson writes; lesson 15's tests check eval mode's running statistics",
    ),
]
