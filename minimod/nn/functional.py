"""Every minimod function in one namespace, like torch.nn.functional: ``F.gelu(x)``.

Each function is written next to its module class (``linear`` in linear.py, ``layer_norm`` in
norm.py, …); this file only gathers them.
"""

from minimod.nn.activation import gelu, log_softmax, relu, sigmoid, silu, softmax, tanh
from minimod.nn.attention import scaled_dot_product_attention
from minimod.nn.batchnorm import batch_norm
from minimod.nn.conv import conv1d, conv2d
from minimod.nn.ctc import ctc_loss
from minimod.nn.dropout import dropout
from minimod.nn.embedding import embedding
from minimod.nn.flash_attention import flash_attention
from minimod.nn.linear import linear
from minimod.nn.loss import binary_cross_entropy_with_logits, cross_entropy, focal_loss, mse_loss
from minimod.nn.norm import layer_norm, rms_norm
from minimod.nn.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    max_unpool1d,
    max_unpool2d,
)

__all__ = [
    "max_pool2d",
    "max_pool1d",
    "max_unpool2d",
    "max_unpool1d",
    "conv2d",
    "conv1d",
    "batch_norm",
    "avg_pool2d",
    "avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool1d",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "ctc_loss",
    "dropout",
    "embedding",
    "flash_attention",
    "focal_loss",
    "gelu",
    "layer_norm",
    "linear",
    "log_softmax",
    "mse_loss",
    "relu",
    "rms_norm",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "softmax",
    "tanh",
]
