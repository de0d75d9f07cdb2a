"""minimod's layers driven with PyTorch's own sample inputs: the samples torch tests its own
operators (``common_methods_invocations.op_db``) and modules (``common_modules.module_db``) with.

Compared, in float64 on the CPU: values and the gradients of every floating input that requires
one (the input, and weights passed as arguments), and for modules the gradients of their
parameters too, after the minimod layer has loaded the torch twin's state_dict.

    functions: relu, gelu, silu, sigmoid, tanh, softmax, log_softmax, linear, layer_norm,
        rms_norm, batch_norm, dropout, cross_entropy, mse_loss,
        binary_cross_entropy_with_logits, conv1d, conv2d, max_pool1d/2d, avg_pool1d/2d,
        adaptive_avg_pool1d/2d, max_unpool1d/2d
    modules: Linear, ReLU, GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax, LayerNorm, RMSNorm,
        Dropout, BatchNorm1d/2d, Conv1d/2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d,
        CrossEntropyLoss, MSELoss, BCEWithLogitsLoss, in training and in evaluation

Skipped, as a feature minimod does not claim: dropout's random masks (training with p > 0: no
two generators draw the same mask). Some ops come with hundreds of samples (max pooling over a
thousand): every k-th is taken so that one op or module runs at most SAMPLES_PER_OP of them.
torch's test helpers need the ``expecttest`` package (the ``dev`` extra installs it).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_modules import module_db

import impl
from compare import tolerance

pytestmark = [
    pytest.mark.reference_only,
    pytest.mark.filterwarnings("ignore:Using padding='same'"),  # torch's own conv2d remark
]

SAMPLES_PER_OP = 40
DTYPE = torch.float64
# op_db's name -> minimod.nn.functional's
FUNCTIONS = {
    "nn.functional.relu": "relu",
    "nn.functional.gelu": "gelu",
    "nn.functional.silu": "silu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "nn.functional.linear": "linear",
    "nn.functional.layer_norm": "layer_norm",
    "nn.functional.rms_norm": "rms_norm",
    "nn.functional.batch_norm": "batch_norm",
    "nn.functional.dropout": "dropout",
    "nn.functional.cross_entropy": "cross_entropy",
    "nn.functional.mse_loss": "mse_loss",
    "nn.functional.binary_cross_entropy_with_logits": "binary_cross_entropy_with_logits",
    "nn.functional.conv1d": "conv1d",
    "nn.functional.conv2d": "conv2d",
    "nn.functional.max_pool1d": "max_pool1d",
    "nn.functional.max_pool2d": "max_pool2d",
    "nn.functional.avg_pool1d": "avg_pool1d",
    "nn.functional.avg_pool2d": "avg_pool2d",
    "nn.functional.adaptive_avg_pool1d": "adaptive_avg_pool1d",
    "nn.functional.adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "nn.functional.max_unpool1d": "max_unpool1d",
    "nn.functional.max_unpool2d": "max_unpool2d",
}
MODULES = (
    "Linear ReLU GELU SiLU Sigmoid Tanh Softmax LogSoftmax LayerNorm RMSNorm Dropout BatchNorm1d "
    "BatchNorm2d Conv1d Conv2d MaxPool1d MaxPool2d AvgPool1d AvgPool2d AdaptiveAvgPool1d "
    "AdaptiveAvgPool2d CrossEntropyLoss MSELoss BCEWithLogitsLoss"
).split()
OP_INFOS = [op for op in op_db if op.name in FUNCTIONS]
MODULE_INFOS = [info for info in module_db if info.module_cls.__name__ in MODULES]


def _every_kth(samples: list) -> list:
    return samples[:: math.ceil(len(samples) / SAMPLES_PER_OP)] if samples else samples


def _describe(value):
    """A sample as it reads in a failure: tensors by shape and dtype."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}:{str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (list, tuple)):
        return type(value)(_describe(v) for v in value)
    if isinstance(value, dict):
        return {k: _describe(v) for k, v in value.items()}
    return value


def _floating(output) -> list[torch.Tensor]:
    """The floating-point tensors of an output (a tensor, or a tuple such as (values, indices))."""
    outputs = output if isinstance(output, tuple) else (output,)
    return [t for t in outputs if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _assert_same(mine, theirs, leaves: list, their_leaves: list | None = None, where="") -> None:
    """Same values; then the same gradients of one fixed weighting of the outputs w.r.t. leaves
    (their_leaves for torch's output, when its leaves are its own: a module's parameters)."""
    ours, expected = _floating(mine), _floating(theirs)
    assert len(ours) == len(expected), f"{where}: {len(ours)} outputs, torch's {len(expected)}"
    tol = dict(equal_nan=True, **tolerance(DTYPE))
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"{where}: values differ\n{m}")
    if not leaves or not any(b.requires_grad for b in expected):
        return
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(b.shape, dtype=b.dtype, generator=generator) for b in expected]

    def gradients(outputs, leaves):
        terms = [(o * w).sum() for o, w in zip(outputs, weights, strict=True) if o.requires_grad]
        assert terms, f"{where}: no output carries a gradient, torch's does"
        return torch.autograd.grad(sum(terms), leaves, allow_unused=True)

    their_leaves = leaves if their_leaves is None else their_leaves
    pairs = zip(gradients(ours, leaves), gradients(expected, their_leaves), strict=True)
    for i, (a, b) in enumerate(pairs):
        if b is None:
            continue
        assert a is not None, f"{where}: no gradient for input {i}, torch has one"
        torch.testing.assert_close(
            a, b, **tol, msg=lambda m, i=i: f"{where}: gradient of input {i} differs\n{m}"
        )


def _leaves(*values) -> list[torch.Tensor]:
    leaves = []
    for value in values:
        if isinstance(value, torch.Tensor) and value.requires_grad and value.is_leaf:
            leaves.append(value)
        elif isinstance(value, (list, tuple)):
            leaves += _leaves(*value)
    return leaves


def _random(op_name: str, kwargs: dict, args: tuple) -> bool:
    """A dropout sample that draws a mask (training with p > 0)."""
    if op_name != "nn.functional.dropout":
        return False
    p = kwargs.get("p", args[0] if args else 0.5)
    return kwargs.get("training", args[1] if len(args) > 1 else True) and p > 0


@pytest.mark.parametrize("op", OP_INFOS, ids=[f"{o.name}.{o.variant_test_name}" for o in OP_INFOS])
def test_function_matches_torch_on_its_samples(op):
    mine = getattr(impl.F, FUNCTIONS[op.name])
    compared = 0
    for sample in _every_kth(list(op.sample_inputs("cpu", DTYPE, requires_grad=True))):
        args, kwargs = (sample.input, *sample.args), sample.kwargs
        if _random(op.name, kwargs, sample.args):
            continue
        where = f"{op.name}{_describe(args)} {_describe(kwargs)}"
        ours, theirs = mine(*args, **kwargs), op.op(*args, **kwargs)
        _assert_same(ours, theirs, _leaves(args, kwargs), where=where)
        compared += 1
    assert compared, f"{op.name}: no sample compared"


def _module_cases():
    for info in MODULE_INFOS:
        for training in (True, False):
            yield pytest.param(info, training, id=f"{info.module_cls.__name__}-train={training}")


@pytest.mark.parametrize("info, training", list(_module_cases()))
def test_module_matches_torch_on_its_samples(info, training):
    name = info.module_cls.__name__
    compared = 0
    inputs = info.module_inputs_func(
        info, device="cpu", dtype=DTYPE, requires_grad=True, training=training
    )
    for module_input in _every_kth(list(inputs)):
        construct, forward = module_input.constructor_input, module_input.forward_input
        if forward is None:
            continue
        if name == "Dropout" and training and construct.kwargs.get("p", 0.5) > 0:
            continue  # random masks
        where = f"{name}({_describe(construct.args)}, {_describe(construct.kwargs)})"
        twin = info.module_cls(*construct.args, **construct.kwargs).to(DTYPE).train(training)
        mine = getattr(impl.nn, name)(*construct.args, **construct.kwargs).to(DTYPE)
        mine.train(training).load_state_dict(twin.state_dict())
        where += f" on {_describe(forward.args)} {_describe(forward.kwargs)}"
        ours = mine(*forward.args, **forward.kwargs)
        theirs = twin(*forward.args, **forward.kwargs)
        # Gradients of the inputs and of each side's own parameters, in the order of torch's.
        inputs = _leaves(forward.args, forward.kwargs)
        names = [name for name, _ in twin.named_parameters()]
        own = dict(mine.named_parameters())
        assert sorted(own) == sorted(names), f"{where}: parameters {sorted(own)}, torch's {names}"
        their = dict(twin.named_parameters())
        _assert_same(
            ours,
            theirs,
            inputs + [own[n] for n in names],
            inputs + [their[n] for n in names],
            where,
        )
        for key, value in twin.state_dict().items():  # running statistics
            torch.testing.assert_close(mine.state_dict()[key], value, **tolerance(DTYPE))
        compared += 1
    assert compared, f"{name}: no sample compared"
