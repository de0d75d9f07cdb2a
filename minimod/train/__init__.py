"""Training: one loop for every task, safe checkpoints, metrics and progress.

trainer = Trainer(model, optimizer, next_batch, TrainConfig(max_steps=1000, out_dir="runs/x"),
                  scheduler=schedule, evaluate=evaluate)
result = trainer.fit()                                   # or fit(resume_from="runs/x/last.pt")

Fine-tuning tools: ``minimod.train.freezing`` (freeze / unfreeze by name pattern, linear
probing, layer-wise learning-rate groups, gradual unfreezing, the weight-decay rule) and
``minimod.train.imbalance`` (class weights, a weighted sampler); ``lr_find`` sweeps the
learning rate.
"""

from minimod.train.allocator import keep_freed_memory
from minimod.train.batches import resolve_device
from minimod.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    make_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    seed_everything,
)
from minimod.train.config import TrainConfig, TrainResult
from minimod.train.freezing import (
    GradualUnfreezer,
    count_parameters,
    decay_groups,
    freeze,
    linear_probe,
    param_groups,
    trainable_summary,
    unfreeze,
)
from minimod.train.imbalance import WeightedSampler, class_weights
from minimod.train.loop import Trainer
from minimod.train.lr_find import LRFindResult, lr_find, plot_lr_find
from minimod.train.metrics import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    format_confusion_matrix,
    macro_f1,
    plot_confusion_matrix,
    precision_recall_f1,
)
from minimod.train.progress import Progress
from minimod.train.runlog import RunLog

__all__ = [
    "CheckpointError",
    "GradualUnfreezer",
    "LRFindResult",
    "WeightedSampler",
    "class_weights",
    "count_parameters",
    "decay_groups",
    "freeze",
    "linear_probe",
    "lr_find",
    "param_groups",
    "plot_confusion_matrix",
    "plot_lr_find",
    "trainable_summary",
    "unfreeze",
    "Progress",
    "RunLog",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "accuracy",
    "classification_metrics",
    "confusion_matrix",
    "format_confusion_matrix",
    "keep_freed_memory",
    "load_checkpoint",
    "macro_f1",
    "make_checkpoint",
    "precision_recall_f1",
    "resolve_device",
    "restore_checkpoint",
    "save_checkpoint",
    "seed_everything",
]
