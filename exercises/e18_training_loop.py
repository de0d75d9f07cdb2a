"""Lesson 18: The training loop -- accumulation, clipping, schedules, evaluation, checkpoints

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

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 18`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from minimod.nn.utils import clip_grad_norm_
from minimod.train.batches import count_items, grad_norm, model_loss, move_to, resolve_device
from minimod.train.checkpoint import (
    FORMAT,
    VERSION,
    CheckpointError,
    check_config,
    check_plain,
    make_checkpoint,
    restore_checkpoint,
    seed_everything,
    to_plain,
)
from minimod.train.config import RESUMABLE_KEYS, TrainConfig, TrainResult
from minimod.train.distributed import (
    GradientAllReduce,
    all_reduce_mean,
    barrier,
    broadcast_module,
    get_world_size,
    is_initialized,
    is_main,
    shard_batch,
)
from minimod.train.interrupt import Interrupted, StopRequest
from minimod.train.loop import LIKELY_CAUSES, _every, compile_forward, deterministic_algorithms
from minimod.train.precision import GradScaler, autocast
from minimod.train.progress import Progress
from minimod.train.runlog import RunLog, StepMeter

# ---- from minimod/train/loop.py ----------------------------------------


class Trainer:
    """Trains ``model`` with ``optimizer`` (and ``scheduler``) on ``batches``.

    batches: a callable ``next_batch(index) -> batch`` (index counts micro-batches from 0), or an
        iterable of batches, restarted when it runs out (one epoch after another).
    loss_fn(model, batch) -> scalar loss; default: the model returns (output, loss).
    evaluate(model) -> {"name": number}: called in eval mode without gradients.
    data_state: what holds the data stream's position (a torch.Generator, an object with
        state_dict/load_state_dict, or a dict of them), saved in checkpoints for an exact
        resume; default: ``batches`` itself if it has state_dict and load_state_dict.
    model_config: the model's settings, saved in checkpoints and compared on resume;
        default: ``model.config`` if the model has one.
    count_fn(batch) -> items it trains on, for the items_per_s metric (default: count_items).
    callbacks: functions ``callback(trainer)`` called before every step (``trainer.step`` is the
        step about to run), e.g. gradual unfreezing. A resumed run calls them again from the
        checkpoint's step, so they should depend on the step alone.

    ``trainer.stop`` is a StopRequest: once requested (by a signal handler, a callback, another
    thread), fit finishes the current step, writes last.pt and raises ``Interrupted``.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        batches: Callable[[int], Any] | Iterable[Any],
        config: TrainConfig | None = None,
        *,
        loss_fn: Callable[[Any, Any], torch.Tensor] = model_loss,
        scheduler: Any = None,
        evaluate: Callable[[Any], dict[str, float]] | None = None,
        data_state: Any = None,
        model_config: Any = None,
        count_fn: Callable[[Any], int] = count_items,
        callbacks: Iterable[Callable[[Trainer], Any]] = (),
    ) -> None:
        self.config = config = TrainConfig() if config is None else config
        if config.patience is not None and evaluate is None:
            raise ValueError("Trainer: early stopping (patience) needs an evaluate function")
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.batches, self.loss_fn, self.count_fn = batches, loss_fn, count_fn
        self.callbacks = list(callbacks)
        self.evaluate = evaluate
        if data_state is None and all(
            hasattr(batches, name) for name in ("state_dict", "load_state_dict")
        ):
            data_state = batches
        self.data_state = data_state
        self.model_config = getattr(model, "config", None) if model_config is None else model_config
        self.out_dir = None if config.out_dir is None else Path(config.out_dir)
        self.step = 0
        # The loop's own state, saved in checkpoints: the best evaluation so far, and how many
        # evaluations have not beaten it (for early stopping).
        self.tracker = {"best_value": None, "best_step": None, "evals_without_gain": 0}
        self.history: list[dict[str, Any]] = []  # every logged row
        self.device: torch.device | None = None
        self._iterator = self._first_batch = None
        self._compiled = False
        self.scaler = GradScaler(enabled=config.precision == "fp16")
        self._sync: GradientAllReduce | None = None  # data-parallel training (torchrun)
        self.stop = StopRequest()

    # -- one step ----------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        """One optimizer step over grad_accum_steps micro-batches: micro-batch ``m`` of this step
        is ``self._batch(self.step * grad_accum_steps + m)``, its loss ``self._loss(batch)``.

        Returns {"loss": the mean loss (a tensor: reading it would wait for the device),
        "grad_norm": the gradients' joint norm before clipping, "lr": the lr this step used,
        "items": the number of items trained on (``self.count_fn(batch)`` summed)}.
        """
        # BEGIN YOUR CODE
        raise NotImplementedError("e18: Trainer.train_step")
        # END YOUR CODE

    def _loss(self, batch: Any) -> torch.Tensor:
        """``loss_fn(model, batch)``, checked to be a scalar tensor."""
        loss = self.loss_fn(self.model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"loss_fn must return a scalar tensor, got {loss!r:.80}")
        return loss

    def run_evaluation(self) -> dict[str, float]:
        """``evaluate(model)`` in eval mode (dropout off) without gradients; the model's mode
        is restored afterwards (even when evaluate raises). The values become floats."""
        # BEGIN YOUR CODE
        raise NotImplementedError("e18: Trainer.run_evaluation")
        # END YOUR CODE

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume_from: str | Path | None = None) -> TrainResult:
        """Train until max_steps (or early stopping); resume from a checkpoint if given.
        Raises Interrupted, after writing last.pt, when ``self.stop`` is requested.

        With config.deterministic (the default), torch's deterministic algorithms are on while
        fit runs -- a setting of the whole process -- and the previous setting comes back when
        it returns: on the CPU, indexing's backward (embeddings) otherwise adds repeated rows
        in parallel, in a varying order, and a resumed run would drift from the uninterrupted
        one in the last bits."""
        with deterministic_algorithms() if self.config.deterministic else nullcontext():
            return self._fit(resume_from)

    def _fit(self, resume_from: str | Path | None) -> TrainResult:
        config = self.config
        self._prepare()
        if resume_from is not None:
            self.load(resume_from)
        elif self.step == 0:  # a fresh run (a second fit() call continues the first)
            seed_everything(config.seed)
        # Under torchrun only rank 0 writes (metrics, checkpoints) and shows progress.
        runlog = None if self.out_dir is None or not is_main() else RunLog(self.out_dir)
        if runlog is not None:
            runlog.truncate_after(self.step)  # rows after the checkpoint are logged again
            runlog.save_json("config.json", self.run_config())
            self.history = runlog.rows()
        progress = Progress(
            config.max_steps,
            desc="train",
            unit="step",
            initial=self.step,
            enabled=config.progress and is_main(),
        )
        meter, stopped, interrupted = StepMeter(), False, False
        while self.step < config.max_steps and not stopped and not interrupted:
            for callback in self.callbacks:
                callback(self)
            meter.begin()
            meter.add(self.train_step())
            self.step += 1
            last = self.step == config.max_steps
            # Stopping logs a row: a resumed run's next row averages the steps after this one.
            interrupted = self._stop_requested()
            due = _every(self.step, config.eval_every)
            evaluating = self.evaluate is not None and (last or due)
            if last or evaluating or interrupted or self.step % config.log_every == 0:
                row = meter.row(self.step)
                self._record(row, runlog)
                progress.values["loss"] = row["loss"]
            progress.update()
            if evaluating:
                stopped = self._evaluate_and_track(runlog)
            if runlog is not None and (
                last or stopped or interrupted or _every(self.step, config.checkpoint_every)
            ):
                self.save(self.out_dir / "last.pt")
        progress.close()
        if interrupted:
            if self._sync is not None:
                barrier()  # no process leaves (and torchrun ends the rest) before rank 0 saved
            checkpoint = None if self.out_dir is None else self.out_dir / "last.pt"
            raise Interrupted(self.step, checkpoint, self.stop.reason or "stop requested")
        best = self.tracker
        return TrainResult(
            self.step, stopped, best["best_value"], best["best_step"], list(self.history)
        )

    def _stop_requested(self) -> bool:
        """Whether ``self.stop`` asks to stop now. Data-parallel: whether any process's does,
        since all must stop after the same step (the rest would wait in the next all-reduce)."""
        if self._sync is None:
            return self.stop.requested
        flag = torch.tensor(float(self.stop.requested), device=self.device)
        return bool(all_reduce_mean(flag) > 0)

    def _evaluate_and_track(self, runlog: RunLog | None) -> bool:
        """Evaluate, log, keep best.pt; return True when patience has run out.

        ``self.tracker`` holds best_value, best_step and evals_without_gain (saved in checkpoints).
        """
        config = self.config
        metrics = self.run_evaluation()
        if config.eval_metric not in metrics:
            raise ValueError(
                f"evaluate() returned {sorted(metrics)}, but config.eval_metric is "
                f"{config.eval_metric!r}"
            )
        self._record({"step": self.step, **{f"eval_{k}": v for k, v in metrics.items()}}, runlog)
        # BEGIN YOUR CODE
        raise NotImplementedError("e18: Trainer._evaluate_and_track")
        # END YOUR CODE

    def _record(self, row: dict[str, Any], runlog: RunLog | None) -> None:
        """Keep a metrics row in the history and the run folder; stop on a non-finite loss."""
        if "loss" in row and not math.isfinite(row["loss"]):
            raise FloatingPointError(
                f"training diverged: the loss is {row['loss']} at step {row['step']}, so this "
                f"step's weights were not saved over the last checkpoint; {LIKELY_CAUSES}"
            )
        self.history.append(row)
        if runlog is not None:
            runlog.log(row)

    # -- data --------------------------------------------------------------------------------
    def _batch(self, index: int) -> Any:
        """The index-th micro-batch of the run, on the training device."""
        if not self.config.overfit_batch:
            return self._local(self._draw(index))
        if self._first_batch is None:
            self._first_batch = self._local(self._draw(0))
        return self._first_batch

    def _local(self, batch: Any) -> Any:
        """This process's part of a drawn batch, on the training device. Data-parallel: every
        rank draws the same global batch and keeps its own slice (before moving it: only the
        slice travels), so N processes with batch B/N each take exactly the step one process
        takes with B."""
        if self._sync is not None:
            batch = shard_batch(batch)
        return move_to(batch, self.device)

    def _draw(self, index: int) -> Any:
        if callable(self.batches):
            return self.batches(index)
        if self._iterator is None:
            self._iterator = iter(self.batches)
        try:
            return next(self._iterator)
        except StopIteration:  # an epoch is over: start the next one
            self._iterator = iter(self.batches)
            return next(self._iterator)

    # -- device, checkpoints -----------------------------------------------------------------
    def _prepare(self) -> None:
        """Pick the device and move the model there (once), set up data parallelism
        (config.data_parallel) and compile if asked."""
        if self.device is None:
            self.device = resolve_device(self.config.device)
            self.model.to(self.device)
        data_parallel = self.config.data_parallel
        if data_parallel and not is_initialized():
            raise ValueError(
                "Trainer: data_parallel=True needs a torch.distributed process group (launch "
                "with torchrun and call init_distributed first), and none is initialized"
            )
        if data_parallel is None:  # auto: data-parallel exactly inside a process group
            data_parallel = is_initialized()
        if data_parallel and self._sync is None:
            broadcast_module(self.model)  # every rank starts from rank 0's weights
            self._sync = GradientAllReduce(self.model)
        if self.config.compile and not self._compiled:
            compile_forward(self.model)
            self._compiled = True

    def run_config(self) -> dict[str, Any]:
        """The run's settings as plain data: {"train": ..., "model": ...}."""
        return {"train": to_plain(self.config), "model": to_plain(self.model_config)}

    def save(self, path: str | Path) -> None:
        """Write a checkpoint of the run as it is now (atomically); under torchrun, only rank
        0 writes (every rank holds the same state)."""
        if not is_main():
            return
        # A step can leave non-finite weights behind a finite loss: never write those over a
        # good checkpoint (the loss check in _record catches the step after, too late).
        broken = next((n for n, p in self.model.named_parameters() if not p.isfinite().all()), "")
        if broken:
            raise FloatingPointError(
                f"training diverged: {broken} is not finite after step {self.step}, so these "
                f"weights were not saved over the last checkpoint; {LIKELY_CAUSES}"
            )
        parts = (self.model, self.optimizer, self.scheduler, self.data_state)
        trainer = {**self.tracker, "scaler": self.scaler.state_dict()}
        checkpoint = make_checkpoint(
            self.step, *parts, self.run_config(), trainer, self.config.trainable_only
        )
        save_checkpoint(checkpoint, path)

    def load(self, path: str | Path) -> None:
        """Restore a run from a checkpoint; its config must match (see RESUMABLE_KEYS)."""
        self._prepare()
        checkpoint = load_checkpoint(path)
        check_config(checkpoint, self.run_config(), RESUMABLE_KEYS, path)
        self.step = restore_checkpoint(
            checkpoint, self.model, self.optimizer, self.scheduler, self.data_state,
            self.config.trainable_only,
        )  # fmt: skip
        self.tracker = dict(checkpoint["trainer"])
        scaler_state = self.tracker.pop("scaler", None)
        if scaler_state and self.scaler.is_enabled():
            self.scaler.load_state_dict(scaler_state)
        self._iterator = self._first_batch = None
        if not callable(self.batches) and self.data_state is None:
            # A plain iterable cannot jump: replay it to where the run stopped.
            for _ in range(self.step * self.config.grad_accum_steps):
                self._draw(0)


# ---- from minimod/train/checkpoint.py ----------------------------------------


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | Path) -> None:
    """Write atomically: to a temp file in the same folder, fsync, then ``os.replace``.

    ``os.replace`` within one folder (one filesystem) is atomic: readers see the old file or the
    new one. fsync first, so the rename never points at data still in the OS's buffers.
    """
    path = Path(path)
    check_plain(dict(checkpoint))
    path.parent.mkdir(parents=True, exist_ok=True)
    # BEGIN YOUR CODE
    raise NotImplementedError("e18: save_checkpoint")
    # END YOUR CODE


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: a file that would run code is refused."""
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own message suggests weights_only=False, which would run the file's code.
        raise CheckpointError(
            f"{path} holds something other than tensors and plain data: refusing to load it "
            "(unpickling it could run arbitrary code)"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a minimod training checkpoint (no format {FORMAT!r}); for bare "
            "weights use model.load_state_dict(torch.load(path, weights_only=True))"
        )
    if checkpoint.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {checkpoint['version']}, newer than this "
            f"minimod reads ({VERSION}); update minimod"
        )
    return checkpoint
