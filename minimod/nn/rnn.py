"""Recurrent layers: RNN, GRU and LSTM cells, and the multi-layer, bidirectional layers.

Parameters, their names, shapes, gate order and initialisation are torch.nn's, so state_dicts
move both ways. Each layer projects the inputs of all time steps in one matmul; only the
recurrent part (h_{t-1} -> h_t) loops over time. Variable lengths are handled without packing:
``lengths`` (B,) freezes each sequence's state after its last step and zeroes its outputs there,
and the reverse direction starts at each sequence's own last step -- the results of torch's
pack_padded_sequence.

The gates use torch.sigmoid / torch.tanh (tensor ops) rather than minimod's own: the loop runs
them once per step and layer, and the fused kernels keep it fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from minimod.nn import init
from minimod.nn._checks import can_read_back, describe, expect_floating
from minimod.nn.dropout import dropout as apply_dropout
from minimod.nn.linear import linear
from minimod.nn.module import Module, Parameter

# How many stacked gate blocks each mode's weights hold: W_ih is (gates · H, input_size).
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}
NONLINEARITIES = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}


def rnn_step(
    gi: torch.Tensor,
    h: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
    nonlinearity: str = "tanh",
) -> torch.Tensor:
    """One Elman step: h' = act(gi + h W_hhᵀ + b_hh), gi = x W_ihᵀ + b_ih precomputed.

    gi (B, H), h (B, H), weight_hh (H, H), bias_hh (H,) or None (none, or already in gi)
    -> h' (B, H).
    """
    # BEGIN SOLUTION
    # addmm(a, h, Wᵀ) = a + h Wᵀ in one operation (one node in the graph instead of two).
    pre = torch.addmm(gi if bias_hh is None else gi + bias_hh, h, weight_hh.T)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
    # END SOLUTION


def gru_step(
    gi: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor | None
) -> torch.Tensor:
    """One GRU step, gates in torch's order r, z, n:

        r = σ(gi_r + W_hr h + b_hr)          z = σ(gi_z + W_hz h + b_hz)
        n = tanh(gi_n + r ⊙ (W_hn h + b_hn))  h' = (1 − z) ⊙ n + z ⊙ h

    gi (B, 3H), h (B, H), weight_hh (3H, H), bias_hh (3H,) or None -> h' (B, H).
    """
    # BEGIN SOLUTION
    gh = h @ weight_hh.T if bias_hh is None else torch.addmm(bias_hh, h, weight_hh.T)
    size = h.shape[-1]
    i_rz, i_n = gi.split([2 * size, size], dim=-1)
    h_rz, h_n = gh.split([2 * size, size], dim=-1)
    r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=-1)  # r and z side by side: one sigmoid
    n = torch.tanh(torch.addcmul(i_n, r, h_n))  # r gates W_hn h + b_hn, bias included (torch's)
    return torch.lerp(n, h, z)  # n + z (h − n) = (1 − z) n + z h
    # END SOLUTION


def lstm_step(
    gi: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, gates in torch's order i, f, g, o:

        i, f, o = σ(·), g = tanh(·) of gi + h W_hhᵀ + b_hh, split in four
        c' = f ⊙ c + i ⊙ g        h' = o ⊙ tanh(c')

    gi (B, 4H), h (B, H), c (B, H), weight_hh (4H, H), bias_hh (4H,) or None (none, or already
    in gi) -> (h', c').
    """
    # BEGIN SOLUTION
    gates = torch.addmm(gi if bias_hh is None else gi + bias_hh, h, weight_hh.T)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))  # f c + i g
    return torch.sigmoid(o) * torch.tanh(c), c
    # END SOLUTION


def _step_function(mode: str) -> Callable:
    """state, gi -> new state, for one mode; the state is (h,) or (h, c)."""
    if mode == "LSTM":
        return lambda gi, state, w, b: lstm_step(gi, state[0], state[1], w, b)
    if mode == "GRU":
        return lambda gi, state, w, b: (gru_step(gi, state[0], w, b),)
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    return lambda gi, state, w, b: (rnn_step(gi, state[0], w, b, nonlinearity),)


def run_direction(
    mode: str,
    gi: torch.Tensor,
    state: tuple[torch.Tensor, ...],
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
    reverse: bool = False,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The recurrence over time for one layer and direction.

    gi (T, B, gates·H): the input projections of every step. state: (h0,) or (h0, c0), each
    (B, H). mask (T, B, 1) bool or None: True where step t is inside sequence b. A masked step
    keeps the state and outputs 0, so the final state is the one after each sequence's last
    step, and in reverse the recurrence starts at that step.
    -> (outputs (T, B, H), final state).
    """
    step = _step_function(mode)
    # BEGIN SOLUTION
    # unbind: every step's view in one operation, whose backward stacks the steps' gradients
    # once. gi[t] in the loop would make each step's backward write a whole (T, B, gates·H)
    # gradient, mostly zeros: T times the work.
    inputs = gi.unbind(0)
    inside = None if mask is None else mask.unbind(0)
    outputs = [None] * len(inputs)
    for t in reversed(range(len(inputs))) if reverse else range(len(inputs)):
        new = step(inputs[t], state, weight_hh, bias_hh)
        if mask is None:
            state = new
        else:
            state = tuple(torch.where(inside[t], n, s) for n, s in zip(new, state, strict=True))
        outputs[t] = new[0]
    outputs = torch.stack(outputs)
    # Masked steps output 0: one torch.where for all steps, after the loop.
    return outputs if mask is None else torch.where(mask, outputs, 0.0), state
    # END SOLUTION


class _CellBase(Module):
    """Shared by RNNCell, GRUCell and LSTMCell: parameters, initialisation and input checks."""

    mode = "RNN_TANH"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = GATES[self.mode] * hidden_size
        # BEGIN SOLUTION
        self.weight_ih = Parameter(torch.empty(rows, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(torch.empty(rows, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(torch.empty(rows, device=device, dtype=dtype))
            self.bias_hh = Parameter(torch.empty(rows, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN SOLUTION
        # torch draws every weight and bias of a recurrent layer from U(-1/√H, 1/√H).
        bound = 1 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for param in self.parameters():
            init.uniform_(param, -bound, bound)
        # END SOLUTION

    def _inputs(self, input: torch.Tensor, hx: torch.Tensor | None, name: str = "hx"):
        """(input (B, I), hx (B, H), whether the input was unbatched)."""
        expect_floating(self, input)
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"{describe(self)}: expected input of shape (batch, {self.input_size}) or "
                f"({self.input_size},), got {tuple(input.shape)}"
            )
        unbatched = input.dim() == 1
        if unbatched:
            input = input[None]
        batch = input.shape[0]
        if hx is None:
            return input, input.new_zeros(batch, self.hidden_size), unbatched
        expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if tuple(hx.shape) != expected:
            raise ValueError(
                f"{describe(self)}: expected {name} of shape {expected}, got {tuple(hx.shape)}"
            )
        return input, hx[None] if unbatched else hx, unbatched

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity=relu"
        return text


class RNNCell(_CellBase):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu); torch.nn.RNNCell's parameters.

    input (B, I) or (I,), hx (B, H) / (H,) or None (zeros) -> h' (B, H) / (H,).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.mode, self.nonlinearity = NONLINEARITIES[nonlinearity], nonlinearity

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        input, hx, unbatched = self._inputs(input, hx)
        gi = linear(input, self.weight_ih, self.bias_ih)
        h = rnn_step(gi, hx, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h[0] if unbatched else h


class GRUCell(_CellBase):
    """One GRU step with torch.nn.GRUCell's parameters (gates r, z, n).

    input (B, I) or (I,), hx (B, H) / (H,) or None (zeros) -> h' (B, H) / (H,).
    """

    mode = "GRU"

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        input, hx, unbatched = self._inputs(input, hx)
        h = gru_step(linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)
        return h[0] if unbatched else h


class LSTMCell(_CellBase):
    """One LSTM step with torch.nn.LSTMCell's parameters (gates i, f, g, o).

    input (B, I) or (I,), hx (h, c) each (B, H) / (H,), or None (zeros) -> (h', c').
    """

    mode = "LSTM"

    def forward(
        self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{describe(self)}: hx must be a tuple (h, c)")
        h, c = (None, None) if hx is None else hx
        batched, h, unbatched = self._inputs(input, h, "h")
        c = torch.zeros_like(h) if hx is None else self._inputs(input, c, "c")[1]
        gi = linear(batched, self.weight_ih, self.bias_ih)
        h, c = lstm_step(gi, h, c, self.weight_hh, self.bias_hh)
        return (h[0], c[0]) if unbatched else (h, c)


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrent layer behind RNN, GRU and LSTM.

    Parameters per layer l and direction (suffix "" or "_reverse"), as torch.nn names them:
    weight_ih_l{l} (gates·H, I or D·H), weight_hh_l{l} (gates·H, H), bias_ih_l{l},
    bias_hh_l{l} (gates·H,); all ~ U(-1/√H, 1/√H).
    """

    MODE = ""  # "GRU", "LSTM", "RNN_TANH" or "RNN_RELU": set by each subclass

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        name, mode = type(self).__name__, self.MODE
        if num_layers < 1 or hidden_size < 1 or input_size < 1:
            raise ValueError(
                f"{name}: input_size, hidden_size and num_layers must be ≥ 1, got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        directions = 2 if bidirectional else 1
        rows = GATES[mode] * hidden_size
        # BEGIN SOLUTION
        for layer in range(num_layers):
            width = input_size if layer == 0 else directions * hidden_size
            for suffix in ("", "_reverse")[:directions]:
                shapes = {"weight_ih": (rows, width), "weight_hh": (rows, hidden_size)}
                if bias:
                    shapes |= {"bias_ih": (rows,), "bias_hh": (rows,)}
                for kind, shape in shapes.items():
                    empty = torch.empty(shape, device=device, dtype=dtype)
                    setattr(self, f"{kind}_l{layer}{suffix}", Parameter(empty))
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN SOLUTION
        bound = 1 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)
        # END SOLUTION

    def _weights(self, layer: int, suffix: str) -> tuple[torch.Tensor | None, ...]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(getattr(self, f"{n}_l{layer}{suffix}", None) for n in names)

    def _check_state(self, state: torch.Tensor, name: str, expected: tuple[int, ...]) -> None:
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{describe(self)}: expected {name} of shape {expected} (num_layers · "
                f"directions, batch, hidden_size), got {tuple(state.shape)}"
            )

    def _mask(self, lengths, steps: int, batch: int, device) -> torch.Tensor:
        """lengths (B,) -> mask (T, B, 1): True where t < lengths[b]."""
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.shape != (batch,) or lengths.is_floating_point():
            raise ValueError(
                f"{describe(self)}: lengths must be {batch} integers (one per sequence), got "
                f"shape {tuple(lengths.shape)} and dtype {lengths.dtype}"
            )
        if can_read_back(lengths) and bool(((lengths < 1) | (lengths > steps)).any()):
            raise ValueError(
                f"{describe(self)}: lengths must be in [1, {steps}] (the number of steps), "
                f"got {lengths.tolist()}"
            )
        return (torch.arange(steps, device=device)[:, None] < lengths[None, :])[..., None]

    def forward(self, input: torch.Tensor, hx=None, lengths=None):
        """input (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I).
        hx: h0 (L·D, B, H) (LSTM: (h0, c0)), or None for zeros; unbatched (L·D, H).
        lengths: (B,) integers in [1, T], or None (every sequence has T steps).
        -> (output (T, B, D·H) (batch_first: (B, T, D·H)), h_n (L·D, B, H)), LSTM: (h_n, c_n).
        """
        expect_floating(self, input)
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            order = "(batch, time" if self.batch_first else "(time, batch"
            raise ValueError(
                f"{describe(self)}: expected input of shape {order}, {self.input_size}) or "
                f"(time, {self.input_size}), got {tuple(input.shape)}"
            )
        unbatched = input.dim() == 2
        if unbatched:
            if lengths is not None:
                raise ValueError(f"{describe(self)}: lengths need a batched input")
            input = input[:, None]
        elif self.batch_first:
            input = input.transpose(0, 1)
        steps, batch = input.shape[:2]
        states = self._initial_states(hx, input, unbatched)
        mask = None if lengths is None else self._mask(lengths, steps, batch, input.device)
        x, final = self._run_layers(input, states, mask)
        if unbatched:
            x, final = x[:, 0], tuple(s[:, 0] for s in final)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, (final if self.mode == "LSTM" else final[0])

    def _run_layers(self, input: torch.Tensor, states, mask):
        """input (T, B, I), states (h0,) or (h0, c0) each (L·D, B, H), mask (T, B, 1) or None
        -> (the top layer's output (T, B, D·H), the final states, each (L·D, B, H))."""
        directions = 2 if self.bidirectional else 1
        # BEGIN SOLUTION
        x, finals = input, []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[:directions]):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
                if self.bias and self.mode != "GRU":
                    # b_hh joins b_ih in the input projection: one addition per step fewer.
                    # (GRU's b_hn sits inside r ⊙ (W_hn h + b_hn) and must stay in the step.)
                    b_ih, b_hh = b_ih + b_hh, None
                gi = linear(x, w_ih, b_ih)  # every step's input projection in one matmul
                state = tuple(s[layer * directions + direction] for s in states)
                out, state = run_direction(
                    self.mode, gi, state, w_hh, b_hh, reverse=direction == 1, mask=mask
                )
                outputs.append(out)
                finals.append(state)
            x = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
            if layer < self.num_layers - 1:
                x = apply_dropout(x, self.dropout, self.training)
        return x, tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        # END SOLUTION

    def _initial_states(self, hx, input: torch.Tensor, unbatched: bool):
        """(h0,) or (h0, c0), each (L·D, B, H): zeros when hx is None."""
        layers = self.num_layers * (2 if self.bidirectional else 1)
        shape = (layers, input.shape[1], self.hidden_size)
        count = 2 if self.mode == "LSTM" else 1
        if hx is None:
            return (input.new_zeros(shape),) * count
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{describe(self)}: hx must be a tuple (h0, c0)")
            names = ("h0", "c0")
        else:
            if not isinstance(hx, torch.Tensor):
                raise TypeError(f"{describe(self)}: hx must be a tensor h0")
            hx, names = (hx,), ("h0",)
        expected = (shape[0], shape[2]) if unbatched else shape
        for state, name in zip(hx, names, strict=True):
            self._check_state(state, name, expected)
        return tuple(s[:, None] if unbatched else s for s in hx)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """An Elman RNN, h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh) (or relu); torch.nn.RNN's
    arguments (nonlinearity fourth), parameters and return values (output, h_n)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.MODE = NONLINEARITIES[nonlinearity]  # this instance's mode, read by RNNBase
        args = (num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        super().__init__(input_size, hidden_size, *args)
        self.nonlinearity = nonlinearity


class GRU(RNNBase):
    """A gated recurrent unit layer (gates r, z, n); torch.nn.GRU's arguments, parameters and
    return values (output, h_n)."""

    MODE = "GRU"


class LSTM(RNNBase):
    """A long short-term memory layer (gates i, f, g, o); torch.nn.LSTM's arguments (no
    proj_size), parameters and return values (output, (h_n, c_n))."""

    MODE = "LSTM"
