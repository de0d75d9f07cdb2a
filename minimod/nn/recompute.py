"""Activation checkpointing: trade compute for memory by recomputing a block in the backward pass.

Training keeps, for the backward pass, every intermediate tensor of the forward pass: for a
transformer block that is many (B, T, C) and (B, H, T, T) tensors per layer, and it is what
fills memory first as models grow. ``checkpoint(block, x)`` runs the block WITHOUT recording
(under torch.no_grad) and keeps only its inputs; when the backward pass reaches the block, it
runs the block's forward again, this time recording, and backpropagates through that. Memory:
one input per block instead of all its activations. Cost: one more forward per block (about a
third more compute per training step).

``enable_checkpointing(blocks)`` switches it on for a model's blocks (a GPT's
``transformer.h``, a BERT's ``encoder.layer``) without changing the model's code: whoever builds
the model picks the blocks (the CLI's ``--checkpoint-activations`` in ``minimod.tasks.run``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from minimod.nn.module import Module


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
        # BEGIN SOLUTION
        with torch.no_grad():  # nothing recorded, nothing kept but the inputs
            return function(*args)
        # END SOLUTION

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = list(ctx.others)
        for position, tensor in zip(ctx.tensor_positions, ctx.saved_tensors, strict=True):
            args[position] = tensor
        devices = ctx.cuda_rng
        # BEGIN SOLUTION
        # Fresh leaves cut the recomputed graph off from the rest: backward stops at them.
        for position in ctx.tensor_positions:
            original = args[position]
            args[position] = original.detach().requires_grad_(original.requires_grad)
        with torch.random.fork_rng(devices=devices):  # the forward's random state, then back
            torch.set_rng_state(ctx.rng_state)
            if devices:
                torch.cuda.set_rng_state(ctx.cuda_rng_state, devices[0])
            with torch.enable_grad():
                outputs = ctx.function(*args)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [
            (out, grad)
            for out, grad in zip(outputs, grad_outputs, strict=True)
            if isinstance(out, torch.Tensor) and out.requires_grad and grad is not None
        ]
        # Backpropagate through the recomputed block: parameters inside get .grad added, the
        # inputs get .grad, which we hand on to the layers below.
        torch.autograd.backward([out for out, _ in pairs], [grad for _, grad in pairs])
        input_grads = [a.grad if isinstance(a, torch.Tensor) else None for a in args]
        return (None, None, *input_grads)
        # END SOLUTION


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
