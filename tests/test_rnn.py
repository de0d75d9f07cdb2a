"""RNN / GRU / LSTM and their cells against torch.nn.RNN / GRU / LSTM and the torch cells.

Outputs and final states are compared together (flattened into one tensor), and so are the
gradients of the input, h0 (and c0) and every parameter. Variable lengths are compared with
torch's packed sequences (pack_padded_sequence with enforce_sorted=False, padded back).

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4, float64 rtol 1e-8 /
atol 1e-9): torch's kernels sum the gate products in another order, and the recurrence carries
that rounding through up to 5 steps and 2 layers, each adding a sum over up to 8 features.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import impl
from compare import (
    assert_same_forward_backward,
    assert_same_state_dict_layout,
    load_into_twin,
    tolerance,
)
from strategies import dtypes, seeds, sides

FACTOR = 10.0
KINDS = ("RNN", "RNN_relu", "GRU", "LSTM")
GATE_HINT = (
    "check the gate order (GRU: r, z, n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); "
    "LSTM: i, f, g, o)"
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def make_pair(kind: str, *args, **kwargs):
    """(minimod layer, torch twin) of ``kind`` ("RNN_relu": an RNN with relu), same weights."""
    name, _, nonlinearity = kind.partition("_")
    if nonlinearity:
        kwargs["nonlinearity"] = nonlinearity
    dtype = kwargs.pop("dtype", torch.float32)
    mine = getattr(impl.nn, name)(*args, **kwargs).to(dtype)
    twin = getattr(torch.nn, name)(*args, **kwargs).to(dtype)
    load_into_twin(mine, twin)
    return mine, twin


def flat(result) -> torch.Tensor:
    """(output, h_n) or (output, (h_n, c_n)) -> one flat tensor, to compare everything at once."""
    output, state = result
    states = state if isinstance(state, tuple) else (state,)
    return torch.cat([output.flatten(), *(s.flatten() for s in states)])


def packed_twin(twin, lengths: torch.Tensor, steps: int):
    """torch's layer on a packed batch, padded back to ``steps`` frames."""

    def forward(x, *state):
        hx = None if not state else (state if len(state) == 2 else state[0])
        packed = pack_padded_sequence(x, lengths, twin.batch_first, enforce_sorted=False)
        output, final = twin(packed, hx)
        output, _ = pad_packed_sequence(output, twin.batch_first, total_length=steps)
        return flat((output, final))

    return forward


RULES = {
    "RNN": "h' = tanh (or relu) of W_ih x + b_ih + W_hh h + b_hh",
    "GRU": "torch's GRU: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), r gates b_hn too; "
    "h' = (1 − z) ⊙ n + z ⊙ h, z weighs the old state",
    "LSTM": "torch's LSTM gate blocks are in the order (i, f, g, o), not the paper's (i, f, o, g)",
}
STATE_RULE = (
    "h_n holds each direction's state after its last real step (the reverse direction's is "
    "its step 0), not output[-1]"
)
LENGTHS_RULE = "; with lengths, the reverse direction starts at each sequence's own last step"
DROPOUT_RULE = "dropout goes between layers only, and only in training mode"


def assert_layer_matches(mine, twin, x, states=(), lengths=None):
    """Forward and every gradient of mine(x, hx, lengths) against the twin (packed if lengths)."""
    steps = x.shape[1] if twin.batch_first and x.dim() == 3 else x.shape[0]

    def ours(x, *state):
        hx = None if not state else (state if len(state) == 2 else state[0])
        return flat(mine(x, hx, lengths=lengths))

    def theirs(x, *state):
        hx = None if not state else (state if len(state) == 2 else state[0])
        return flat(twin(x, hx))

    reference = theirs if lengths is None else packed_twin(twin, lengths, steps)
    rules = [f"{type(twin).__name__}'s outputs differ from torch's", RULES[type(twin).__name__]]
    rules.append(STATE_RULE + (LENGTHS_RULE if lengths is not None else ""))
    rules += [DROPOUT_RULE] if twin.dropout else []
    with torch.no_grad():
        torch.testing.assert_close(
            ours(x, *states),
            reference(x, *states),
            **tolerance(x.dtype, FACTOR),
            msg=lambda m: "; ".join(rules) + f"\n{m}",
        )
    assert_same_forward_backward(
        ours,
        reference,
        [x, *states],
        list(mine.named_parameters()),
        list(twin.named_parameters()),
        FACTOR,
    )


@given(
    kind=st.sampled_from(KINDS),
    steps=sides(5),
    batch=sides(3),
    input_size=sides(4),
    hidden_size=sides(4),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    with_state=st.booleans(),
    with_lengths=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
@example(
    kind="GRU",
    steps=4,
    batch=3,
    input_size=2,
    hidden_size=3,
    num_layers=2,
    bidirectional=True,
    batch_first=True,
    bias=True,
    with_state=True,
    with_lengths=True,
    dtype=torch.float64,
    seed=0,
)
@example(
    kind="LSTM",
    steps=5,
    batch=2,
    input_size=3,
    hidden_size=2,
    num_layers=2,
    bidirectional=True,
    batch_first=False,
    bias=True,
    with_state=True,
    with_lengths=True,
    dtype=torch.float32,
    seed=1,
)
def test_layer_matches_torch(
    kind,
    steps,
    batch,
    input_size,
    hidden_size,
    num_layers,
    bidirectional,
    batch_first,
    bias,
    with_state,
    with_lengths,
    dtype,
    seed,
):
    mine, twin = make_pair(
        kind,
        input_size,
        hidden_size,
        num_layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        dtype=dtype,
    )
    shape = (batch, steps, input_size) if batch_first else (steps, batch, input_size)
    x = randn(shape, dtype, seed)
    layers = num_layers * (2 if bidirectional else 1)
    count = 2 if kind == "LSTM" else 1
    states = [randn((layers, batch, hidden_size), dtype, seed + 1 + i) for i in range(count)]
    lengths = None
    if with_lengths:
        lengths = torch.randint(
            1, steps + 1, (batch,), generator=torch.Generator().manual_seed(seed)
        )
    assert_layer_matches(mine, twin, x, states if with_state else [], lengths)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_unbatched_input_matches_torch(kind, with_state):
    mine, twin = make_pair(kind, 3, 4, 2, bidirectional=True, dtype=torch.float64)
    x = randn((5, 3), torch.float64, 0)
    states = [randn((4, 4), torch.float64, i + 1) for i in range(2 if kind == "LSTM" else 1)]
    assert_layer_matches(mine, twin, x, states if with_state else [])


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_lengths_freeze_the_state_and_zero_the_outputs(kind):
    """Each sequence equals itself run alone, cut to its length; outputs past it are 0."""
    mine, _ = make_pair(kind, 2, 3, 2, bidirectional=True, batch_first=True, dtype=torch.float64)
    x = randn((3, 6, 2), torch.float64, 0)
    lengths = torch.tensor([6, 1, 4])
    output, state = mine(x, lengths=lengths)
    h_n = state[0] if kind == "LSTM" else state
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = mine(x[b : b + 1, :n])
        alone_h = alone_state[0] if kind == "LSTM" else alone_state
        torch.testing.assert_close(output[b, :n], alone[0], **tolerance(torch.float64))
        torch.testing.assert_close(h_n[:, b], alone_h[:, 0], **tolerance(torch.float64))
        assert bool((output[b, n:] == 0).all()), "outputs past a sequence's length must be 0"


@given(
    kind=st.sampled_from(KINDS),
    batch=st.integers(0, 3),
    input_size=sides(4),
    hidden_size=sides(4),
    bias=st.booleans(),
    with_state=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_cells_match_torch(kind, batch, input_size, hidden_size, bias, with_state, dtype, seed):
    """batch 0 stands for an unbatched input (I,)."""
    name, _, nonlinearity = kind.partition("_")
    kwargs = {"nonlinearity": nonlinearity} if nonlinearity else {}
    mine = getattr(impl.nn, f"{name}Cell")(input_size, hidden_size, bias, **kwargs).to(dtype)
    twin = getattr(torch.nn, f"{name}Cell")(input_size, hidden_size, bias, **kwargs).to(dtype)
    load_into_twin(mine, twin)
    lead = (batch,) if batch else ()
    x = randn((*lead, input_size), dtype, seed)
    states = [randn((*lead, hidden_size), dtype, seed + 1 + i) for i in range(1 + (name == "LSTM"))]

    def call(layer):
        def forward(x, *state):
            hx = None if not state else (state if len(state) == 2 else state[0])
            out = layer(x, hx)
            return torch.cat([o.flatten() for o in out]) if isinstance(out, tuple) else out

        return forward

    mine_out, twin_out = call(mine)(x, *states), call(twin)(x, *states)
    assert torch.allclose(mine_out, twin_out, **tolerance(dtype, FACTOR)), GATE_HINT
    assert_same_forward_backward(
        call(mine),
        call(twin),
        [x, *(states if with_state else [])],
        list(mine.named_parameters()),
        list(twin.named_parameters()),
        FACTOR,
    )


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_loads_both_ways(kind, bias):
    args = dict(num_layers=2, bias=bias, bidirectional=True)
    x = randn((4, 2, 3), torch.float32, 0)
    # torch -> minimod: give the twin distinctive weights first.
    twin = getattr(torch.nn, kind)(3, 5, **args)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(randn(p.shape, p.dtype, 7))
    mine = getattr(impl.nn, kind)(3, 5, **args)
    assert_same_state_dict_layout(mine, twin)
    assert list(mine.state_dict()) == list(twin.state_dict()), "key order differs from torch"
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(flat(mine(x)), flat(twin(x)), **tolerance(torch.float32))
    # minimod -> torch
    mine = getattr(impl.nn, kind)(3, 5, **args)
    twin = getattr(torch.nn, kind)(3, 5, **args)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(flat(mine(x)), flat(twin(x)), **tolerance(torch.float32))


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"])
def test_default_init_is_torchs_uniform(kind):
    """Every weight and bias ~ U(-1/√H, 1/√H): hidden 100, so bound 0.1 and std 0.0577."""
    layer = getattr(impl.nn, kind)(20, 100)
    bound = 1 / math.sqrt(100)
    for name, p in layer.named_parameters():
        values = p.detach().double()
        assert values.abs().max().item() <= bound * (1 + 1e-6), f"{name} exceeds 1/sqrt(H)"
        assert values.abs().max().item() > 0.95 * bound, f"{name} does not fill U(-1/√H, 1/√H)"
        # ≥ 400 samples: the std is estimated to about ±4%; allow 12%.
        assert values.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.12), (
            f"{name}: std {values.std().item():.4g}, expected {bound / math.sqrt(3):.4g} "
            "(U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)))"
        )


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_dropout_between_layers(kind):
    """dropout > 0: eval equals torch; training with p = 1 zeroes the second layer's input
    (deterministic, so it equals torch too); one layer has no dropout at all."""
    mine, twin = make_pair(kind, 3, 4, 2, dropout=0.5, dtype=torch.float64)
    x = randn((5, 2, 3), torch.float64, 0)
    mine.eval(), twin.eval()
    assert_layer_matches(mine, twin, x)
    mine, twin = make_pair(kind, 3, 4, 2, dropout=1.0, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(flat(mine(x)), flat(twin(x)), **tolerance(torch.float64))
    single, _ = make_pair(kind, 3, 4, 1, dtype=torch.float64)
    with torch.no_grad():
        trained = flat(single(x))
        torch.testing.assert_close(flat(single.eval()(x)), trained, **tolerance(torch.float64))


def test_repr_and_positional_arguments_match_torch():
    args = dict(num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)
    for kind in ("RNN", "GRU", "LSTM"):
        mine, twin = getattr(impl.nn, kind), getattr(torch.nn, kind)
        assert repr(mine(3, 4, **args)) == repr(twin(3, 4, **args))
        assert repr(mine(3, 4)) == repr(twin(3, 4))
        positional = (2, "relu", False, True) if kind == "RNN" else (2, False, True, 0.5, True)
        assert repr(mine(3, 4, *positional)) == repr(twin(3, 4, *positional))
    assert impl.nn.RNN(3, 4, 1, "relu").nonlinearity == "relu"  # torch's 4th argument
    assert repr(impl.nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(impl.nn.LSTMCell(3, 4, bias=False)) == repr(torch.nn.LSTMCell(3, 4, bias=False))


# -- error messages --------------------------------------------------------------------------


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: impl.nn.GRU(3, 4)(torch.randn(5, 2, 2)),
            r"GRU\(3, 4\).*\(time, batch, 3\).*\(5, 2, 2\)",
        ),
        (lambda: impl.nn.GRU(3, 4)(torch.randn(5, 2, 1, 3)), r"expected input of shape"),
        (
            lambda: impl.nn.LSTM(3, 4, batch_first=True)(torch.randn(2, 5, 4)),
            r"\(batch, time, 3\)",
        ),
        (
            lambda: impl.nn.GRU(3, 4, 2)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4)),
            r"h0 of shape \(2, 2, 4\).*got \(1, 2, 4\)",
        ),
        (
            lambda: impl.nn.LSTM(3, 4)(
                torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 3, 4))
            ),
            r"c0 of shape \(1, 2, 4\)",
        ),
        (
            lambda: impl.nn.RNN(3, 4)(torch.randn(5, 2, 3), lengths=[5, 0]),
            r"lengths must be in \[1, 5\]",
        ),
        (
            lambda: impl.nn.RNN(3, 4)(torch.randn(5, 2, 3), lengths=[6, 1]),
            r"lengths must be in \[1, 5\]",
        ),
        (
            lambda: impl.nn.RNN(3, 4)(torch.randn(5, 2, 3), lengths=[5]),
            r"lengths must be 2 integers",
        ),
        (
            lambda: impl.nn.RNN(3, 4)(torch.randn(5, 3), lengths=[5]),
            r"lengths need a batched input",
        ),
        (lambda: impl.nn.GRUCell(3, 4)(torch.randn(2, 4)), r"GRUCell\(3, 4\).*\(batch, 3\)"),
        (
            lambda: impl.nn.GRUCell(3, 4)(torch.randn(2, 3), torch.zeros(3, 4)),
            r"hx of shape \(2, 4\)",
        ),
        (lambda: impl.nn.RNN(3, 4, nonlinearity="gelu"), r"'tanh' or 'relu'"),
        (lambda: impl.nn.LSTM(3, 4, dropout=1.5), r"dropout must be in \[0, 1\]"),
        (lambda: impl.nn.LSTM(3, 0), r"must be ≥ 1"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.reference_only
def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="floating-point"):
        impl.nn.LSTM(3, 4)(torch.ones(5, 2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h0, c0\)"):
        impl.nn.LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h, c\)"):
        impl.nn.LSTMCell(3, 4)(torch.randn(2, 3), torch.zeros(2, 4))
