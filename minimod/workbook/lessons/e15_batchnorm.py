TEXT = """Lesson 15: Batch normalisation -- batch statistics and running estimates

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
