"""``minimod demo``: the whole story in a few minutes on a laptop CPU, on built-in data.

1. A small GPT reads Python's documentation one character at a time: a sample before training
   (random characters), then a sample after (words, Python keywords, sentence shapes).
2. A small BERT learns to fill in masked words of synthetic movie reviews.
3. Does pretraining pay? That BERT, with a new classification head, against the same
   architecture from scratch, each fine-tuned on 1000 labelled reviews.
4. Where the runs are, and what to try next.

The demo never overwrites a run: its folders are OUT/demo-gpt, demo-bert, demo-finetune-*, or,
when any of them exists, the same names with the first free suffix (-2, -3, ...).
"""

from __future__ import annotations

from pathlib import Path

import torch

from minimod.tasks.finetune import finetune
from minimod.tasks.lm import fill_mask
from minimod.tasks.pretrain import pretrain
from minimod.tasks.run import generate_text

PROMPT = "The "
RUNS = ("gpt", "bert", "finetune-pretrained", "finetune-scratch")  # OUT/demo-RUN
BLANKS = (
    "the acting was [MASK] good.",
    "the plot was not very [MASK], but the music was great.",
    "the [MASK] was good.",
)


def demo(out: str | Path = "runs", max_steps: int | None = None, device: str = "auto") -> int:
    folders = fresh_folders(Path(out))
    gpt_dir, bert_dir = folders["gpt"], folders["bert"]
    print("== 1. GPT: next-character prediction on Python's documentation (built in) ==")
    before: dict[str, str] = {}

    def log(line: str) -> None:
        print(line, flush=True)

    def remember(model, tokenizer) -> None:
        before["text"] = _sample(model, tokenizer)

    summary = pretrain(
        "gpt",
        "baby",
        out=gpt_dir,
        device=device,
        log=log,
        max_steps=max_steps or 2000,
        final_eval_batches=50,
        before_training=remember,
    )
    print(f"\nbefore training:\n{_indent(before['text'])}")
    after = _sample(summary["model"], summary["tokenizer"])
    print(f"\nafter {summary['step']} steps:\n{_indent(after)}")
    print(_line(summary))

    print("\n== 2. BERT: masked words in synthetic reviews (generated) ==")
    summary = pretrain(
        "bert",
        "tiny",
        out=bert_dir,
        device=device,
        log=log,
        max_steps=max_steps or 2000,
        batch_size=32,
        final_eval_batches=50,
    )
    for text in BLANKS:
        guesses = fill_mask(summary["model"], summary["tokenizer"], text)
        print(f"  {text}  ->  [MASK] = {' / '.join(guesses[0])}")
    print(_line(summary))

    print("\n== 3. Does pretraining pay? Sentiment from 1000 labelled reviews (generated) ==")
    steps = None if max_steps is None else min(max_steps, 150)
    contenders = (("pretrained BERT + new head", bert_dir), ("same BERT from scratch", None))
    for name, source in contenders:
        tuned = finetune(
            "bert",
            str(source) if source else "scratch",
            "sentiment",
            labels=1000,
            out=folders[f"finetune-{'pretrained' if source else 'scratch'}"],
            device=device,
            progress=False,
            log=lambda _: None,
            max_steps=steps,
        )
        accuracy = tuned["test"]["accuracy"]
        print(f"  {name:<28} held-out test accuracy {accuracy:6.1%}  ({tuned['wall_s']:.0f} s)")
    print("  (make results: the full study -- 100/300/1000 labels, 3 seeds, probes, LoRA,")
    print("   detection, audio, imbalance; with 100 labels neither model beats chance)")

    print("\n== next ==")
    print(f"  minimod generate --from {gpt_dir} --prompt 'The list' --max-new-tokens 400")
    print(f"  minimod evaluate --from {gpt_dir}")
    print("  minimod pretrain gpt --preset baby --data any.txt --out runs/mine   (your own text)")
    print(f"  minimod finetune bert --from {bert_dir} --task sentiment --labels 300 --lora-rank 4")
    print("  minimod pretrain cnn --preset baby      (shapes)   |   minimod exercises (workbook)")
    return 0


def fresh_folders(out: Path) -> dict[str, Path]:
    """{run: OUT/demo-RUN}, or OUT/demo-RUN-N with the first N from 2 on for which none of
    the demo's folders exists: an earlier demo's runs are kept."""
    number = 1
    while True:
        suffix = "" if number == 1 else f"-{number}"
        folders = {run: out / f"demo-{run}{suffix}" for run in RUNS}
        if not any(folder.exists() for folder in folders.values()):
            return folders
        number += 1


def _sample(model, tokenizer) -> str:
    with torch.no_grad():
        return generate_text(model, tokenizer, PROMPT, 240, temperature=0.8, seed=0)


def _indent(text: str) -> str:
    return "\n".join("  | " + line for line in text.splitlines())


def _line(summary: dict) -> str:
    metrics = ", ".join(f"{k} {v:.3g}" for k, v in summary["final"].items() if k != "batches")
    return f"  held-out {metrics}; {summary['wall_s']:.0f} s; run folder {summary['run']}"
