"""One training loop for every task: language models, classifiers, detectors.

    for each step (config.max_steps of them):
        for each of k = grad_accum_steps micro-batches:
            loss = loss_fn(model, batch); (loss / k).backward()
        clip the gradients' joint norm to clip_grad_norm
        optimizer.step(); scheduler.step()
        every log_every steps:        a row of metrics (metrics.csv, metrics.jsonl)
        every eval_every steps:       evaluate(model) in eval mode -> best.pt, early stopping
        every checkpoint_every steps: last.pt, everything needed to resume exactly
        when trainer.stop is requested (Ctrl-C):  last.pt, then raise Interrupted

Why divide by k: gradients add up over ``backward()`` calls. For a loss that is a mean over its
batch, the mean of k micro-batch means (b examples each) is the mean over all k·b examples, so
accumulating the gradients of loss / k gives the gradient of one big batch: a large batch that
does not fit in memory, computed in pieces. (With ignore_index the micro-batches may count
different numbers of targets, and then it is close, not exact.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from minimod.nn.utils import clip_grad_norm_
from minimod.train.batches import count_items, grad_norm, model_loss, move_to, resolve_device
from minimod.train.checkpoint import (
    check_config,
    load_checkpoint,
    make_checkpoint,
    restore_checkpoint,
    save_checkpoint,
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
from minimod.train.precision import GradScaler, autocast
from minimod.train.progress import Progress
from minimod.train.runlog import RunLog, StepMeter

LIKELY_CAUSES = (
    "likely causes are a learning rate too high, fp16 without loss scaling, or bad values in "
    "the data"
)


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
        # BEGIN SOLUTION
        model, optimizer, k = self.model, self.optimizer, self.config.grad_accum_steps
        scaler = self.scaler  # fp16's loss scaler; a pass-through for fp32 and bf16
        model.train()
        optimizer.zero_grad(set_to_none=True)
        total_loss, items = torch.zeros(()), 0
        for micro in range(k):
            batch = self._batch(self.step * k + micro)
            with autocast(self.config.precision, self.device):  # products in 16 bits if asked
                loss = self._loss(batch)
            # the gradients add up to the gradient of the mean loss
            scaler.scale(loss / k).backward()
            total_loss = total_loss.to(loss.device) + loss.detach() / k
            items += self.count_fn(batch)
        if self._sync is not None:  # data-parallel: every rank gets the mean gradient
            self._sync.all_reduce()
            total_loss = all_reduce_mean(total_loss)
            items *= get_world_size()
        scaler.unscale_(optimizer)  # true gradients before measuring and clipping them
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if self.config.clip_grad_norm is None:
            norm = grad_norm(params)
        else:
            norm = clip_grad_norm_(params, self.config.clip_grad_norm)
        lr = optimizer.param_groups[0]["lr"]
        scaler.step(optimizer)  # skipped when fp16 gradients overflowed
        scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()  # after optimizer.step(): step t trains with lr(t)
        return {"loss": total_loss, "grad_norm": norm, "lr": lr, "items": items}
        # END SOLUTION

    def _loss(self, batch: Any) -> torch.Tensor:
        """``loss_fn(model, batch)``, checked to be a scalar tensor."""
        loss = self.loss_fn(self.model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"loss_fn must return a scalar tensor, got {loss!r:.80}")
        return loss

    def run_evaluation(self) -> dict[str, float]:
        """``evaluate(model)`` in eval mode (dropout off) without gradients; the model's mode
        is restored afterwards (even when evaluate raises). The values become floats."""
        # BEGIN SOLUTION
        was_training = self.model.training
        self.model.eval()
        try:
            # In the training precision, as nanoGPT evaluates (the weights are float32 anyway).
            with torch.no_grad(), autocast(self.config.precision, self.device or "cpu"):
                metrics = self.evaluate(self.model)
        finally:
            self.model.train(was_training)
        return {name: float(value) for name, value in metrics.items()}
        # END SOLUTION

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
        # BEGIN SOLUTION
        value, best, tracker = metrics[config.eval_metric], self.tracker["best_value"], self.tracker
        if best is None or (value < best if config.eval_mode == "min" else value > best):
            tracker.update(best_value=value, best_step=self.step, evals_without_gain=0)
            if self.out_dir is not None:
                self.save(self.out_dir / "best.pt")
        else:
            tracker["evals_without_gain"] += 1
        return config.patience is not None and tracker["evals_without_gain"] >= config.patience
        # END SOLUTION

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


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """torch's deterministic algorithms on (warn_only: an operation without a deterministic
    version warns instead of failing) inside the block, the previous setting restored after."""
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)


def compile_forward(model: Any) -> Any:
    """``model.forward`` becomes ``torch.compile(model.forward)``: an instance attribute
    shadows the method, so ``model(x)`` runs the compiled forward (and its compiled backward).

    On its first call, each function torch 2.13 compiles checks custom ops for aliasing, and
    that check rejects minimod's Parameter (see the comment on ``Parameter`` in nn/module.py):
    ``torch._functorch.config.check_custom_op_aliasing`` is off during the compiled forward's
    calls (compilation included) and only then; the process's own setting stays as it was."""
    import torch._functorch.config as functorch_config

    compiled = torch.compile(model.forward)

    @functools.wraps(compiled)
    def forward(*args: Any, **kwargs: Any) -> Any:
        with functorch_config.patch(check_custom_op_aliasing=False):
            return compiled(*args, **kwargs)

    model.forward = forward
    return model


def _every(step: int, interval: int) -> bool:
    return interval > 0 and step % interval == 0
