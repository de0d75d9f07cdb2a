"""Lesson 25: Activation checkpointing

The idea
To compute gradients, the backward pass needs tensors of the forward pass: the input of every
matrix product, the softmax weights, the normalised activations, ... Training keeps all of
them until the backward pass reaches them, and for a transformer they outgrow the weights
quickly: a GPT block keeps several (B, T, C) tensors, a (B, T, 4C) one and the (B, H, T, T)
attention weights, times the number of layers. Activation checkpointing trades compute for
that memory: run each block WITHOUT recording anything, keep only its input, and when the
backward pass reaches the block, run its forward again -- this time recording -- and
backpropagate through the recomputed graph.

    memory: one block input per layer + the activations of ONE block at a time
    compute: one more forward per block, about a third more per training step
    result: the same gradients, exactly (same operations, same order, same dropout masks)

Recompute, a torch.autograd.Function
    forward(ctx, function, dummy, *args): save the tensor arguments (save_for_backward) and
        the random state (torch.get_rng_state(); CUDA's too when the inputs are on a GPU),
        then return function(*args) computed under torch.no_grad(): nothing is recorded.
    backward(ctx, *grad_outputs): make each saved tensor a fresh leaf that requires grad as
        the original did (tensor.detach().requires_grad_(...)), so the recomputed graph stops
        there; restore the forward's random state inside torch.random.fork_rng() (dropout
        draws the same mask; the global generator is put back afterwards); recompute
        function(*args) under torch.enable_grad(); torch.autograd.backward(outputs,
        grad_outputs) -- the block's parameters get their .grad added right there -- and
        return (None, None, *[each leaf's .grad, or None for non-tensors]).
The dummy argument is an empty tensor that requires grad: autograd calls a Function's
backward only if some input needs a gradient, and the block's parameters are not inputs of
the Function. Without it, a block whose input does not require grad (a frozen embedding
below it) would silently get no parameter gradients.
checkpoint(function, *args) applies Recompute while gradients are recorded and simply calls
the function otherwise (evaluation, generation).

Wrapping a model's blocks
The models know nothing of checkpointing: GPT.hidden_states and BERT's encoder are plain loops
over their blocks. enable_checkpointing(blocks) gives each block an instance attribute
`forward`, which Module.__call__ finds before the class's method: while the block trains with
gradients enabled it runs checkpoint(the class's forward, *args), otherwise the plain forward.
No wrapper module, so the parameters, state_dict keys and repr stay the same, and
enable_checkpointing(blocks, enabled=False) deletes the attribute again. Whoever builds the
model picks the blocks: enable_checkpointing(gpt.transformer.h) or
enable_checkpointing(bert.encoder.layer) (the CLI's --checkpoint-activations, in
minimod/tasks/run.py).

What you write
Recompute's forward (the no-grad call) and backward (the recomputation and the backward
through it). checkpoint and enable_checkpointing are given.

Classic pitfalls
- Returning the recomputed outputs' .grad instead of the inputs' (outputs are not leaves).
- Forgetting the random state: with dropout, the recomputed block drops other elements and
  the gradients no longer match the forward that produced the loss.
- Recomputing without torch.enable_grad(): backward runs with gradients off, nothing is
  recorded and autograd.backward fails.
- Blocks that change their inputs in place: the saved input is no longer what went in.

Run it
Once `minimod exercises check 25` passes, a tiny GPT pretrains with every block run through
your Recompute: nothing inside a block is kept for the backward, it is computed again
(--use-mine swaps in every lesson that passes and says which):
    minimod pretrain gpt --checkpoint-activations --use-mine --out runs/e25
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.063,
perplexity 21.38": exactly the numbers of the same run without checkpointing (lesson 5's
command), as a recomputation must give; each step cost about 3 times as long here (370 ms
against 110 ms on 2 busy shared cores, about 40 s in all) -- on a tiny model the recomputed
forward is a large share, on a large one it is about a third more.
Next: lesson 26 (Data parallelism: broadcast, bucketed gradient all-reduce, distributed sampling)

Check it: minimod exercises check 25
Try it (python, in the repository folder):
    >>> import copy
    >>> import torch
    >>> from minimod.models.gpt import GPT, GPTConfig
    >>> from exercises.e25_activation_checkpointing import checkpoint
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> config = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)
    >>> block = GPT(config).transformer.h[0]
    >>> twin = copy.deepcopy(block)
    >>> x = torch.randn(2, 8, 8, requires_grad=True)
    >>> block(x).square().sum().backward()
    >>> checkpoint(twin, x.detach()).square().sum().backward()
    >>> all(torch.allclose(a.grad, b.grad) for a, b in zip(block.parameters(), twin.parameters()))
    True
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 25`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from minimod.nn.module import Module

# ---- from minimod/nn/recompute.py ----------------------------------------


class Recompute(torch.autograd.Function):
    """forward(ctx, function, dummy, *args) -> function(*args), recorded later, not now.

    ``dummy`` is an empty tensor that requires grad: it makes autograd call backward even when
    no input of the block requires grad (a frozen embedding below it), so that the block's
    parameters still get their gradients.
    """

    @staticmethod
    def forward(ctx, function, dummy, *args):
        ctx.function = function
        # Dropout inside the block must drop the same elements when it is recomputed.
        ctx.rng_state = torch.get_rng_state()
        ctx.cuda_rng = [a.device for a in args if isinstance(a, torch.Tensor) and a.is_cuda][:1]
        if ctx.cuda_rng:
            ctx.cuda_rng_state = torch.cuda.get_rng_state(ctx.cuda_rng[0])
        ctx.tensor_positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        ctx.others = [None if isinstance(a, torch.Tensor) else a for a in args]
        ctx.save_for_backward(*(args[i] for i in ctx.tensor_positions))
        # BEGIN YOUR CODE
        raise NotImplementedError("e25: Recompute.forward")
        # END YOUR CODE

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = list(ctx.others)
        for position, tensor in zip(ctx.tensor_positions, ctx.saved_tensors, strict=True):
            args[position] = tensor
        devices = ctx.cuda_rng
        # BEGIN YOUR CODE
        raise NotImplementedError("e25: Recompute.backward")
        # END YOUR CODE


def checkpoint(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, its activations recomputed in the backward pass instead of kept.

    Outside training (no gradient needed) it simply calls the function. The function must be
    deterministic given its inputs and the random state (dropout is replayed exactly), and must
    not change its inputs in place. Double backward through it is not supported.
    """
    if not torch.is_grad_enabled():
        return function(*args)
    dummy = torch.empty(0, requires_grad=True)
    return Recompute.apply(function, dummy, *args)


class _Checkpointed:
    """The ``forward`` that ``enable_checkpointing`` gives a block: ``checkpoint(forward, *args)``
    while the block trains with gradients enabled, the plain forward otherwise (evaluation,
    generation)."""

    def __init__(self, block: Module) -> None:
        self.block = block
        self.previous = block.__dict__.get("forward")  # an instance-level forward it shadows

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = self.previous or type(self.block).forward.__get__(self.block)
        if not (self.block.training and torch.is_grad_enabled()):
            return forward(*args, **kwargs)
        if kwargs:
            raise TypeError(
                f"a checkpointed {type(self.block).__name__} takes positional arguments only, "
                f"got {sorted(kwargs)}"
            )
        return checkpoint(forward, *args)


def enable_checkpointing(blocks: Iterable[Module], enabled: bool = True) -> None:
    """Recompute each of ``blocks`` in the backward pass (with enabled=False: stop doing so).

    blocks: the modules to recompute one at a time, e.g. a GPT's ``model.transformer.h`` or a
    BERT's ``model.encoder.layer``. Each then keeps only its inputs while training, and runs its
    forward again when the backward pass reaches it. The model's own code stays a plain loop over
    its blocks: the switch is an instance attribute ``forward`` on each block, which
    ``Module.__call__`` finds before the class's method, so parameters, ``state_dict`` keys and
    ``repr`` do not change. Calling it twice wraps nothing twice.
    """
    blocks = list(blocks)
    if not blocks:
        raise ValueError("enable_checkpointing: no blocks given (e.g. model.transformer.h)")
    for block in blocks:
        if not isinstance(block, Module):
            raise TypeError(
                f"enable_checkpointing: expected the model's blocks (modules), "
                f"got {type(block).__name__}"
            )
    for block in blocks:
        wrapper = block.__dict__.get("forward")
        if isinstance(wrapper, _Checkpointed):  # back to the forward it replaced
            del block.forward
            if wrapper.previous is not None:
                block.forward = wrapper.previous
        if enabled:
            block.forward = _Checkpointed(block)
