"""The study plan: what to read before each lesson and about how long it takes.

Every lesson's tests pass on its own (what a lesson does not teach comes from minimod), so the
prerequisites are the lessons whose ideas a lesson builds on, not code it needs. The minutes
are an estimate for reading the text and writing the code, with a first failing check or two;
``minimod exercises`` shows both. Keyed by the lesson's file name, so a lesson keeps its plan
when the catalogue is renumbered; ``tests/test_workbook_plan.py`` checks that every catalogued
lesson has one and that prerequisites come earlier.

The path (``PATH``) is the order to take the lessons in. It is the catalogue's order except for
two lessons that come before attention (8) although their numbers are higher: tokenization (17)
and the training loop (18), so that a learner who has built GPT (10) already knows how text
becomes tokens and how a model is trained. The numbers are names, not positions, and stay as
they are: a learner's ``exercises/eNN_*.py`` keeps its name, every "lesson N" in the texts stays
true. ``minimod exercises`` lists the lessons in this order and each lesson's "Run it" ends with
the next one on the path (``tests/test_run_it.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from minimod.workbook.catalogue import LESSONS, Lesson


@dataclass(frozen=True)
class Plan:
    prerequisites: tuple[str, ...]  # lesson names to do first, e.g. ("e02_linear",)
    minutes: int  # estimated time for the lesson


PLANS: dict[str, Plan] = {
    "e01_module": Plan((), 30),
    "e02_linear": Plan(("e01_module",), 45),
    "e03_activations": Plan(("e01_module",), 45),
    "e04_losses": Plan(("e03_activations",), 45),
    "e05_embedding_norm": Plan(("e01_module",), 60),
    "e06_optimizers": Plan(("e01_module",), 45),
    "e07_schedules_clipping": Plan(("e06_optimizers",), 40),
    "e08_attention": Plan(("e02_linear", "e03_activations"), 75),
    "e09_positional": Plan(("e01_module",), 45),
    "e10_gpt": Plan(("e05_embedding_norm", "e08_attention", "e09_positional"), 90),
    "e11_bert_layer": Plan(("e05_embedding_norm", "e08_attention"), 45),
    "e12_bert": Plan(("e11_bert_layer",), 60),
    "e13_conv": Plan(("e02_linear",), 90),
    "e14_pool": Plan(("e13_conv",), 60),
    "e15_batchnorm": Plan(("e05_embedding_norm",), 60),
    "e16_resnet": Plan(("e13_conv", "e15_batchnorm"), 45),
    "e17_bpe": Plan((), 60),
    "e18_training_loop": Plan(("e04_losses", "e07_schedules_clipping"), 75),
    "e19_metrics": Plan((), 30),
    "e20_heads": Plan(("e10_gpt", "e12_bert"), 60),
    "e21_freezing": Plan(("e06_optimizers",), 45),
    "e22_lora": Plan(("e02_linear",), 45),
    "e23_imbalance": Plan(("e04_losses", "e19_metrics"), 45),
    "e24_mixed_precision": Plan(("e06_optimizers",), 45),
    "e25_activation_checkpointing": Plan(("e01_module",), 40),
    "e26_data_parallel": Plan(("e06_optimizers",), 60),
    "e27_recurrence": Plan(("e02_linear", "e03_activations"), 75),
    "e28_ctc": Plan(("e03_activations", "e27_recurrence"), 90),
    "e29_sound": Plan(("e01_module",), 45),
    "e30_tts": Plan(("e10_gpt", "e13_conv", "e29_sound"), 90),
    "e31_quantization": Plan(("e10_gpt",), 60),
    "e32_llama_block": Plan(("e05_embedding_norm", "e09_positional", "e10_gpt"), 90),
    "e33_chat_templates": Plan(("e17_bpe",), 45),
    "e34_flash_attention": Plan(("e08_attention",), 60),
    "e35_detection": Plan(("e16_resnet", "e20_heads", "e23_imbalance"), 90),
    "e36_depthwise": Plan(("e13_conv", "e16_resnet"), 75),
}


# Lessons not named here follow in catalogue order: only the moved ones need a place.
_MOVED_BEFORE = {"e17_bpe": "e08_attention", "e18_training_loop": "e08_attention"}


def _path() -> tuple[Lesson, ...]:
    moved = [x for x in LESSONS if x.name in _MOVED_BEFORE]
    order: list[Lesson] = []
    for item in LESSONS:
        order.extend(m for m in moved if _MOVED_BEFORE[m.name] == item.name)
        if item.name not in _MOVED_BEFORE:
            order.append(item)
    return tuple(order)


PATH: tuple[Lesson, ...] = _path()


def next_lesson(lesson: Lesson) -> Lesson | None:
    """The lesson after ``lesson`` on the path (None after the last)."""
    position = PATH.index(lesson)
    return PATH[position + 1] if position + 1 < len(PATH) else None


def plan(lesson: Lesson) -> Plan:
    """``lesson``'s prerequisites and estimated time."""
    try:
        return PLANS[lesson.name]
    except KeyError:
        raise KeyError(
            f"lesson {lesson.name} has no entry in minimod/workbook/plan.py (prerequisites and "
            "minutes)"
        ) from None


def prerequisite_numbers(lesson: Lesson) -> list[int]:
    """The numbers of the lessons ``lesson`` builds on, in catalogue order."""
    numbers = {other.name: other.number for other in LESSONS}
    return sorted(numbers[name] for name in plan(lesson).prerequisites)
