TEXT = """Lesson 24: Mixed precision -- autocast in bf16/fp16 and dynamic loss scaling

The idea
Matrix products dominate training time, and 16-bit numbers halve their memory traffic (GPUs
also multiply them several times faster). So run the products in 16 bits and keep everything
that accumulates small changes in 32: the parameters ("master weights"), their gradients and
the optimizer's update. In bf16 that is all; fp16 also needs the loss scaled.

The three formats (sign, exponent, mantissa bits)
    fp32  1 + 8 + 23   largest 3.4e38   smallest normal 1.2e-38   eps 1.2e-7  (~7 digits)
    bf16  1 + 8 + 7    largest 3.4e38   smallest normal 1.2e-38   eps 7.8e-3  (~2-3 digits)
    fp16  1 + 5 + 10   largest 65504    smallest normal 6.1e-5    eps 9.8e-4  (~3 digits)
bf16 is fp32 with the mantissa cut short: the same range, little precision. fp16 keeps more
precision but little range: below 6e-8 everything is 0, above 65504 it is inf. Gradients are
often 1e-6 ... 1e-9, so in fp16 many of them underflow to 0 and the model stops learning;
in bf16 they survive (coarsely). eps is the gap above 1.0: in bf16, 1 + 0.001 == 1 -- which is
why an update lr·g applied to a bf16 weight would mostly vanish, and the weights stay fp32.

What autocast does
Inside `with autocast("bf16", device):` (torch.autocast), ops on torch's lists cast their
inputs as they run: matmul / bmm / addmm / linear-like products to the low dtype (the hardware
still sums the products in fp32), a few numerically touchy ops to fp32. Other ops keep their
inputs' dtype, and type promotion decides: bf16 activations + an fp32 bias -> fp32. The
parameters are not converted; the backward runs each op in its forward's dtype, so every
parameter gets an fp32 gradient. Wrap the forward and the loss, not backward() or the step.

Loss scaling (fp16)
Multiply the loss by S before backward: every gradient is then S·g (the chain rule is linear),
lifted out of the underflow zone. Before the step, unscale: g = (S·g) / S, in fp32. If S is too
large some S·g overflow to inf (or inf − inf = NaN): then skip this step entirely and lower S.
The dynamic schedule finds the largest safe S by itself:
    inf/NaN in any gradient:  skip optimizer.step();  S ·= backoff_factor (0.5);  count = 0
    otherwise:                optimizer.step();  count += 1;
                              if count == growth_interval (2000): S ·= growth_factor (2); count = 0
Start high (2**16): the first steps may be skipped while S settles, then skips are rare.

The order, with gradient clipping (which must see the true gradients)
    with autocast(precision, device):
        loss = loss_fn(model, batch)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # once per step, after the last backward
    clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)              # unscale_ here if you did not; skip on inf/NaN
    scaler.update()
With accumulation, scale each micro-batch's loss; unscale once. GradScaler(enabled=False)
passes everything through, so one loop serves fp32, bf16 (no scaler needed) and fp16.

What you write
autocast: a null context for fp32, else torch.autocast(device_type, dtype=...).
GradScaler.scale: loss times the scale, a 0-dim float32 tensor (made for you by _scale_on).
GradScaler.unscale_: multiply each gradient by 1/S in place; store in state["found_inf"] a
0-dim bool tensor, True when any gradient held inf/NaN -- one torch.stack of the per-gradient
isfinite().all() flags, checked before unscaling, and no .item() (each waits for the GPU).
GradScaler.step (unscale_ has run by then): read found_inf once, set last_step_skipped, and
call optimizer.step() only when no inf/NaN was found; return its result, or None when skipped.
GradScaler.update: the schedule above (the flags are in `found`; compute with Python floats
and write S back with self._scale.fill_). The argument checks and bookkeeping are minimod's.

Classic pitfalls
- Stepping on still-scaled gradients: an update S times too large.
- Unscaling twice (unscale_ for clipping, then again in step): updates S times too small.
- Not skipping an inf step: one bad batch turns every weight into NaN.
- Not resetting the growth counter after a skip: S grows back too soon and overflows again.
- Clipping before unscale_: the threshold is compared with S times the true norm.
- loss * 65536.0 on an fp16 loss overflows; multiply by a float32 tensor (the result is fp32).
- Converting the model with .half(): no fp32 master weights, updates round away.
- Saving checkpoints without the scaler's state_dict(): a resumed run restarts at 2**16.

Run it
Once `minimod exercises check 24` passes, a tiny GPT pretrains in bfloat16 under your autocast
(--use-mine swaps in every lesson that passes and says which; bf16 needs no loss scaling:
--precision fp16 on a GPU is where your GradScaler runs):
    minimod pretrain gpt --precision bf16 --use-mine --out runs/e24
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.065,
perplexity 21.43", next to fp32's 3.063 and 21.38 for the same run (lesson 5's command): the
matrix products in bf16 cost almost nothing in loss (about 20 s on 2 shared cores).
Next: lesson 25 (Activation checkpointing: recompute instead of remember)

Check it: minimod exercises check 24
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e24_mixed_precision import GradScaler, autocast
    >>> from minimod.optim import SGD
    >>> torch.tensor(1e-8).half().item(), torch.tensor(1.001).bfloat16().item()  # underflow, eps
    (0.0, 1.0)
    >>> with autocast("bf16", "cpu"):
    ...     (torch.randn(2, 3) @ torch.randn(3, 2)).dtype
    torch.bfloat16
    >>> w = torch.ones(2, requires_grad=True); opt = SGD([w], lr=0.1)
    >>> scaler = GradScaler(init_scale=1024.0)
    >>> scaler.scale((w * 3).sum()).backward(); w.grad
    tensor([3072., 3072.])
    >>> scaler.step(opt); scaler.update(); w.detach(), scaler.get_scale()
    (tensor([0.7000, 0.7000]), 1024.0)
    >>> opt.zero_grad(); scaler.scale((w * float("inf")).sum()).backward()
    >>> scaler.step(opt); scaler.update(); w.detach(), scaler.get_scale(), scaler.last_step_skipped
    (tensor([0.7000, 0.7000]), 512.0, True)
"""
