"""The wiring behind ``minimod pretrain / evaluate / generate / demo``: for each task (gpt,
bert, cnn, audio), its presets, data, model, loss and held-out evaluation. The CLI only parses
options and calls these functions, so everything here works from Python too:

>>> summary = pretrain("gpt", "tiny", out="runs/try")
>>> record, metrics, confusion = evaluate_run("runs/try")
"""

from minimod.tasks.common import TaskData, UsageError
from minimod.tasks.presets import PRESET_NAMES, PRESETS, TASKS
from minimod.tasks.pretrain import pretrain
from minimod.tasks.run import evaluate_run, generate_text, load_run, plot_losses
from minimod.train.allocator import keep_freed_memory
from minimod.train.interrupt import Interrupted

__all__ = [
    "Interrupted",
    "PRESETS",
    "PRESET_NAMES",
    "TASKS",
    "TaskData",
    "UsageError",
    "evaluate_run",
    "generate_text",
    "keep_freed_memory",
    "load_run",
    "plot_losses",
    "pretrain",
]
