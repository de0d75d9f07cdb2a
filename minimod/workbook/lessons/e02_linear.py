TEXT = """Lesson 2: Linear layers and initialisation

The idea
A linear (fully connected) layer maps each input vector to an output vector with a learned
matrix and offset:

    y = x Wᵀ + b        x (*, in_features)  W (out_features, in_features)
                        b (out_features,)   y (*, out_features)

"*" is any number of leading dimensions (none, a batch, batch and sequence, ...): the matrix
product acts on the last axis only. W is stored as (out, in), one row per output unit, exactly
as torch.nn.Linear stores it, so state_dicts move between the two without transposing.
Speed: torch.addmm(b, A, B) computes b + A @ B in one operation (the bias is added while the
product is written, not in a second pass over the output); it wants a 2-D A, so flatten the
leading dimensions into one, (*, in) -> (rows, in), and view the result back to (*, out).

Why initialisation matters
y_j = Σ_i W_ji x_i sums fan_in terms. If the x_i have variance 1 and the W_ji variance s², then
Var(y_j) = fan_in · s². Choosing s = gain / √fan_in keeps activations near variance 1 layer
after layer; too large and they explode, too small and they (and their gradients) vanish.

- fan_in and fan_out of a weight (out, in, *kernel): in · prod(kernel) and out · prod(kernel).
- calculate_gain: 1 for linear/conv/sigmoid, 5/3 for tanh, √2 for relu, 3/4 for selu, and
  √(2 / (1 + slope²)) for leaky_relu (slope 0.01 unless given).
- kaiming_uniform_: std = gain / √fan (fan_in or fan_out, as mode says), drawn from
  U(-bound, bound) with bound = √3 · std (a uniform on [-b, b] has std b/√3).
  kaiming_normal_: N(0, std²) with the same std.
- xavier_uniform_ / xavier_normal_: std = gain · √(2 / (fan_in + fan_out)); bound √3 · std.
- trunc_normal_: N(mean, std²) restricted to [a, b]. Draw u ~ U(Φ(α), Φ(β)) with
  α = (a − mean)/std, β = (b − mean)/std, and return mean + std · Φ⁻¹(u), where
  Φ(z) = (1 + erf(z/√2)) / 2 and Φ⁻¹(u) = √2 · erfinv(2u − 1). No rejection loop needed.
- Linear's default: kaiming_uniform_(W, a=√5), i.e. gain √(2 / (1 + 5)), which makes the bound
  exactly 1/√in_features; the bias is U(-1/√in_features, 1/√in_features).

All init functions fill the tensor in place and return it. The plain fills uniform_, normal_,
constant_, zeros_ and ones_ are the building blocks of the others; they write under
torch.no_grad(), because in-place writes to a parameter must not be recorded by autograd.

What you write
linear, Linear.__init__ (the parameters; bias=False registers bias as None with
register_parameter so that state_dict has no "bias" key), Linear.reset_parameters, and the
init functions above.

Classic pitfalls
- x @ W instead of x @ W.T: same shapes when in == out, so it "works" on square layers.
- Storing W as (in_features, out_features): the state_dict no longer matches torch's.
- Using out_features (fan_out) for the default bound, or a normal instead of a uniform.
- Forgetting self.bias entirely when bias=False: code (and repr) reads self.bias.
- Creating tensors without device= and dtype=: Linear(…, dtype=torch.float64) must work.

Run it
Once `minimod exercises check 2` passes, the spiral example trains an MLP with your Linear
and its initialisation (--use-mine swaps in every lesson that passes and says which; with
lessons 2 to 7 passing, every layer, the loss, the optimizer and the schedule are yours):
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 3 (Activations, softmax and log-softmax)

Check it: minimod exercises check 2
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e02_linear import Linear
    >>> layer = Linear(3, 2)
    >>> [(name, tuple(p.shape)) for name, p in layer.named_parameters()]
    [('weight', (2, 3)), ('bias', (2,))]
    >>> layer(torch.randn(5, 7, 3)).shape
    torch.Size([5, 7, 2])
    >>> bool(layer.weight.abs().max() <= 1 / 3**0.5)
    True
"""
