"""Lesson 15: Batch normalisation -- batch statistics and running estimates

The idea
Batch norm (Ioffe & Szegedy 2015) normalises each CHANNEL with the statistics of the current
batch, taken over the batch and every spatial position -- LayerNorm (lesson 5) normalises each
example's features instead. It keeps every layer's inputs centred and scaled whatever the
weights before it do, which lets convolutional networks train fast with large learning rates.
    input (N, C, *) (BatchNorm1d: (N, C) or (N, C, L); BatchNorm2d: (N, C, H, W))
    statistics over dims (0, 2, 3, …): n = N · H · W values per channel -> shape (C,)
    viewed as (1, C, 1, 1) to broadcast against the input

Training: normalise with the batch
    μ_B = mean(x),  σ²_B = mean((x − μ_B)²)        the BIASED variance (divide by n)
    y = (x − μ_B) / √(σ²_B + ε) · γ + β            γ (weight) = 1, β (bias) = 0 initially
The output of one example now depends on the others in its batch. n must be > 1: the given
check refuses one value per channel (nothing to normalise against, and n − 1 = 0 below). An
empty batch (n = 0) is not refused, as in torch: the given code returns an empty output (the
affine map alone, so weight and bias get zero gradients) and leaves the running statistics as
they are, before your code runs; the module still counts it in num_batches_tracked.

Running estimates, for evaluation
At inference there may be one example, and its prediction must not depend on its neighbours.
So training also keeps estimates of the population's statistics, in BUFFERS: state, saved in
the state_dict and moved by .to(), but not parameters (the optimizer never sees them):
    running_mean ← (1 − m) · running_mean + m · μ_B
    running_var  ← (1 − m) · running_var  + m · σ²_B · n / (n − 1)     the UNBIASED variance
momentum m (0.1) is the weight of the NEW batch. running.lerp_(new, m) is exactly this update.
Do it under torch.no_grad() (the buffers are not part of the graph) and keep their dtype.
The batch is a sample of the population, and n/(n − 1) corrects its variance estimate.
Buffers: running_mean zeros (C,), running_var ones (C,), num_batches_tracked tensor(0) of
dtype torch.long -- with register_buffer, so the keys match torch's; with
track_running_stats=False the three are registered as None (no keys, no running statistics).

momentum=None: a cumulative average
num_batches_tracked counts every training forward pass (while tracking). With momentum=None
the factor is 1 / num_batches_tracked, counting this batch: the running statistics are then
the plain average of all batches seen so far.

Evaluation: normalise with the running estimates, and do not update them.
    training or not track_running_stats  -> the batch's statistics
    eval and track_running_stats        -> running_mean and running_var
batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps), like
torch's F.batch_norm: training=True normalises with the batch and updates the running
statistics in place when they are given (None: no update); training=False uses them, as one
affine map per channel, y = x · scale + shift (scale = γ/√(σ²_run + ε), shift = β − μ_run·scale;
autograd differentiates that). The module's forward picks the statistics, the factor and what
to pass.

The training forward and backward by hand: _BatchNormFunction
In training every output depends on every input of its channel, through μ_B and σ²_B. Autograd
would keep each intermediate of the formula and take many passes; written by hand (per
channel, n values, x_c = x − μ, r = 1/√(σ² + ε), x̂ = x_c·r, sums over the channel's n values):
    forward:   μ = mean(x),  x_c = x − μ,  σ² = mean(x_c²),  y = x_c · (γ·r) + β
    backward:  dβ = Σ dy,    dγ = Σ dy·x̂ = r · Σ dy·x_c
               dx = (γ·r / n) · (n·dy − Σ dy − x̂ · Σ dy·x̂)
Where dx comes from: through x̂ directly γ·r·dy; through μ (every x_c moves when μ moves)
−γ·r·mean(dy); through σ² −γ·r·x̂·mean(dy·x̂). As per-channel coefficients a, b, c:
    dx = a·dy + b·x_c + c,   a = γ·r,   b = −γ·r³·Σ(dy·x_c) / n,   c = −γ·r·Σ(dy) / n
computed as (x_c · b).add_(c).addcmul_(dy, a): in place on one new full-size tensor.
Statistics in at least float32 (bfloat16 inputs under autocast); it keeps x_c and r:
ctx.save_for_backward(x_c, r, weight) -- x_c like the input in the compute dtype, r with
shape (1, C, 1, ...) (keepdim=True), weight (C,) or None -- and sets ctx.dims, the list of
axes the statistics run over ([0, 2, 3] for (N, C, H, W): all but the channels), which the
given backward reads, and ctx.dtype, the input's dtype, to convert dx back. The
forward returns (y, μ, σ²): batch_norm feeds μ and σ² to the running estimates (no gradient
flows through them). Without γ (affine=False) use γ = 1; without β there is no dβ.
The backward is once_differentiable: a second derivative through it raises an error.

What you write
batch_norm after the given check; _BatchNormFunction's forward and backward; the buffers in
_BatchNorm.__init__; _BatchNorm.forward after the input checks (num_batches_tracked, the
momentum factor, which statistics). The affine parameters, reset_parameters, the checks and
BatchNorm1d / BatchNorm2d are given.

Classic pitfalls
- x.var() is unbiased: normalise with the biased variance, update running_var with the
  unbiased one -- not the other way round.
- Momentum backwards, (1 − m) · new + m · old: the running statistics then barely move.
- Statistics over the batch axis only: for images n = N · H · W, not N.
- Updating the running statistics in eval mode, or normalising with the batch in eval mode.
- momentum=None computed as 1 / (num_batches_tracked + 1) after already counting the batch.
- A hand-written backward that treats μ and σ² as constants (dx = γ·r·dy), or forgets the
  path through σ²: the tests recognise both.
- In your own projects: forgetting model.eval() before evaluating, so predictions depend on
  which examples share a batch.

Run it
Once `minimod exercises check 15` passes, your BatchNorm1d -- batch statistics while it trains,
running estimates when it is evaluated -- follows every convolution while a 1-D CNN (lesson 16's
AudioCNN: Conv1d, BatchNorm1d, ReLU, global average pooling) learns the Free Spoken Digit
Dataset's real recordings, as MFCC frames (after `make real`; --use-mine swaps in every lesson
that passes and says which):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e15
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test accuracy
0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the per-class table
(about 40 s on 2 cores shared with other jobs).
Next: lesson 16 (Residual networks: BasicBlock, ResNet and a 1-D audio CNN)

Check it: minimod exercises check 15
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e15_batchnorm import BatchNorm1d
    >>> bn = BatchNorm1d(2)
    >>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> [[round(v, 3) for v in row] for row in bn(x).tolist()]
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> [round(v, 4) for v in bn.running_mean.tolist() + bn.running_var.tolist()]
    [0.2, 2.0, 1.1, 20.9]
    >>> int(bn.num_batches_tracked), list(bn.state_dict())
    (1, ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'])
    >>> bool(bn.eval()(torch.tensor([[0.2, 2.0]])).abs().max() < 1e-6)  # eval: running stats
    True
    >>> average = BatchNorm1d(1, momentum=None)
    >>> _ = average(torch.tensor([[0.0], [2.0]])), average(torch.tensor([[2.0], [4.0]]))
    >>> average.running_mean.tolist()  # the plain mean of the batch means 1 and 3
    [2.0]
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 15`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import describe, expect_floating, expect_tensor
from minimod.nn._function import run
from minimod.nn.module import Module, Parameter

# ---- from minimod/nn/batchnorm.py ----------------------------------------


def batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """input (N, C, *): normalise per channel (dim 1). With training=True use the batch's
    statistics and update running_mean/running_var in place (when given) with ``momentum``;
    otherwise use the running statistics. An empty input gives an empty output and leaves
    the running statistics as they are (as torch)."""
    expect_tensor("batch_norm", input)
    if input.dim() < 2:
        if input.numel() == 0:  # torch accepts an empty 1-D input and returns it
            return input.clone()
        raise ValueError(
            f"batch_norm: expected an input (N, C, *) with channels on dim 1, got shape "
            f"{tuple(input.shape)}"
        )
    shape = [1, -1] + [1] * (input.dim() - 2)  # (C,) -> broadcastable over (N, C, *)
    if input.numel() == 0:  # no values, no statistics: only the affine map, for its shape
        output = input if weight is None else input * weight.view(shape)
        return output if bias is None else output + bias.view(shape)
    if training and input.numel() // input.shape[1] == 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when "
            f"training, got input of shape {tuple(input.shape)}"
        )
    # BEGIN YOUR CODE
    raise NotImplementedError("e15: batch_norm")
    # END YOUR CODE


class _BatchNormFunction(torch.autograd.Function):
    """Training-mode batch_norm with a hand-written backward pass. Per channel, over the
    n = N·(spatial size) values it sees (dims 0, 2, 3, …):

    Forward:   μ = mean(x),  x_c = x − μ,  σ² = mean(x_c²) (biased),  r = 1/√(σ² + ε),
               x̂ = x_c·r,  y = x̂·γ + β
    Backward, given dy:
               dβ = Σ dy,    dγ = Σ dy·x̂
               dx = (γ·r / n) · (n·dy − Σ dy − x̂·Σ dy·x̂)
    (μ and σ² depend on every x of the channel: the two sums are what flows back through
    them.) In coefficients: dx = a·dy + b·x_c + c with a = γr, b = −γr³·Σ(dy·x_c)/n,
    c = −γr·Σ(dy)/n. Keeps x_c and r; statistics in at least float32. Returns (y, μ, σ²):
    the batch statistics feed the running estimates (their gradients are ignored). Double
    backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, eps):
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        compute = torch.promote_types(input.dtype, torch.float32)
        # BEGIN YOUR CODE
        raise NotImplementedError("e15: _BatchNormFunction.forward")
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _grad_mean, _grad_var):
        centered, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        shape = [1, -1] + [1] * (centered.dim() - 2)
        dy = grad_output.to(centered.dtype)
        grad_weight = grad_bias = None
        # BEGIN YOUR CODE
        raise NotImplementedError("e15: _BatchNormFunction.backward")
        # END YOUR CODE


class _BatchNorm(Module):
    """torch.nn's parameters and buffers: weight, bias (if affine; bias=False drops only the
    bias), running_mean, running_var, num_batches_tracked (same names, shapes and dtypes).

    ``freeze_stats = True`` (minimod's, for linear probing and frozen backbones) makes the layer
    behave as in eval mode even after ``model.train()``: it normalises with its running
    statistics and never updates them. It works through the ``training`` property below:
    ``train()``/``eval()`` still record the mode asked for, and ``training`` reads False while
    the statistics are frozen, so ``forward`` needs no special case.
    """

    input_dims: tuple[int, ...] = (2, 3, 4)
    freeze_stats: bool = False  # a class default; set on an instance to freeze its statistics

    # Module.train() sets ``training`` with object.__setattr__, which still goes through a data
    # descriptor such as this property: the requested mode is kept in ``_training``.
    @property
    def training(self) -> bool:
        return self.__dict__.get("_training", True) and not self.freeze_stats

    @training.setter
    def training(self, mode: bool) -> None:
        self.__dict__["_training"] = bool(mode)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        factory = dict(device=device, dtype=dtype)
        if affine:
            self.weight = Parameter(torch.empty(num_features, **factory))
            if bias:
                self.bias = Parameter(torch.empty(num_features, **factory))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # BEGIN YOUR CODE
        raise NotImplementedError("e15: _BatchNorm.__init__")
        # END YOUR CODE
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_floating(self, input)
        # `==` on each, not `in`: under torch.compile(dynamic=True) a module's ints are traced as
        # symbols, which `in` compares by identity (4 in (4,) was False there).
        if not any(input.dim() == dims for dims in self.input_dims):
            raise ValueError(
                f"{describe(self)}: expected a {' or '.join(map(str, self.input_dims))}-D "
                f"input (N, C, …), got shape {tuple(input.shape)}"
            )
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"{describe(self)}: expected {self.num_features} channels on dim 1, got "
                f"{input.shape[1]} (input shape {tuple(input.shape)})"
            )
        # BEGIN YOUR CODE
        raise NotImplementedError("e15: _BatchNorm.forward")
        # END YOUR CODE

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) inputs, e.g. features or audio frames."""

    input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) images."""

    input_dims = (4,)
