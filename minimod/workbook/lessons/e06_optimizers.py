TEXT = """Lesson 6: Optimizers -- SGD with momentum and AdamW

The idea
After loss.backward() every parameter p holds its gradient g = ∂loss/∂p in p.grad. An
optimizer turns gradients into updates, in place, so the model (which holds the very same
Parameter objects) sees the new values. Updates must not be recorded by autograd: step() runs
under torch.no_grad().

The Optimizer base class (given: construction and add_param_group)
- param_groups: a list of dicts, each {"params": [tensors], "lr": ..., other options}; groups
  let one model use several learning rates (e.g. no weight decay on biases and norms).
- state: a dict from parameter to its own dict (momentum buffers, moving averages, step).
You write zero_grad(set_to_none=True) -- set each p.grad to None (or zero it in place) --
and state_dict() / load_state_dict(), which save the options and state with parameters
numbered 0, 1, 2, ... in group order (tensors cannot be saved as dict keys), in exactly the
layout torch.optim uses, so checkpoints move between minimod and torch.

SGD (lr, momentum μ, dampening τ, weight_decay λ, nesterov), for each p with a gradient:
    g ← g + λ · p                                  (L2 penalty, added to the gradient)
    b ← g on the first step, else μ · b + (1 − τ) · g       (b = state[p]["momentum_buffer"])
    g ← g + μ · b if nesterov else b               (only when μ ≠ 0)
    p ← p − lr · g
The momentum buffer starts as the first gradient itself, not zeros. maximize=True negates g.

AdamW (lr, betas (β1, β2), eps ε, weight_decay λ, amsgrad), at step t = 1, 2, ...:
    p ← p · (1 − lr · λ)                 decoupled weight decay: shrinks p directly
    m ← β1 · m + (1 − β1) · g            first moment: a moving average of g
    v ← β2 · v + (1 − β2) · g²           second moment: a moving average of g²
    m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)        bias correction
    p ← p − lr · m̂ / (√v̂ + ε)
m and v start at zero, so without the bias correction the first steps would be far too small:
at t = 1, m̂ = g and v̂ = g², and the step is lr · g / (|g| + ε) ≈ lr · sign(g). Each coordinate
is scaled by its own 1/√v̂. With amsgrad, use v̂ from the running maximum of v. State keys
(as in torch): "step", "exp_avg" (m), "exp_avg_sq" (v), "max_exp_avg_sq".
Why "decoupled": Adam with L2 adds λ · p to g, and the 1/√v̂ scaling then weakens the decay
exactly for the weights with large gradients. AdamW decays every weight at the same rate.

Classic pitfalls
- p = p − lr * g rebinds a local name; the model never sees it. Update in place: p.add_(...).
- Forgetting to skip parameters whose grad is None (frozen layers, unused embeddings).
- AdamW's decay added to the gradient (that is Adam + L2), or applied after the Adam step.
- No bias correction, a step counter shared by all parameters, or t starting at 0.
- ε inside the square root: torch uses √v̂ + ε.
- A momentum buffer that starts at zeros, or dampening applied on the first step.

Run it
The spiral example trains with your AdamW once `minimod exercises check 6` passes;
--use-mine swaps in every lesson that passes:
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 7 (Warmup, cosine schedules and gradient clipping)

Check it: minimod exercises check 6
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e06_optimizers import AdamW
    >>> w = torch.zeros(2, requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.0)
    >>> ((w - 3) ** 2).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.1, 0.1]
    >>> for _ in range(300):
    ...     opt.zero_grad(); ((w - 3) ** 2).sum().backward(); opt.step()
    >>> [round(x, 1) for x in w.tolist()]
    [3.0, 3.0]
"""
