"""Lesson 27: Recurrence -- RNN, GRU and LSTM cells, the layer loop, and vanishing gradients

The idea
A recurrent network reads a sequence one step at a time and carries a state h_t (B, H) from
step to step: h_t = cell(x_t, h_{t-1}). The same weights serve every step, so a sequence of
any length costs the same parameters, and h_t summarises everything read so far. Attention
(lesson 8) looks at all positions at once; a recurrence must squeeze the past through h.
Speech recognisers (lesson 28) long used stacks of bidirectional LSTMs for exactly this.

The three cells (x W_ihᵀ + b_ih is the "input part", h W_hhᵀ + b_hh the "recurrent part")
    RNN   h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)                  W_ih (H, I), W_hh (H, H)
    GRU   r = σ(i_r + h_r)   z = σ(i_z + h_z)                          W_ih (3H, I), W_hh (3H, H)
          n = tanh(i_n + r ⊙ h_n)     h' = (1 − z) ⊙ n + z ⊙ h
    LSTM  i, f, o = σ(·), g = tanh(·)  of the four blocks              W_ih (4H, I), W_hh (4H, H)
          c' = f ⊙ c + i ⊙ g          h' = o ⊙ tanh(c')
Gate blocks are stacked along the rows in torch's order -- GRU r, z, n; LSTM i, f, g, o -- so
.chunk(3) / .chunk(4) of the last axis splits them. The GRU detail: i_n = x W_inᵀ + b_in and
h_n = h W_hnᵀ + b_hn, and r multiplies h_n WITH its bias (the original paper puts r inside,
r ⊙ h before W_hn; torch and cuDNN do it this way, and so must we to load their weights).
Every weight and bias starts ~ U(-1/√H, 1/√H).

The layer: all inputs at once, the recurrence in a loop
Only h_{t-1} -> h_t is sequential. x_t W_ihᵀ + b_ih does not depend on h, so compute it for
every step in ONE matmul before the loop: gi = linear(x, W_ih, b_ih), (T, B, gates·H). The
loop then does one (B, H) x (H, gates·H) product per step (rnn_step, gru_step, lstm_step get
one step of gi). Take the steps with gi.unbind(0), one operation, not gi[t] in the loop: each
gi[t]'s backward writes a whole (T, B, gates·H) gradient, zeros but for row t, so T steps cost
T² (measured: it more than doubles an LSTM layer's time at T = 100). Every operation in the loop
runs T times forwards and again backwards, so the steps use as few as the maths allows:
torch.addmm(gi, h, W_hhᵀ) is gi + h W_hhᵀ in one; for RNN and LSTM, b_hh joins b_ih in the
input projection (b_ih + b_hh once per layer; the step functions take bias_hh=None then);
GRU's r and z blocks are side by side, so one add and one sigmoid serve both, but b_hn stays in
the step (r multiplies it); h' = torch.lerp(n, h, z) and c' = torch.addcmul(f ⊙ c, i, g).
Shapes, as torch: input (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I);
output (T, B, D·H) -- the top layer's h_t at every step, D = 2 directions if bidirectional;
h_n (L·D, B, H) the last state of every layer and direction (LSTM: also c_n), ordered layer 0
forward, layer 0 reverse, layer 1 forward, ...
Stacking: layer l + 1 reads layer l's output (D·H features), with dropout between layers in
training (not after the last). Bidirectional: a second set of weights (suffix _reverse) runs
from t = T − 1 down to 0, and the two outputs are concatenated per step. Parameter names:
weight_ih_l{l}, weight_hh_l{l}, bias_ih_l{l}, bias_hh_l{l}, and the same with _reverse.

Variable lengths without packing
A batch pads sequences to T steps. lengths (B,) gives the real ones; the mask (T, B, 1) is
t < lengths[b]. At a masked step keep the old state (torch.where(mask, new, old)) and output
0 (one torch.where on the stacked outputs, after the loop). Then h_n is each
sequence's state after its OWN last step, and the reverse direction --
which meets the padding first -- carries h0 unchanged through it and starts at that last
step. That is exactly what torch computes on a pack_padded_sequence.

Backpropagation through time
Unrolled, the loop is a T-layer deep network that shares its weights; autograd walks it
backwards and adds each step's contribution to W_hh's gradient. The gradient reaching h_0 is
a product of T Jacobians, ∂h_t/∂h_{t-1} = diag(1 − h_t²) W_hh for the tanh RNN: it shrinks
(or grows) geometrically. The LSTM's cell adds a path ∂c_t/∂c_{t-1} = diag(f_t): no W, no
squashing -- it vanishes only as fast as the forget gates are below 1. Measured with
minimod's layers at their default initialisation (H = 64, I = 32, x ~ N(0, 1), float64,
seed 0; spectral norms of the Jacobians):
                                T = 10      T = 50      T = 100
    RNN   ∂h_T/∂h_0            6.8e-03     9.0e-14     1.5e-28
    LSTM  ∂h_T/∂h_0            4.4e-03     3.0e-11     5.0e-21
    LSTM  ∂c_T/∂c_0            1.3e-02     1.2e-10     1.9e-20
    LSTM, forget bias +2:
          ∂h_T/∂h_0            1.8e-01     4.8e-02     8.7e-03
          ∂c_T/∂c_0            1.0e+00     4.3e-01     8.1e-02
At default initialisation f ≈ σ(0) = 0.5, so even the cell path halves every step; adding 1
to the forget-gate rows of both biases (f ≈ σ(2) ≈ 0.88) keeps a usable gradient over 100
steps -- the common "forget bias" trick (Jozefowicz et al. 2015). Exploding gradients, the
other side, are what clip_grad_norm_ (lesson 7) is for.

What you write
rnn_step, gru_step and lstm_step (one step, given gi); run_direction (the loop over time in
either direction, with the mask); the parameters and reset_parameters of the cells and of
RNNBase: _CellBase.__init__ sets self.weight_ih (gates·H, I), self.weight_hh (gates·H, H) and,
with bias, self.bias_ih and self.bias_hh (gates·H,) -- else registers both as None -- which
the given cell forwards read; _CellBase.reset_parameters and RNNBase.reset_parameters draw
them all from U(-1/√H, 1/√H); RNNBase.__init__ makes the per-layer Parameters named above
(setattr(self, "weight_ih_l0_reverse", ...)); RNNBase._run_layers, the loop over layers and
directions (the input projection, b_hh folded into it for RNN and LSTM,
the initial state of each layer and direction, dropout between layers, h_n in torch's
order). The argument checks, the cells' forward, RNNBase.forward (layouts: batch_first,
unbatched; the mask from lengths) and the classes RNN, GRU and LSTM are given.

Classic pitfalls
- GRU: r ⊙ (h W_hnᵀ) + b_hn, or r ⊙ h inside the product: both are real GRUs, but torch's
  weights then give other outputs.
- h' = z ⊙ n + (1 − z) ⊙ h: z is the weight of the OLD state in torch's convention.
- Gate blocks in the paper's order (i, f, o, g): loads, runs, and is silently wrong.
- Reverse direction on padded input starting at t = T − 1 with the real state: it must start
  at each sequence's own last step (or run on packed sequences).
- h_n taken as output[-1]: for the reverse direction that is its FIRST step, and with
  lengths it is padding.
- Dropout after the last layer, or in eval mode.
- gi[t] inside the loop: right results, and a backward that grows with T² (use unbind).

Run it
Once `minimod exercises check 27` passes, a speech recogniser -- strided convolutions, your
bidirectional GRU, a CTC head -- trains on synthetic spoken keyword sentences (--use-mine swaps
in every lesson that passes and says which):
    minimod pretrain audio --task asr --use-mine --out runs/e27
prints which lessons are yours, the training loss every 10 steps (about 30 at step 10, 2.8 at
step 40), then "done: step 40, held-out wer 1, cer 1" (about 2 min 15 s on 2 busy shared
cores). Forty steps are not enough to hear anything: `minimod transcribe --from runs/e27
--held-out 3` shows an empty transcript for every utterance -- CTC learns the blank first.
A recogniser that does hear is `--task asr-digits --preset baby` (1000 steps: minutes, not
seconds; the README's speech-recognition table gives its word error rate).
Next: lesson 28 (CTC: the alignment lattice, the α and β recursions, greedy and prefix beam
decoding)

Check it: minimod exercises check 27
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e27_recurrence import GRU, LSTM
    >>> lstm = LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    >>> output, (h_n, c_n) = lstm(torch.randn(4, 7, 3))
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((4, 7, 10), (4, 4, 5), (4, 4, 5))
    >>> [name for name, _ in lstm.named_parameters()][:5]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'weight_ih_l0_reverse']
    >>> gru = GRU(2, 3, batch_first=True)
    >>> out, h_n = gru(torch.randn(2, 5, 2), lengths=torch.tensor([5, 2]))
    >>> bool((out[1, 2:] == 0).all()), bool(torch.equal(h_n[0, 1], out[1, 1]))
    (True, True)
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 27`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from minimod.nn import init
from minimod.nn._checks import can_read_back, describe, expect_floating
from minimod.nn.dropout import dropout as apply_dropout
from minimod.nn.linear import linear
from minimod.nn.module import Module, Parameter
from minimod.nn.rnn import GATES, NONLINEARITIES

# ---- from minimod/nn/rnn.py ----------------------------------------


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e27: rnn_step")
    # END YOUR CODE


def gru_step(
    gi: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor | None
) -> torch.Tensor:
    """One GRU step, gates in torch's order r, z, n:

        r = σ(gi_r + W_hr h + b_hr)          z = σ(gi_z + W_hz h + b_hz)
        n = tanh(gi_n + r ⊙ (W_hn h + b_hn))  h' = (1 − z) ⊙ n + z ⊙ h

    gi (B, 3H), h (B, H), weight_hh (3H, H), bias_hh (3H,) or None -> h' (B, H).
    """
    # BEGIN YOUR CODE
    raise NotImplementedError("e27: gru_step")
    # END YOUR CODE


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e27: lstm_step")
    # END YOUR CODE


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e27: run_direction")
    # END YOUR CODE


class _CellBase(Module):
    """Shared by RNNCell, GRUCell and LSTMCell: parameters, initialisation and input checks."""

    mode = "RNN_TANH"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = GATES[self.mode] * hidden_size
        # BEGIN YOUR CODE
        raise NotImplementedError("e27: _CellBase.__init__")
        # END YOUR CODE
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN YOUR CODE
        raise NotImplementedError("e27: _CellBase.reset_parameters")
        # END YOUR CODE

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
        # BEGIN YOUR CODE
        raise NotImplementedError("e27: RNNBase.__init__")
        # END YOUR CODE
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN YOUR CODE
        raise NotImplementedError("e27: RNNBase.reset_parameters")
        # END YOUR CODE

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
        # BEGIN YOUR CODE
        raise NotImplementedError("e27: RNNBase._run_layers")
        # END YOUR CODE

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
