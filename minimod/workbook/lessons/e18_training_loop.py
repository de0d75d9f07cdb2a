TEXT = """Lesson 18: The training loop -- accumulation, clipping, schedules, evaluation, checkpoints

The idea
One loop trains every model in minimod. Each optimizer step does the same few things, in an
order that matters, and every part of the run's state is saved so a crash costs nothing:
    model.train(); optimizer.zero_grad()
    for each of k = grad_accum_steps micro-batches:  loss = loss_fn(model, batch)
                                                      (loss / k).backward()
    norm = clip_grad_norm_(params, max_norm)          (or just measure it: clip_grad_norm=None)
    lr = the lr this step uses;  optimizer.step();  scheduler.step()
    every eval_every steps: evaluate in eval mode without gradients; keep best.pt; stop early
    every checkpoint_every steps: last.pt, written atomically
    when trainer.stop is requested (Ctrl-C, SIGTERM): finish the step, last.pt, raise Interrupted

Gradient accumulation: why divide by k
backward() ADDS into .grad. With a loss that is a mean over its b examples,
    ∇ (1/k) Σ_m mean_b(loss of micro-batch m) = ∇ mean over all k·b examples,
so summing the gradients of loss / k gives exactly the gradient of one batch of k·b examples,
computed in k pieces that each fit in memory. Summing plain losses instead multiplies the
gradient (and so the lr, for SGD) by k. The loss to report is the mean, Σ loss.detach() / k:
detach it, or every micro-batch's graph stays alive. zero_grad comes once per STEP, not per
micro-batch. Micro-batch m of step s is the (s·k + m)-th batch: self._batch(s * k + m).

Precision and many processes (lessons 24 and 26: use them as given)
Run each micro-batch's forward and loss inside `with autocast(self.config.precision,
self.device):` (a no-op for fp32), and call backward on `self.scaler.scale(loss / k)` (fp16's
loss scaler; a pass-through otherwise). After the k backward passes: when `self._sync` is not
None (config.data_parallel; by default, a torchrun launch), `self._sync.all_reduce()` averages
the gradients over the processes, the reported loss becomes `all_reduce_mean(total)` and the
items count `get_world_size()` times; then `self.scaler.unscale_(optimizer)` BEFORE measuring
or clipping the norm, and `self.scaler.step(optimizer)` (skipped when fp16 gradients
overflowed) followed by `self.scaler.update()` instead of optimizer.step().

Clipping and the schedule (lesson 7)
Clip after ALL k backward passes (the joint norm of the accumulated gradient), before
optimizer.step(). With clip_grad_norm=None still report the norm (batches.grad_norm): its
spikes show trouble. Read lr = optimizer.param_groups[0]["lr"] BEFORE stepping: step t (from
0) trains with lr(t), then scheduler.step() moves to lr(t + 1).

Evaluation: eval mode, no gradients, the mode restored
Dropout must be off and batch norm must use its running statistics (model.eval()), and no
graph is needed (torch.no_grad(): faster, less memory). Afterwards put the model back in the
mode it had, model.train(was_training), in a finally block so an error in evaluate cannot
leave the model in eval mode. Convert the metrics to floats (they may be 0-dim tensors).

Best and patience
tracker = {"best_value", "best_step", "evals_without_gain"}, saved in every checkpoint.
The first value is the best; later, only a STRICT improvement counts (value < best for
eval_mode "min", value > best for "max"): it resets evals_without_gain to 0 and writes best.pt
(when there is an out_dir); anything else adds 1. Stop when patience is set and
evals_without_gain >= patience.

Atomic checkpoints, and loading without running code
A run can be killed at any moment, also in the middle of torch.save. Never write over the
only good checkpoint: write a temp file in the SAME folder (path.with_name(f".{name}.tmp")),
file.flush() and os.fsync(file.fileno()) so the bytes are on disk, then os.replace(temp, path):
within one filesystem the rename is atomic, so readers see the old file or the new one. On any
failure (except BaseException: KeyboardInterrupt too) delete the temp file and re-raise. On
POSIX, fsync the folder too (os.open it O_RDONLY) so the rename itself survives a power cut.
A .pt file is a pickle, and unpickling can run any code. A checkpoint holds only tensors and
plain data, so load_checkpoint (given) reads it with torch.load(path, weights_only=True),
which refuses anything else. Read it, and never load an untrusted file without that flag.

What you write
Trainer.train_step, Trainer.run_evaluation, the best/patience block of
Trainer._evaluate_and_track, and the write-fsync-replace part of save_checkpoint. The rest of
the Trainer (fit, logging, data, resume, stopping on request) and load_checkpoint are given:
read them. Stopping is a flag, never a signal handler: the task that runs fit installs the
handlers for the duration of the run (train/interrupt.py), the loop only checks the flag.

Classic pitfalls
- (loss).backward() per micro-batch without / k: the step is k times too large.
- optimizer.zero_grad() inside the micro-batch loop: only the last micro-batch counts.
- Clipping each micro-batch's gradient, or clipping after optimizer.step().
- scheduler.step() before optimizer.step(), or logging the lr after the scheduler moved it.
- Evaluating in train mode (dropout on), with gradients, or leaving the model in eval mode.
- value <= best counted as a gain, so a plateau never runs out of patience.
- torch.save straight to path (a crash leaves half a file), a temp file in /tmp (another
  filesystem: the rename is a copy), or forgetting fsync before the rename.

Run it
Once `minimod exercises check 18` passes, your Trainer and checkpoints pretrain a tiny GPT for
30 steps, save last.pt, and a second command continues it from there to step 60 (--use-mine
swaps in every lesson that passes and says which):
    minimod pretrain gpt --use-mine --max-steps 30 --out runs/e18
    minimod pretrain gpt --use-mine --max-steps 60 --out runs/e18 --resume
prints "done: step 30, held-out loss 3.473, perplexity 32.25", then, after the resume, "done:
step 60, held-out loss 3.327, perplexity 27.86" (about 50 s on 2 busy shared cores). Not the
3.063 of one 60-step run (lesson 5's command): a resumed run keeps the schedule of the run it
continues, whose cosine had already reached its floor at step 30.
Next: lesson 8 (Scaled dot-product attention, masks and multi-head attention)

Check it: minimod exercises check 18
Try it (python, in the repository folder):
    >>> import pathlib, tempfile, torch
    >>> from exercises.e18_training_loop import Trainer, load_checkpoint
    >>> from minimod import nn, optim
    >>> from minimod.nn import functional as F
    >>> from minimod.train import TrainConfig
    >>> model = nn.Linear(1, 1, bias=False); _ = nn.init.zeros_(model.weight)
    >>> batches = [(torch.tensor([[1.0]]), torch.tensor([[2.0]])),
    ...            (torch.tensor([[3.0]]), torch.tensor([[6.0]]))]  # two micro-batches, y = 2x
    >>> settings = dict(clip_grad_norm=None, device="cpu", progress=False)
    >>> config = TrainConfig(max_steps=1, grad_accum_steps=2, **settings)
    >>> mse = lambda m, batch: F.mse_loss(m(batch[0]), batch[1])
    >>> trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), batches, config,
    ...                   loss_fn=mse)
    >>> row = trainer.fit().history[0]  # mean loss (4 + 36) / 2, gradient mean(-4, -36)
    >>> row["loss"], row["grad_norm"], model.weight.item()  # w = 0 - 0.1 · (-20)
    (20.0, 20.0, 2.0)
    >>> folder = pathlib.Path(tempfile.mkdtemp()); trainer.save(folder / "last.pt")
    >>> [p.name for p in folder.iterdir()], load_checkpoint(folder / "last.pt")["step"]
    (['last.pt'], 1)
    >>> scores = iter([0.5, 0.7, 0.6, 0.7])  # best at step 2, then two evaluations without gain
    >>> config = TrainConfig(max_steps=9, eval_every=1, eval_metric="accuracy",
    ...                      eval_mode="max", patience=2, **settings)
    >>> result = Trainer(model, optim.SGD(model.parameters(), lr=0.1), batches, config,
    ...                  loss_fn=mse, evaluate=lambda m: {"accuracy": next(scores)}).fit()
    >>> result.stopped_early, result.step, result.best_value, result.best_step
    (True, 4, 0.7, 2)
"""
