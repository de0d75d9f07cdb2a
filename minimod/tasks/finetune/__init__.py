"""Fine-tuning: a pretrained body (a pretrain run's checkpoint, or ``scratch``), a new head,
and a task, trained with the same loop as pretraining.

    model  task        data (synthetic, seeded; see data/README.md)          head
    bert   sentiment   labelled reviews: train (seeded draw), val, test       SequenceClassifier
    gpt    sentiment   the same                                               SequenceClassifier
    cnn    shapes      shape images, classes as in pretraining                FeatureClassifier
    cnn    detect      the same images, one bounding box each                 BoxRegressor
    cnn    detect-digits  MNIST canvases, every digit (``tasks.detect_images``)  Detector
    audio  keywords    the three keywords audio pretraining never heard       FeatureClassifier

The options are the practical questions of fine-tuning: which layers train (``freeze``: none,
body = linear probe, or a name pattern; ``unfreeze_every``: gradual unfreezing from the top;
``lora_rank``: low-rank adapters instead of the weights), how fast each layer learns
(``layer_decay``), how many labels (``labels``), and what to do about imbalance
(``imbalance`` 1:R, ``class_weights``, ``sampler``, ``loss`` = focal).

A fine-tune run folder holds run.json (kind "finetune", the source, every option and setting),
tokenizer.json (text tasks), load_report.txt (which pretrained tensors were loaded, which were
skipped and why), last.pt / best.pt, metrics.csv/.jsonl, loss.png, and for classification
confusion.txt/.png; a LoRA run also writes adapter.pt: the adapters and the head only.

The package, one module per concern: ``sources`` (the body and its trainable set),
``splits`` (the task's data), ``prepared`` (settings, options, model + optimizer + batches),
``run`` (``finetune``), ``report`` (test metrics, ``evaluate_finetuned``), ``lr_find``.
"""

from minimod.tasks.finetune.lr_find import find_lr
from minimod.tasks.finetune.prepared import (
    DEFAULT_OPTIONS,
    Prepared,
    complete_options,
    finetune_settings,
    prepare,
)
from minimod.tasks.finetune.report import evaluate_finetuned, per_class_table
from minimod.tasks.finetune.run import finetune
from minimod.tasks.finetune.sources import (
    LORA_TARGETS,
    Source,
    build_model,
    configure_training,
    pretrained_tokenizer,
    read_source,
)
from minimod.tasks.finetune.splits import REAL_TASKS, Split, load_splits

__all__ = [
    "DEFAULT_OPTIONS",
    "LORA_TARGETS",
    "Prepared",
    "REAL_TASKS",
    "Source",
    "Split",
    "build_model",
    "complete_options",
    "configure_training",
    "evaluate_finetuned",
    "find_lr",
    "finetune",
    "finetune_settings",
    "load_splits",
    "per_class_table",
    "prepare",
    "pretrained_tokenizer",
    "read_source",
]
