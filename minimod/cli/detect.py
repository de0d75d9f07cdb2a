"""``minimod detect``: a detection run's boxes, classes and scores drawn into a picture."""

from __future__ import annotations

import argparse

from minimod.cli.common import positive_int


def add_commands(commands: argparse._SubParsersAction) -> None:
    detect = commands.add_parser(
        "detect",
        help="draw a detection run's boxes on images (a PNG)",
        description="Find the objects in images with a detection run (pretrain cnn --task "
        "detect-shapes or detect-digits, or finetune cnn --task detect-digits; its best.pt) "
        "and draw each box with its class name and score into a PNG; the detections are "
        "printed too. Image files are resized to the run's square image size. --held-out N "
        "takes the first N images of the task's test set (never trained on) and draws their "
        "true boxes as well (dashed), and prints their mAP.\n\n"
        "  minimod detect --from runs/detect-shapes-baby --held-out 8 --out detections.png\n"
        "  minimod detect --from runs/detect-shapes-baby scene.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    detect.set_defaults(handler=run_detect)
    option = detect.add_argument
    option("--from", dest="run", required=True, metavar="RUN", help="a detection run folder")
    option("images", nargs="*", metavar="IMAGE", help="image files (or --held-out N)")
    option(
        "--held-out",
        type=positive_int,
        metavar="N",
        help="the first N images of the run's test set, with their true boxes (at most 1000)",
    )
    option("--out", default="detections.png", metavar="PNG", help="default: detections.png")
    option(
        "--score-threshold",
        type=float,
        default=0.5,
        metavar="X",
        help="draw the detections scoring above X, in [0, 1] (default: 0.5)",
    )
    option(
        "--iou-threshold",
        type=float,
        default=0.5,
        metavar="X",
        help="non-maximum suppression: a box overlapping a better one of its class by more "
        "than X is dropped (default: 0.5)",
    )
    option("--device", default="cpu", help="default: cpu")


def run_detect(args: argparse.Namespace) -> int:
    from minimod.tasks.detect_images import detect_run

    result = detect_run(
        args.run,
        args.images,
        args.held_out,
        args.out,
        args.score_threshold,
        args.iou_threshold,
        args.device,
    )
    names = result["class_names"]
    labels = args.images or [f"held-out {i}" for i in range(len(result["found"]))]
    for label, (boxes, scores, classes) in zip(labels, result["found"], strict=True):
        print(f"{label}: {len(boxes)} object{'s' if len(boxes) != 1 else ''}")
        for box, score, index in zip(
            boxes.tolist(), scores.tolist(), classes.tolist(), strict=True
        ):
            corners = ", ".join(f"{value:.3f}" for value in box)
            print(f"  {names[index]:<10} {score:.2f}  ({corners})")
    if result["ap"] is not None:
        ap = result["ap"]
        print(f"mAP@0.5 {ap.map_50:.3f}, mAP@[.5:.95] {ap.map:.3f} on these {len(labels)} images")
    print(f"picture: {result['out']}")
    return 0
