TEXT = """Lesson 7: Warmup, cosine schedules and gradient clipping

The idea
Two small tools keep training stable. A schedule changes the learning rate as training goes:
a short warmup from 0 avoids huge early steps while AdamW's moving averages are still noisy,
and a decay at the end lets the weights settle. Gradient clipping caps the size of one update,
so a single bad batch cannot throw the weights far away.

Schedules (torch.optim.lr_scheduler's design)
A scheduler holds the optimizer and a step count t = last_epoch (0 after construction). At
construction it records each group's base lr (group["initial_lr"]) and sets step 0's lr. Call
scheduler.step() once after every optimizer.step(): t ← t + 1 and each group["lr"] ← get_lr().
So the k-th optimizer step (k = 0, 1, ...) trains with the lr of t = k.
- LRScheduler (base): step(), get_last_lr(), state_dict() (every attribute but the optimizer).
- LambdaLR: lr(t) = base_lr · factor(t), one factor function per group or one for all.
- WarmupDecayLR(w warmup steps, T total steps, r min_lr_ratio), the shared warmup + decay:
      factor(t) = t / w                                  for t < w  (so lr = 0 at t = 0)
      factor(t) = r + (1 − r) · decay(q)                 otherwise,
      q = min(1, (t − w) / (T − w))  (q = 1 if w = T)    the progress of the decay
  so the factor is 1 at t = w, and r at t = T and after. Its subclasses give decay(q):
  WarmupCosineLR: ½ · (1 + cos(π · q));  WarmupLinearLR: 1 − q.
- ConstantWarmupLR: t / w, then 1.
- LinearLR: factor = start + (end − start) · min(t, total_iters) / total_iters.
- CosineAnnealingLR: lr(t) = η_min + (base_lr − η_min) · ½ · (1 + cos(π · t / T_max)); as in
  torch it rises again after T_max (period 2 · T_max).

Gradient clipping (torch.nn.utils)
    total = ‖(‖g_1‖_p, ‖g_2‖_p, ...)‖_p           the norm of all gradients as one long vector
    g_i ← g_i · min(1, max_norm / (total + 1e−6))    the same factor for every gradient
clip_grad_norm_ returns total (before clipping), which is worth logging: spikes show trouble.
norm_type may be inf (the largest |entry|). Parameters without a gradient are skipped; with
error_if_nonfinite an inf/nan total raises instead of scaling. clip_grad_value_ clamps every
entry to [−clip_value, clip_value] instead (this changes the update's direction).
Order in a training step: loss.backward(), clip, optimizer.step(), scheduler.step().

Classic pitfalls
- Clipping each gradient by its own norm: that changes the update's direction.
- Clipping the parameters instead of the gradients, or clipping before backward().
- Calling scheduler.step() before optimizer.step(), which skips the first lr.
- Warmup that starts at lr = base_lr / w instead of 0, or cosine progress measured from 0
  instead of from the end of warmup.
- Multiplying group["lr"] by the factor each step (it compounds): always start from base_lr.

Run it
The spiral example follows your warmup + cosine schedule (20 warmup steps) and clips with your
clip_grad_norm_ once `minimod exercises check 7` passes; --use-mine swaps in every lesson that
passes:
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 17 (Tokenization: byte-level BPE merges)

Check it: minimod exercises check 7
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e07_schedules_clipping import WarmupCosineLR, clip_grad_norm_
    >>> from minimod.optim import SGD
    >>> opt = SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> schedule, lrs = WarmupCosineLR(opt, warmup_steps=2, total_steps=6), []
    >>> for _ in range(7):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); schedule.step()
    >>> lrs
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    >>> w = torch.ones(4, requires_grad=True); (3 * w).sum().backward()
    >>> clip_grad_norm_([w], max_norm=1.0).item(), [round(g, 3) for g in w.grad.tolist()]
    (6.0, [0.5, 0.5, 0.5, 0.5])
"""
