"""``minimod detect``: a detection run's boxes drawn into a picture (``detect_run``);
``--init RUN`` of ``pretrain cnn --task detect-*`` (``init_body``); and ``minimod finetune cnn
--from mobilenet_v2|RUN|scratch --task detect-digits`` (``finetune_detector``). The tasks
themselves are in ``tasks.detect`` (which ``tasks.run`` imports, so the run-folder readers used
here cannot live there).

A fine-tuned detector's run folder is a detection run's (run.json without "kind": "finetune",
so ``minimod detect`` and ``minimod evaluate`` read it as they read ``pretrain cnn --task
detect-digits``), with three more entries in run.json: "source" (mobilenet_v2, scratch or the
run's absolute path), "options" (freeze, unfreeze_every, layer_decay) and "test" (best.pt's
mAP on 500 test canvases).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from minimod.data.images import read_image, resize
from minimod.models.detector import Detector
from minimod.models.loading import LoadReport, load_pretrained
from minimod.models.mobilenet import MobileNetV2Config
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks.common import UsageError
from minimod.tasks.detect import DATA, ap_table, average_precision, detect_all
from minimod.tasks.finetune.sources import configure_training, optimizer_groups, read_source
from minimod.tasks.pretrain import fit_run, make_settings
from minimod.tasks.run import (
    BUILDERS,
    RUN_FILE,
    check_resume,
    load_run,
    load_weights,
    model_tuples,
    one_line,
    pick_device,
    plot_losses,
    read_run,
    write_json,
)
from minimod.tasks.runlock import run_folder_lock
from minimod.train.checkpoint import CheckpointError, load_checkpoint, seed_everything, to_plain
from minimod.train.config import TrainConfig
from minimod.train.diagnostics import Diagnostics
from minimod.train.freezing import count_parameters
from minimod.train.loop import Trainer
from minimod.train.runlog import write_text_atomic


# -- a body from another run (--init) -----------------------------------------------------------
def body_run(run: str | Path, option: str = "--init") -> dict[str, Any]:
    """The run.json of a run a detector's body can start from: a ``pretrain cnn`` classifier
    or a detection run (else one UsageError naming ``option``)."""
    record = read_run(run)
    if record.get("kind") == "finetune" or record["task"] not in ("cnn", *DATA):
        raise UsageError(f"{option} {run}: expected a cnn or detection pretrain run")
    return record


def init_body(
    model: Detector, run: str | Path, run_dir: str | Path, option: str = "--init"
) -> LoadReport:
    """Fill the detector's body from a run's best.pt (else last.pt): a detection run (its
    ``body.*``) or a ``pretrain cnn`` shapes classifier (its ResNet). Tensors of another shape
    (other widths) are skipped; the report, written to run_dir/load_report.txt with the run it
    came from, says which. The head keeps its initialisation."""
    record = body_run(run, option)
    path = Path(run) / "best.pt"
    path = path if path.is_file() else Path(run) / "last.pt"
    try:
        state = load_checkpoint(path)["model"]
    except (CheckpointError, KeyError) as error:
        raise UsageError(f"{option} {run}: {one_line(error)}") from None
    detection = record["task"] in DATA
    report = load_pretrained(model, state, source_prefix="body." if detection else "")
    if not report.loaded:
        raise UsageError(
            f"{option} {run}: no tensor of its body fits this model ({report.summary()})"
        )
    source = f"{option} {Path(run).resolve()} ({path.name})\n"
    (Path(run_dir) / "load_report.txt").write_text(source + str(report) + "\n", encoding="utf-8")
    return report


# -- minimod finetune cnn --task detect-digits --------------------------------------------------
TEST_IMAGES = 500  # the test canvases a fine-tuned detector's report counts (best.pt's mAP)
# The fine-tune options a detector has no use for: the option's flag, its default, and why.
NOT_FOR_DETECTION = {
    "lora_rank": ("--lora-rank", None, "LoRA adapts transformers' linear layers (bert, gpt)"),
    "lora_alpha": ("--lora-alpha", None, "LoRA adapts transformers' linear layers (bert, gpt)"),
    "class_weights": ("--class-weights", "none",
                      "the detector's focal loss already weighs the rare object cells"),
    "sampler": ("--sampler", "random",
                "a canvas holds several classes: there is no class to sample by"),
    "loss": ("--loss", "ce", "the detector trains with its own focal + box loss"),
    "pooling": ("--head", None, "it pools sequences, and a detector predicts every cell"),
    "imbalance": ("--imbalance", None, "it is for the sentiment tasks"),
    "spec_augment": ("--spec-augment", None, "it is for the speech tasks"),
    "domain": ("--domain", None, "it is for sentiment-real"),
}  # fmt: skip


def _source_settings(source: str, task: str, preset: str, seed: int, overrides: dict) -> tuple:
    """(settings, the body's ImageNet weights or None): the task's preset with the overrides,
    and the body's architecture from the source (a run's, MobileNetV2Body's, or the preset's)."""
    settings = make_settings(task, preset, seed, **overrides)
    weights = None
    if source == "mobilenet_v2":
        weights = read_source("cnn", source).state
        settings.update(body="mobilenet_v2", stride=8, model=to_plain(MobileNetV2Config()))
    elif source != "scratch":
        body = body_run(source, "--from")["settings"]
        settings["model"] = body["model"]
        settings.update({key: body[key] for key in ("body", "stride") if key in body})
    return settings, weights


def finetune_detector(
    kind: str,
    source: str,
    task: str,
    *,
    preset: str = "tiny",
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
    labels: int | None = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    diagnostics: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune a Detector on ``task`` (detect-digits) from ``source``: "mobilenet_v2" (a
    ``MobileNetV2Body`` with torchvision's ImageNet weights), a cnn or detection pretrain run
    (its architecture and body weights) or "scratch" (the ``preset``'s ResNet). The preset
    gives the data and training settings; labels: training canvases. options: freeze,
    unfreeze_every, layer_decay as in ``finetune`` (the others refused in one line). Returns
    ``finetune``'s summary (test: best.pt's mAP on the test canvases)."""
    start = time.perf_counter()
    if kind != "cnn" or task not in DATA:
        raise UsageError(f"--task {task} fine-tunes a detector: use `minimod finetune cnn`")
    for name, (flag, plain, why) in NOT_FOR_DETECTION.items():
        if options.pop(name, plain) not in (plain, False):
            raise UsageError(f"{flag} is not an option of --task {task}: {why}")
    options = {"freeze": options.get("freeze") or "none", "layer_decay": options.get("layer_decay"),
               "unfreeze_every": options.get("unfreeze_every"), "lora_rank": None}  # fmt: skip
    overrides = dict(max_steps=max_steps, batch_size=batch_size, lr=lr, n_train=labels)
    settings, weights = _source_settings(source, task, preset, seed, overrides)
    pick_device(device)
    run_dir = Path(out) if out is not None else Path("runs") / f"finetune-{kind}-{task}"
    named = source if source in ("scratch", "mobilenet_v2") else str(Path(source).resolve())
    record = {"task": task, "preset": preset, "data": None, "settings": settings,
              "source": named, "options": options}  # fmt: skip
    with run_folder_lock(run_dir):
        if resume:
            check_resume(run_dir, record, ("task", "preset", "source", "options"))
        elif (run_dir / "last.pt").exists() and not overwrite:
            raise UsageError(
                f"{run_dir} already holds a run; add --resume to continue it, or pick another --out"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        wired = BUILDERS[task](model_tuples(settings), None, run_dir, fresh=not resume)
        seed_everything(seed)
        model = wired.build()
        if not resume and weights is not None:
            report = load_pretrained(model, weights)
            write_text_atomic(run_dir / "load_report.txt", f"--from {source}\n{report}\n")
            log(f"pretrained weights: {report.summary()} (details: {run_dir}/load_report.txt)")
        elif not resume and source != "scratch":
            log(f"pretrained weights: {init_body(model, source, run_dir, '--from').summary()}")
        unfreezer = configure_training(model, kind, options)
        groups = optimizer_groups(
            model, settings["lr"], settings["weight_decay"], options["layer_decay"]
        )
        optimizer = AdamW(groups, lr=settings["lr"], betas=tuple(settings["betas"]), foreach=True)
        schedule = WarmupCosineLR(
            optimizer, settings["warmup_steps"], settings["max_steps"], settings["min_lr_ratio"]
        )
        trainable, total = count_parameters(model)
        write_json(run_dir / RUN_FILE, record)
        log(f"finetune {kind} on {task} from {source}: {trainable:,} of {total:,} parameters "
            f"train, run folder {run_dir}")  # fmt: skip
        config = TrainConfig(
            max_steps=settings["max_steps"], clip_grad_norm=settings["clip_grad_norm"],
            log_every=min(settings["log_every"], settings["max_steps"]),
            eval_every=settings["eval_every"], eval_metric=wired.eval_metric,
            eval_mode=wired.eval_mode, checkpoint_every=settings["eval_every"],
            out_dir=str(run_dir), seed=seed, device=device, progress=progress,
        )  # fmt: skip
        callbacks = [] if unfreezer is None else [lambda trainer: unfreezer.apply(trainer.step)]
        callbacks += [Diagnostics(diagnostics, run_dir)] if diagnostics else []
        trainer = Trainer(
            model, optimizer, wired.batches, config, loss_fn=wired.loss_fn, scheduler=schedule,
            evaluate=wired.evaluate, data_state=wired.data_state, model_config=wired.config,
            callbacks=callbacks,
        )  # fmt: skip
        batch = f"a batch of {settings['batch_size']} for {task}"
        result = fit_run(trainer, run_dir, resume, batch)
        # The report: best.pt's weights (picked on the val canvases) on the test canvases.
        if (run_dir / "best.pt").is_file():
            load_weights(model, run_dir / "best.pt")
        model.eval()
        test = DATA[task](model_tuples(settings), "test", TEST_IMAGES)
        ap = average_precision(model, test)
        metrics = {"map50": ap.map_50, "map": ap.map}
        write_json(run_dir / RUN_FILE, {**record, "final": wired.evaluate(model), "test": metrics})
        return {
            "run": str(run_dir), "test": metrics, "step": result.step,
            "best_step": result.best_step, "trainable": trainable, "total": total,
            "wall_s": time.perf_counter() - start, "model": model, "plot": plot_losses(run_dir),
            "confusion": ap_table(ap, test.class_names),
            "next": f"next: minimod detect --from {run_dir} --held-out 8 --out detections.png",
        }  # fmt: skip


# -- minimod detect -----------------------------------------------------------------------------
def load_images(paths: Sequence[str | Path], size: int) -> torch.Tensor:
    """Image files -> (N, 3, size, size) float32 in [0, 1], each resized to the run's square
    images (a non-square picture is stretched). One UsageError for the first unreadable file."""
    images = []
    for path in paths:
        try:
            pixels = read_image(path)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a folder, not an image") from None
        except OSError as error:
            raise UsageError(f"{path}: not an image PIL can read ({one_line(error)})") from None
        except ImportError as error:
            raise UsageError(one_line(error)) from None
        images.append((resize(pixels, (size, size)) / 255).clamp(0, 1).float())
    return torch.stack(images)


def detect_run(
    run: str | Path,
    paths: Sequence[str | Path] = (),
    held_out: int | None = None,
    out: str | Path = "detections.png",
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    device: str = "cpu",
) -> dict[str, Any]:
    """Detect objects with a detection run's best.pt (else last.pt) in image files (``paths``)
    or in the first ``held_out`` images of its test set, and draw them into the PNG ``out``
    (held-out images: the true boxes too, dashed). Returns {"out", "class_names", "found":
    per image (boxes, scores, labels), "truth": per image (boxes, labels) or None, "ap":
    DetectionAP on the held-out images or None}."""
    if paths and held_out is not None:
        raise UsageError("give image files or --held-out N, not both")
    if not paths and held_out is None:
        raise UsageError("give image files or --held-out N")
    if held_out is not None and not 1 <= held_out <= 1000:
        raise UsageError(f"--held-out must be between 1 and 1000, got {held_out}")
    for name, value in (("--score-threshold", score_threshold), ("--iou-threshold", iou_threshold)):
        if not 0 <= value <= 1:
            raise UsageError(f"{name} must be between 0 and 1, got {value}")
    record = read_run(run)
    if record.get("kind") == "finetune" or record["task"] not in DATA:
        raise UsageError(
            f"{run} is not a detection run (pretrain cnn --task detect-shapes ..., or finetune "
            "cnn --task detect-digits)"
        )
    _, wired, model = load_run(run, device=device)
    best = Path(run) / "best.pt"
    if best.is_file():
        load_weights(model, best)
    settings = record["settings"]
    truth, ap = None, None
    if held_out is not None:
        data = DATA[record["task"]](settings, "test", held_out)
        images, truth = data.images, data.targets()
    else:
        images = load_images(paths, settings["image_size"])
    found = detect_all(model, images, score_threshold, iou_threshold)
    if truth is not None:
        ap = average_precision(model, data)
    draw_detections(images, found, wired.class_names, out, truth)
    return {"out": str(out), "class_names": wired.class_names, "found": found,
            "truth": truth, "ap": ap}  # fmt: skip


def draw_detections(
    images: torch.Tensor,
    found: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    class_names: Sequence[str],
    out: str | Path,
    truth: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> None:
    """A grid of the images with each detection's box, class name and score (solid, one colour
    per class) and, given ``truth``, the true boxes (dashed white)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("drawing needs matplotlib: pip install 'minimod[plot]'") from None
    n = len(images)
    columns = min(n, 4)
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= n:
            continue
        size = images.shape[-1]
        axis.imshow(images[index].permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, size, size, 0))
        if truth is not None:
            for box in truth[index][0].tolist():
                axis.add_patch(_rectangle(plt, box, size, "white", "--"))
        for box, score, label in zip(*(part.tolist() for part in found[index]), strict=True):
            colour = colours(label % 10)
            axis.add_patch(_rectangle(plt, box, size, colour, "-"))
            axis.text(box[0] * size, box[1] * size, f"{class_names[label]} {score:.2f}",
                      color="white", fontsize=7, va="bottom",
                      bbox=dict(facecolor=colour, alpha=0.8, pad=1, linewidth=0))  # fmt: skip
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def _rectangle(plt: Any, box: list[float], size: int, colour: Any, style: str) -> Any:
    x0, y0, x1, y1 = (value * size for value in box)
    return plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                         linestyle=style, linewidth=1.5)  # fmt: skip
