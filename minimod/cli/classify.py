"""``minimod classify``: the ImageNet classes a pretrained model sees in photographs."""

from __future__ import annotations

import argparse

from minimod.cli.common import positive_int


def add_commands(commands: argparse._SubParsersAction) -> None:
    classify = commands.add_parser(
        "classify",
        help="name the ImageNet classes in photographs with a pretrained model",
        description="Print the most probable of the 1000 ImageNet classes for each image, with "
        "their probabilities, from MobileNetV2 with torchvision's ImageNet weights (installed by "
        "`make real`) running in minimod's own code. Each image (PNG, JPEG, ... anything PIL "
        "reads) is resized to a short side of 256, centre-cropped to 224x224 and normalised, as "
        "torchvision's ImageNet models expect.\n\n"
        "  minimod classify --from mobilenet_v2 cat.jpg coffee.png --top 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classify.set_defaults(handler=run_classify)
    option = classify.add_argument
    option(
        "--from",
        dest="model",
        required=True,
        choices=["mobilenet_v2"],
        help="the pretrained model: mobilenet_v2",
    )
    option("images", nargs="+", metavar="IMAGE", help="image files")
    option(
        "--top",
        type=positive_int,
        default=5,
        metavar="K",
        help="how many classes to print per image (default: 5)",
    )
    option("--device", default="cpu", help="default: cpu")


def run_classify(args: argparse.Namespace) -> int:
    from minimod.tasks.classify_image import classify_images

    results = classify_images(args.images, args.model, args.top, args.device)
    for path, classes in zip(args.images, results, strict=True):
        print(path)
        for rank, (name, probability) in enumerate(classes, start=1):
            print(f"  {rank}. {name:<32} {100 * probability:5.1f}%")
    return 0
