"""Bad input gets an error that names the layer and what it expected (minimod's own promise).

The regexes check the layer's name and the numbers involved, never the exact sentence, so the
wording can improve without breaking these tests. Not a lesson property: reference only.
"""

from __future__ import annotations

import re

import pytest
import torch

import minimod.nn as nn
import minimod.nn.functional as F

pytestmark = pytest.mark.reference_only


def mentions(*parts: str, ignore_case: bool = False) -> str:
    """A regex matching a message that contains every part (in any order), each as a whole
    word or number: ``mentions("Linear", "64")`` matches "Linear(...): expected 64, got 32"."""
    flags = "(?is)" if ignore_case else "(?s)"
    return flags + "".join(rf"(?=.*(?<![\w.]){re.escape(p)}(?![\w]))" for p in parts)


def test_mentions_is_strict_about_numbers():
    assert re.search(mentions("Linear", "64", "32"), "Linear(64): got shape (2, 32)")
    assert not re.search(mentions("64"), "expected 640")
    assert not re.search(mentions("32"), "got 1.32")
    assert not re.search(mentions("Linear"), "linear")
    assert re.search(mentions("(5,)", "-1"), "shape (5,) and id -1")


# -- Linear ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 32), (32,), (3, 2, 32)])
def test_linear_wrong_last_dimension(shape):
    layer = nn.Linear(in_features=64, out_features=10)
    with pytest.raises(ValueError, match=mentions("Linear", "64", "32")):
        layer(torch.randn(shape))


def test_linear_integer_input():
    with pytest.raises(TypeError, match=mentions("Linear") + r"(?=.*float)"):
        nn.Linear(4, 2)(torch.ones(3, 4, dtype=torch.long))


def test_linear_not_a_tensor():
    with pytest.raises(TypeError, match=mentions("Linear", "list")):
        nn.Linear(2, 2)([[1.0, 2.0]])


def test_linear_scalar_input():
    with pytest.raises(ValueError, match=mentions("Linear", "3")):
        nn.Linear(3, 2)(torch.tensor(1.0))


# -- normalisation --------------------------------------------------------------------------------


def test_layer_norm_wrong_trailing_dimension():
    with pytest.raises(ValueError, match=mentions("LayerNorm", "8", "(2, 4)")):
        nn.LayerNorm(8)(torch.randn(2, 4))


def test_layer_norm_wrong_trailing_shape_of_several_dims():
    with pytest.raises(ValueError, match=mentions("LayerNorm", "(3, 4)", "(2, 4, 3)")):
        nn.LayerNorm((3, 4))(torch.randn(2, 4, 3))


def test_layer_norm_input_with_too_few_dimensions():
    with pytest.raises(ValueError, match=mentions("LayerNorm", "(2, 3)", "(3,)")):
        nn.LayerNorm((2, 3))(torch.randn(3))


def test_functional_layer_norm_wrong_shape():
    with pytest.raises(ValueError, match=mentions("layer_norm", "5", "(2, 6)")):
        F.layer_norm(torch.randn(2, 6), (5,))


def test_rms_norm_wrong_trailing_dimension():
    with pytest.raises(ValueError, match=mentions("RMSNorm", "8", "(2, 5)")):
        nn.RMSNorm(8)(torch.randn(2, 5))


def test_functional_rms_norm_wrong_shape():
    with pytest.raises(ValueError, match=mentions("rms_norm", "4", "(3, 2)")):
        F.rms_norm(torch.randn(3, 2), (4,))


# -- Embedding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
def test_embedding_non_integer_ids(dtype):
    with pytest.raises(TypeError, match=mentions("Embedding", "integer", ignore_case=True)):
        nn.Embedding(10, 3)(torch.zeros(2, 3, dtype=dtype))


@pytest.mark.parametrize("bad_id", [10, 12, -1])
def test_embedding_id_out_of_range_names_the_vocabulary_size(bad_id):
    ids = torch.tensor([[0, 3], [bad_id, 9]])
    with pytest.raises((IndexError, ValueError), match=mentions("Embedding", str(bad_id), "10")):
        nn.Embedding(num_embeddings=10, embedding_dim=3)(ids)


def test_embedding_padding_idx_out_of_range():
    with pytest.raises(ValueError, match=mentions("Embedding", "padding_idx", "7", "5")):
        nn.Embedding(5, 2, padding_idx=7)


# -- losses ---------------------------------------------------------------------------------------


def test_cross_entropy_target_shape_mismatch():
    logits, target = torch.randn(4, 3), torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match=mentions("cross_entropy", "(4,)", "(5,)")):
        F.cross_entropy(logits, target)
    with pytest.raises(ValueError, match=mentions("(4,)", "(5,)")):
        nn.CrossEntropyLoss()(logits, target)


def test_cross_entropy_spatial_target_shape_mismatch():
    logits, target = torch.randn(2, 3, 5), torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=mentions("cross_entropy", "(2, 5)", "(2, 3)")):
        F.cross_entropy(logits, target)


@pytest.mark.parametrize("bad", [3, 7, -2])
def test_cross_entropy_class_index_out_of_range(bad):
    logits, target = torch.randn(3, 3), torch.tensor([0, bad, 1])
    with pytest.raises((IndexError, ValueError), match=mentions("cross_entropy", str(bad), "3")):
        F.cross_entropy(logits, target)


def test_cross_entropy_ignore_index_is_not_out_of_range():
    loss = F.cross_entropy(torch.randn(2, 3), torch.tensor([1, -100]))
    assert torch.isfinite(loss)


def test_cross_entropy_float_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match=mentions("cross_entropy", "(4, 3)", "(4, 2)")):
        F.cross_entropy(torch.randn(4, 3), torch.rand(4, 2))


def test_cross_entropy_class_weight_of_the_wrong_shape():
    with pytest.raises(ValueError, match=mentions("cross_entropy", "weight", "(3,)", "(4,)")):
        F.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), weight=torch.ones(4))


@pytest.mark.parametrize(
    "where, call",
    [
        (
            "cross_entropy",
            lambda: F.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="average"),
        ),
        ("MSELoss", lambda: nn.MSELoss(reduction="average")),
        ("mse_loss", lambda: F.mse_loss(torch.ones(2), torch.ones(2), reduction="average")),
    ],
)
def test_unknown_reduction(where, call):
    with pytest.raises(ValueError, match=mentions(where, "average", "mean")):
        call()


def test_mse_loss_shape_mismatch_is_not_broadcast():
    with pytest.raises(ValueError, match=mentions("mse_loss", "(4, 1)", "(4,)")):
        F.mse_loss(torch.randn(4, 1), torch.randn(4))


def test_binary_cross_entropy_shape_mismatch():
    with pytest.raises(
        ValueError, match=mentions("binary_cross_entropy_with_logits", "(3,)", "(3, 1)")
    ):
        F.binary_cross_entropy_with_logits(torch.randn(3), torch.rand(3, 1))


# -- Dropout --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1.5, -0.1])
def test_dropout_probability_outside_unit_interval(p):
    with pytest.raises(ValueError, match=mentions("Dropout", str(p))):
        nn.Dropout(p)
    with pytest.raises(ValueError, match=mentions("dropout", str(p))):
        F.dropout(torch.ones(3), p=p)


# -- softmax --------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [2, -3, 5])
def test_softmax_dim_out_of_range(function, dim):
    with pytest.raises((IndexError, ValueError), match=mentions(function, str(dim))):
        getattr(F, function)(torch.randn(2, 3), dim=dim)


@pytest.mark.parametrize("layer, function", [("Softmax", "softmax"), ("LogSoftmax", "log_softmax")])
def test_softmax_module_dim_out_of_range(layer, function):
    # The layer's name or its function's name will do: both point at the right place.
    named = rf"(?=.*(?:\b{layer}\b|\b{function}\b))"
    with pytest.raises((IndexError, ValueError), match=mentions("3") + named):
        getattr(nn, layer)(dim=3)(torch.randn(2, 3))


# -- a list where a tensor belongs ---------------------------------------------------------------

A_LIST = [[1.0, 2.0], [3.0, 4.0]]
FUNCTIONS_OF_A_LIST = {
    "relu": lambda x: F.relu(x),
    "gelu": lambda x: F.gelu(x),
    "silu": lambda x: F.silu(x),
    "sigmoid": lambda x: F.sigmoid(x),
    "tanh": lambda x: F.tanh(x),
    "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: F.log_softmax(x, -1),
    "dropout": lambda x: F.dropout(x),
    "linear": lambda x: F.linear(x, torch.ones(2, 2)),
    "layer_norm": lambda x: F.layer_norm(x, (2,)),
    "rms_norm": lambda x: F.rms_norm(x, (2,)),
    "batch_norm": lambda x: F.batch_norm(x, None, None, training=True),
    "cross_entropy": lambda x: F.cross_entropy(x, torch.tensor([0, 1])),
    "focal_loss": lambda x: F.focal_loss(x, torch.tensor([0, 1])),
    "mse_loss": lambda x: F.mse_loss(x, torch.ones(2, 2)),
    "binary_cross_entropy_with_logits": (
        lambda x: F.binary_cross_entropy_with_logits(x, torch.ones(2, 2))
    ),
    "max_pool2d": lambda x: F.max_pool2d(x, 1),
    "max_pool1d": lambda x: F.max_pool1d(x, 1),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 1),
    "avg_pool1d": lambda x: F.avg_pool1d(x, 1),
    "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 1),
    "adaptive_avg_pool1d": lambda x: F.adaptive_avg_pool1d(x, 1),
    "max_unpool2d": lambda x: F.max_unpool2d(x, torch.zeros(2, 2, dtype=torch.long), 1),
    "max_unpool1d": lambda x: F.max_unpool1d(x, torch.zeros(2, 2, dtype=torch.long), 1),
}
MODULES_OF_A_LIST = {  # a layer, and the function its error may name instead
    "ReLU": (lambda: nn.ReLU(), "relu"),
    "GELU": (lambda: nn.GELU(), "gelu"),
    "Softmax": (lambda: nn.Softmax(-1), "softmax"),
    "Dropout": (lambda: nn.Dropout(), "dropout"),
    "LayerNorm": (lambda: nn.LayerNorm(2), "layer_norm"),
    "RMSNorm": (lambda: nn.RMSNorm(2), "rms_norm"),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(2), "batch_norm"),
    "MaxPool2d": (lambda: nn.MaxPool2d(1), "max_pool2d"),
    "AvgPool1d": (lambda: nn.AvgPool1d(1), "avg_pool1d"),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(1), "adaptive_avg_pool2d"),
    "MaxUnpool2d": (lambda: nn.MaxUnpool2d(1), "max_unpool2d"),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(), "cross_entropy"),
}


@pytest.mark.parametrize("name", FUNCTIONS_OF_A_LIST)
def test_a_list_instead_of_a_tensor_is_a_type_error(name):
    with pytest.raises(TypeError, match=mentions(name, "list")):
        FUNCTIONS_OF_A_LIST[name](A_LIST)


@pytest.mark.parametrize("name", MODULES_OF_A_LIST)
def test_a_list_into_a_layer_is_a_type_error(name):
    make, function = MODULES_OF_A_LIST[name]
    named = rf"(?=.*(?:\b{name}\b|\b{function}\b))"
    arguments = (
        (A_LIST, torch.zeros(2, 2, dtype=torch.long))
        if name.endswith(("Unpool2d", "Loss"))
        else (A_LIST,)
    )
    with pytest.raises(TypeError, match=mentions("list") + named):
        make()(*arguments)


def test_max_unpool_index_past_the_output():
    values, indices = torch.ones(1, 1, 2, 2), torch.tensor([[[[0, 1], [2, 9]]]])
    with pytest.raises(ValueError, match=mentions("max_unpool2d", "9")):
        F.max_unpool2d(values, indices, 1)


# -- attention and loading ------------------------------------------------------------------------


def test_attention_heads_must_divide_width():
    with pytest.raises(ValueError, match=mentions("MultiheadAttention", "10", "3")):
        nn.MultiheadAttention(embed_dim=10, num_heads=3)


def test_load_state_dict_names_key_and_both_shapes():
    layer = nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 3), "bias": torch.zeros(5)}
    with pytest.raises(RuntimeError, match=mentions("bias", "(5,)", "(2,)")):
        layer.load_state_dict(state)
