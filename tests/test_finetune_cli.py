"""``minimod finetune`` / ``lr-find`` / ``evaluate`` on fine-tune runs, end to end on tiny runs:
every model and task, what is loaded and skipped, what trains, LoRA's small save, resuming
with gradual unfreezing, and bad input (one line on stderr, exit status 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from console import assert_usage_error, minimod
from minimod.tasks import pretrain
from minimod.tasks.finetune import evaluate_finetuned, find_lr, finetune
from minimod.tasks.presets import FINETUNE
from minimod.train.checkpoint import load_checkpoint
from minimod.train.loop import Trainer

pytestmark = [pytest.mark.reference_only, pytest.mark.slow]
FAST = dict(device="cpu", progress=False, log=lambda _: None)


@pytest.fixture(scope="module")
def bodies(tmp_path_factory) -> dict[str, Path]:
    """A tiny pretrain run of each model (a few steps: the weights only need to exist)."""
    root = tmp_path_factory.mktemp("pretrained")
    runs = {}
    for kind, data in (("bert", None), ("gpt", "reviews"), ("cnn", None), ("audio", None)):
        runs[kind] = root / kind
        pretrain(kind, data=data, max_steps=3, out=runs[kind], **FAST)
    return runs


def tiny(**extra):
    return dict(max_steps=4, labels=40, **FAST, **extra)


@pytest.mark.parametrize(
    "kind, task, metric",
    [
        ("bert", "sentiment", "accuracy"),
        ("gpt", "sentiment", "accuracy"),
        ("cnn", "shapes", "accuracy"),
        ("cnn", "detect", "iou"),
        ("audio", "keywords", "accuracy"),
    ],
)
def test_every_model_and_task_fine_tunes_and_reports_what_it_loaded(
    bodies, tmp_path, kind, task, metric
):
    summary = finetune(kind, str(bodies[kind]), task, out=tmp_path / "ft", **tiny())
    assert 0.0 <= summary["test"][metric] <= 1.0
    report = (tmp_path / "ft" / "load_report.txt").read_text()
    source = load_checkpoint(bodies[kind] / "last.pt")["model"]
    head_keys = {"bert": "lm_head.", "gpt": None, "cnn": "head.", "audio": "head."}[kind]
    if head_keys is not None:  # the pretraining head is never loaded, and the report says so
        stale = [key for key in source if key.startswith(head_keys)]
        assert stale and all(key in report for key in stale), report
    model = summary["model"]
    new_head = [name for name, _ in model.named_parameters() if name.startswith("head.")]
    assert new_head and all(name in report for name in new_head)
    if task != "detect":
        assert (tmp_path / "ft" / "confusion.txt").is_file()
        assert (tmp_path / "ft" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert record["kind"] == "finetune" and record["test"] == summary["test"]
    again = evaluate_finetuned(tmp_path / "ft")  # rebuilt from the folder alone
    assert again["test"] == pytest.approx(summary["test"])


def test_linear_probe_leaves_the_body_exactly_as_pretrained(bodies, tmp_path):
    summary = finetune("cnn", str(bodies["cnn"]), "shapes", out=tmp_path / "probe",
                       freeze="body", **tiny())  # fmt: skip
    pretrained = load_checkpoint(bodies["cnn"] / "last.pt")["model"]
    state = summary["model"].state_dict()
    body = [key for key in pretrained if not key.startswith("head.")]
    assert body
    for key in body:  # weights and batch-norm statistics alike
        assert torch.equal(state[f"body.{key}"], pretrained[key]), key
    assert summary["trainable"] == sum(p.numel() for p in summary["model"].head.parameters())


def test_lora_trains_adapters_and_saves_only_them_and_the_head(bodies, tmp_path):
    summary = finetune("bert", str(bodies["bert"]), "sentiment", out=tmp_path / "lora",
                       lora_rank=2, **tiny())  # fmt: skip
    adapter = torch.load(tmp_path / "lora" / "adapter.pt", weights_only=True)["adapter"]
    full = load_checkpoint(tmp_path / "lora" / "last.pt")["model"]
    assert all("lora_" in key or key.startswith("head.") for key in adapter)
    assert sum(v.numel() for v in adapter.values()) == summary["trainable"]
    assert sum(v.numel() for v in adapter.values()) < sum(v.numel() for v in full.values()) / 5
    pretrained = load_checkpoint(bodies["bert"] / "last.pt")["model"]
    for key, value in full.items():  # the wrapped weights themselves never moved
        if key.endswith("base.weight"):
            original = "bert." + key.removeprefix("body.").replace(".base.", ".")
            assert torch.equal(value, pretrained[original]), key


def test_gradual_unfreezing_survives_a_crash_and_resume(bodies, tmp_path, monkeypatch):
    """12 steps, one more layer every 3: straight vs crashed after step 9 (last.pt at 8) and
    resumed -- bit-for-bit the same weights, and the same trainable set at the end."""
    options = dict(unfreeze_every=3, max_steps=12, labels=40, **FAST)
    monkeypatch.setitem(FINETUNE, "gpt", {**FINETUNE["gpt"], "eval_every": 4})
    straight = finetune("gpt", str(bodies["gpt"]), "sentiment", out=tmp_path / "a", **options)
    step = Trainer.train_step

    def crash(self):
        if self.step == 9:
            raise KeyboardInterrupt("simulated crash")
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        finetune("gpt", str(bodies["gpt"]), "sentiment", out=tmp_path / "b", **options)
    monkeypatch.setattr(Trainer, "train_step", step)
    resumed = finetune("gpt", str(bodies["gpt"]), "sentiment", out=tmp_path / "b", resume=True,
                       **options)  # fmt: skip
    a, b = (load_checkpoint(tmp_path / run / "last.pt") for run in ("a", "b"))
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    trainable = [
        {n for n, p in s["model"].named_parameters() if p.requires_grad}
        for s in (straight, resumed)
    ]
    assert trainable[0] == trainable[1]
    groups = [[(len(g["params"]), g["lr"]) for g in c["optimizer"]["param_groups"]] for c in (a, b)]
    assert groups[0] == groups[1]


def test_lr_find_restores_the_model_and_suggests_a_rate(bodies, tmp_path):
    found = find_lr("cnn", str(bodies["cnn"]), "shapes", out=tmp_path, steps=12, labels=40, **{
        k: v for k, v in FAST.items() if k != "log" and k != "progress"})  # fmt: skip
    assert "suggested lr" in found["text"] or "no suggestion" in found["text"]
    assert (tmp_path / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


def test_the_console_script_fine_tunes_and_evaluates(bodies, tmp_path):
    run = tmp_path / "cli"
    done = minimod("finetune", "bert", "--from", str(bodies["bert"]), "--task", "sentiment",
                   "--max-steps", "3", "--labels", "30", "--out", str(run), "--device", "cpu",
                   "--class-weights", "auto", "--imbalance", "3")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test accuracy" in done.stdout and "parameters trained" in done.stdout
    assert "pretrained weights:" in done.stdout
    evaluated = minimod("evaluate", "--from", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "fine-tuned on sentiment" in evaluated.stdout and "true\\pred" in evaluated.stdout
    assert (
        "precision  recall     f1  support" in evaluated.stdout and "macro avg" in evaluated.stdout
    )
    helped = minimod("finetune", "--help").stdout
    for words in ("--freeze body|none|PATTERN", "--lora-rank", "--layer-decay", "--labels",
                  "--unfreeze-every", "--class-weights", "scratch", "default: none"):  # fmt: skip
        assert words in helped, words


@pytest.mark.parametrize(
    "args, words",
    [
        (["finetune", "bert", "--from", "{tmp}/nothing", "--task", "sentiment"],
         ["not a run folder"]),
        (["finetune", "bert", "--from", "{gpt}", "--task", "sentiment"],
         ["is a gpt run", "needs a bert run"]),
        (["finetune", "cnn", "--from", "{cnn}", "--task", "sentiment"],
         ["unknown task 'sentiment' for cnn", "shapes, detect"]),
        (["finetune", "cnn", "--from", "{cnn}", "--task", "shapes", "--lora-rank", "2"],
         ["--lora-rank is for the transformers"]),
        (["finetune", "bert", "--from", "{bert}", "--task", "sentiment", "--freeze", "nope.*"],
         ["--freeze nope.*"]),
        (["finetune", "bert", "--from", "scratch", "--task", "sentiment", "--labels", "0"],
         ["--labels", "must be ≥ 1"]),
        (["lr-find", "cnn", "--from", "{cnn}", "--task", "shapes", "--start-lr", "1",
          "--end-lr", "0.1"], ["--start-lr (1.0) must be below --end-lr (0.1)"]),
        (["generate", "--from", "{ft}"], ["is a fine-tune run"]),
        (["finetune", "cnn", "--from", "{cnn}", "--task", "shapes", "--out", "{ft}"],
         ["already holds a run", "--resume"]),
        (["finetune", "cnn", "--from", "{cnn}", "--task", "shapes", "--out", "{ft}", "--resume",
          "--labels", "40", "--lr", "0.5"], ["cannot resume", "lr (run 0.002, now 0.5)"]),
        (["finetune", "cnn", "--from", "{cnn}", "--task", "shapes", "--out", "{ft}", "--resume",
          "--labels", "40", "--freeze", "body"], ["cannot resume", "options"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_status_2(bodies, tmp_path, args, words):
    ft = tmp_path / "ft"
    finetune("cnn", str(bodies["cnn"]), "shapes", out=ft, **tiny())
    names = {"tmp": tmp_path, "ft": ft, **bodies}
    args = [arg.format(**{k: str(v) for k, v in names.items()}) for arg in args]
    assert_usage_error(minimod(*args, "--device", "cpu"), *words)


# -- real data and weights (installed by `make real`, which `make test` runs first) ------------
@pytest.mark.real
def test_real_digits_and_spoken_digits_fine_tune(bodies, tmp_path):
    digits = finetune("cnn", str(bodies["cnn"]), "digits", out=tmp_path / "d", **tiny())
    assert set(digits["test"]) == {"accuracy", "macro_f1"}
    assert "9" in (tmp_path / "d" / "confusion.txt").read_text()
    spoken = finetune("audio", "scratch", "spoken-digits", out=tmp_path / "s", **tiny())
    assert spoken["model"].body.config.n_features == 13
    with pytest.raises(Exception, match="--features mfcc"):  # a log-mel body cannot read MFCCs
        finetune("audio", str(bodies["audio"]), "spoken-digits", out=tmp_path / "x", **tiny())


@pytest.mark.slow
@pytest.mark.real
def test_minilm_fine_tunes_on_the_movie_snippets(tmp_path):
    summary = finetune("bert", "minilm", "sentiment-real", out=tmp_path / "m", freeze="body",
                       max_steps=2, labels=32, **FAST)  # fmt: skip
    report = (tmp_path / "m" / "load_report.txt").read_text()
    assert "loaded 101 tensors" in report and "pooler.dense.weight" in report
    assert summary["trainable"] == 384 * 2 + 2  # the head only
    assert json.loads((tmp_path / "m" / "run.json").read_text())["source"] == "minilm"
    # Cross-domain transfer: the other VADER domains' test splits are scored too.
    assert {"amazon_accuracy", "nyt_accuracy", "tweets_accuracy"} <= set(summary["test"])
    assert "movies_accuracy" not in summary["test"]


def test_a_run_at_chance_says_so():
    from minimod.tasks.finetune.report import chance_note

    target = torch.tensor([0] * 54 + [1] * 46)
    always_0 = torch.zeros(100, dtype=torch.long)
    note = chance_note(0.54, (always_0, target), ("negative", "positive"))
    assert note.startswith("at chance: test accuracy 54.0%") and "'negative' (54.0%)" in note
    assert chance_note(0.9, (target, target), ("negative", "positive")) is None
