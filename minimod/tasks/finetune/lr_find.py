"""``minimod lr-find``: the learning-rate finder (``train.lr_find``) on a fine-tune set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minimod.tasks.common import UsageError
from minimod.tasks.finetune.prepared import complete_options, finetune_settings, prepare
from minimod.tasks.finetune.sources import read_source
from minimod.tasks.run import pick_device
from minimod.train.lr_find import lr_find, plot_lr_find


def find_lr(
    kind: str,
    source: str,
    task: str,
    *,
    preset: str = "tiny",
    out: str | Path = "runs/lr-find",
    seed: int = 0,
    device: str = "auto",
    labels: int | None = None,
    imbalance: float | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 60,
    **options: Any,
) -> dict[str, Any]:
    """The learning-rate finder on a fine-tune set-up: the sweep, the suggestion, a plot in
    ``out``/lr_find.png. The model is restored afterwards (see ``lr_find``)."""
    if not start_lr < end_lr:
        raise UsageError(f"--start-lr ({start_lr}) must be below --end-lr ({end_lr})")
    settings = finetune_settings(
        kind, task, n_train=labels, imbalance=imbalance, batch_size=batch_size, lr=lr
    )
    options = complete_options(settings, options)
    target = pick_device(device)
    ready = prepare(kind, task, read_source(kind, source, preset, task), settings, options, seed)
    ready.model.to(target)
    for group in ready.optimizer.param_groups:  # undo the warmup's lr 0 at step 0: the sweep
        group["lr"] = group["initial_lr"]  # keeps the groups' ratios (layer decay)

    def batches(index: int):
        return tuple(t.to(target) for t in ready.batches(index))

    result = lr_find(
        ready.model, ready.optimizer, batches, ready.loss_fn, start_lr=start_lr, end_lr=end_lr,
        num_steps=steps,
    )  # fmt: skip
    Path(out).mkdir(parents=True, exist_ok=True)
    plot = plot_lr_find(result, Path(out) / "lr_find.png")
    if result.suggestion is None:
        advice = "no suggestion: the sweep stopped too early (raise --end-lr or --steps)"
    else:
        advice = f"suggested lr: {result.suggestion:.2g} (the steepest fall of the loss)"
    lowest = min(range(len(result.losses)), key=result.losses.__getitem__)
    text = (
        f"lr sweep over {len(result.lrs)} steps from {result.lrs[0]:.2g} to {result.lrs[-1]:.2g}; "
        f"lowest smoothed loss {result.losses[lowest]:.4g} at lr {result.lrs[lowest]:.2g}\n"
        f"{advice}\n{plot}"
    )
    return {"result": result, "text": text}
