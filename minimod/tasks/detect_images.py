"""``minimod detect``: a detection run's boxes drawn into a picture (``detect_run``), and
``--init RUN`` of ``pretrain cnn --task detect-*`` (``init_body``). The tasks themselves are in
``tasks.detect`` (which ``tasks.run`` imports, so the run-folder readers used here cannot live
there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from minimod.data.images import read_image, resize
from minimod.models.detector import Detector
from minimod.models.loading import LoadReport, load_pretrained
from minimod.tasks.common import UsageError
from minimod.tasks.detect import DATA, average_precision, detect_all
from minimod.tasks.run import load_run, load_weights, one_line, read_run
from minimod.train.checkpoint import CheckpointError, load_checkpoint


# -- a body from another run (--init) -----------------------------------------------------------
def init_body(model: Detector, run: str | Path, run_dir: str | Path) -> LoadReport:
    """Fill the detector's body from a run's best.pt (else last.pt): a detection run (its
    ``body.*``) or a ``pretrain cnn`` shapes classifier (its ResNet). Tensors of another shape
    (other widths) are skipped; the report, written to run_dir/load_report.txt with the run it
    came from, says which. The head keeps its initialisation."""
    record = read_run(run)
    if record.get("kind") == "finetune" or record["task"] not in ("cnn", *DATA):
        raise UsageError(f"--init {run}: expected a cnn or detection pretrain run")
    path = Path(run) / "best.pt"
    path = path if path.is_file() else Path(run) / "last.pt"
    try:
        state = load_checkpoint(path)["model"]
    except (CheckpointError, KeyError) as error:
        raise UsageError(f"--init {run}: {one_line(error)}") from None
    detection = record["task"] in DATA
    report = load_pretrained(model, state, source_prefix="body." if detection else "")
    if not report.loaded:
        raise UsageError(
            f"--init {run}: no tensor of its body fits this model ({report.summary()})"
        )
    source = f"--init {Path(run).resolve()} ({path.name})\n"
    (Path(run_dir) / "load_report.txt").write_text(source + str(report) + "\n", encoding="utf-8")
    return report


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
        raise UsageError(f"{run} is not a detection run (pretrain cnn --task detect-shapes ...)")
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
