"""minimod.nn: the Module system, layers and losses, written with tensor ops only."""

from minimod.nn import functional, init, utils
from minimod.nn.activation import GELU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh
from minimod.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minimod.nn.containers import ModuleDict, ModuleList, Sequential
from minimod.nn.conv import Conv1d, Conv2d
from minimod.nn.ctc import CTCLoss
from minimod.nn.dropout import Dropout
from minimod.nn.embedding import Embedding
from minimod.nn.linear import Linear
from minimod.nn.lora import LoRALinear, apply_lora, load_lora, lora_state_dict, merge_lora
from minimod.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, FocalLoss, MSELoss
from minimod.nn.module import LoadResult, Module, Parameter
from minimod.nn.multihead import MultiheadAttention
from minimod.nn.norm import LayerNorm, RMSNorm
from minimod.nn.pool import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
    MaxUnpool1d,
    MaxUnpool2d,
)
from minimod.nn.positional import LearnedPositional, RotaryEmbedding, SinusoidalPositional
from minimod.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from minimod.nn.shape import Flatten, Identity

__all__ = [
    "MaxPool2d",
    "MaxPool1d",
    "MaxUnpool2d",
    "MaxUnpool1d",
    "Conv2d",
    "Conv1d",
    "BatchNorm2d",
    "BatchNorm1d",
    "AvgPool2d",
    "AvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool1d",
    "BCEWithLogitsLoss",
    "CTCLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "FocalLoss",
    "GELU",
    "GRU",
    "GRUCell",
    "Identity",
    "LSTM",
    "LSTMCell",
    "LayerNorm",
    "LearnedPositional",
    "Linear",
    "LoRALinear",
    "LoadResult",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "Parameter",
    "RMSNorm",
    "RNN",
    "RNNCell",
    "RotaryEmbedding",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SinusoidalPositional",
    "Softmax",
    "Tanh",
    "apply_lora",
    "load_lora",
    "lora_state_dict",
    "merge_lora",
    "functional",
    "init",
    "utils",
]
