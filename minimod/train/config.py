"""The settings of a training run, and what a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    max_steps: int = 1000  # optimizer steps
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    clip_grad_norm: float | None = 1.0  # max joint gradient norm; None = no clipping
    log_every: int = 10  # steps between metric rows
    eval_every: int = 0  # steps between evaluations; 0 = only after the last step
    eval_metric: str = "loss"  # key of evaluate()'s dict that picks best.pt and early stopping
    eval_mode: str = "min"  # "min" (a loss) or "max" (an accuracy)
    patience: int | None = None  # stop after this many evaluations without improvement
    checkpoint_every: int = 0  # steps between last.pt saves; 0 = only at the end
    out_dir: str | None = None  # run folder (metrics, checkpoints); None = keep nothing
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    compile: bool = False  # torch.compile the model's forward (see loop.compile_forward)
    precision: str = "fp32"  # fp32 | bf16 | fp16: the dtype of the forward's matrix products
    # fit() turns torch's deterministic algorithms on (warn_only) for the whole process while it
    # runs, and restores the previous setting when it returns: an exact resume needs it (on the
    # CPU, indexing's backward otherwise adds repeated rows in a varying order).
    deterministic: bool = True
    # Average the gradients over the processes of torch.distributed's process group (torchrun).
    # None = auto: data-parallel exactly when a process group is initialized; True requires one;
    # False trains this process alone even inside a process group.
    data_parallel: bool | None = None
    overfit_batch: bool = False  # train on the first batch again and again (a debugging check)
    progress: bool = True  # progress bar on stderr
    # Checkpoints keep only the parameters that train (LoRA adapters, an unfrozen head): a
    # frozen 135M-parameter body is not written twice per evaluation; resuming needs the same
    # frozen weights loaded first (they come from the run's source).
    trainable_only: bool = False

    def __post_init__(self) -> None:
        rules = {  # name: (valid?, what is expected)
            "max_steps": (self.max_steps >= 1, "≥ 1"),
            "grad_accum_steps": (self.grad_accum_steps >= 1, "≥ 1"),
            "log_every": (self.log_every >= 1, "≥ 1"),
            "eval_every": (self.eval_every >= 0, "≥ 0"),
            "checkpoint_every": (self.checkpoint_every >= 0, "≥ 0"),
            "clip_grad_norm": (
                self.clip_grad_norm is None or self.clip_grad_norm > 0,
                "> 0 or None",
            ),
            "eval_mode": (self.eval_mode in ("min", "max"), "'min' or 'max'"),
            "patience": (self.patience is None or self.patience >= 1, "≥ 1 or None"),
            "precision": (self.precision in ("fp32", "bf16", "fp16"), "'fp32', 'bf16' or 'fp16'"),
            "data_parallel": (self.data_parallel in (None, True, False), "True, False or None"),
        }
        for name, (valid, expected) in rules.items():
            if not valid:
                raise ValueError(
                    f"TrainConfig: {name} must be {expected}, got {getattr(self, name)!r}"
                )
        if self.checkpoint_every and self.out_dir is None:
            raise ValueError("TrainConfig: checkpoint_every needs an out_dir to write to")


# Settings that may change when a run resumes: they do not change what the model learns.
# (checkpoint_activations: no longer a TrainConfig field, but older checkpoints hold it.)
_RESUMABLE = (
    "max_steps log_every eval_every patience checkpoint_every out_dir device compile "
    "checkpoint_activations deterministic data_parallel"
)
RESUMABLE_KEYS = tuple(f"train.{key}" for key in (_RESUMABLE + " progress").split())


@dataclass
class TrainResult:
    step: int  # optimizer steps done
    stopped_early: bool
    best_value: float | None  # best evaluation of config.eval_metric, and its step
    best_step: int | None
    history: list[dict[str, Any]] = field(default_factory=list)  # every logged row
