"""Lesson 27's pitfalls: RNN, GRU and LSTM."""

from pitfalls import Mutant, NotAMutant

T = "tests/test_rnn.py::"
TWIN = (T + "test_layer_matches_torch",)

MUTANTS = [
    Mutant(
        "GRU: r ⊙ (h W_hnᵀ) + b_hn",
        "n = torch.tanh(torch.addcmul(i_n, r, h_n))",
        "b_hn = 0 if bias_hh is None else bias_hh[2 * size :]\n"
        "    n = torch.tanh(i_n + r * (h_n - b_hn) + b_hn)",
        "r gates b_hn too",
        TWIN,
    ),
    Mutant(
        "h' = z ⊙ n + (1 − z) ⊙ h",
        "return torch.lerp(n, h, z)",
        "return torch.lerp(h, n, z)",
        "z weighs the old state",
        TWIN,
    ),
    Mutant(
        "Gate blocks in the paper's order (i, f, o, g)",
        "i, f, g, o = gates.chunk(4, dim=-1)",
        "i, f, o, g = gates.chunk(4, dim=-1)",
        "(i, f, g, o)",
        TWIN,
    ),
    Mutant(
        "Reverse direction on padded input starting at t = T − 1 with the real state",
        "        if mask is None:\n            state = new\n",
        "        if mask is None or reverse:\n            state = new\n",
        "own last step",
        TWIN,
    ),
    Mutant(
        "h_n taken as output[-1]",
        "                finals.append(state)\n",
        "                finals.append((out[-1], *state[1:]))\n",
        "not output[-1]",
        TWIN,
    ),
    Mutant(
        "Dropout after the last layer, or in eval mode",
        "x = apply_dropout(x, self.dropout, self.training)",
        "x = apply_dropout(x, self.dropout, True)",
        "only in training mode",
        (T + "test_dropout_between_layers",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "gi[t] inside the loop",
        "gi[t] gives exactly the same values and gradients (the bullet says so): only the "
        "backward's cost grows, which no value test sees",
    ),
]
