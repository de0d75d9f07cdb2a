TEXT = """Lesson 25: Activation checkpointing

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
