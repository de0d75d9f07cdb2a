"""``minimod pretrain``'s model, schedule and optimizer options (--n-layer, --n-head, --n-embd,
--block-size, --warmup-steps, --weight-decay, --grad-accum): each one changes what it says, is
recorded in run.json (so --resume, evaluate and generate rebuild the same model), and a bad
value is one line. In process on the tiny preset for a step or two; one slow test runs the
console script end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import assert_usage_error, minimod
from minimod.cli import build_parser
from minimod.tasks import UsageError, pretrain
from minimod.tasks.pretrain import make_settings
from minimod.tasks.run import evaluate_run, generate_text, load_run, read_run
from minimod.train.checkpoint import load_checkpoint
from minimod.train.loop import Trainer

pytestmark = pytest.mark.reference_only
TEXT = "Every module has parameters, and every parameter has a gradient.\n" * 60
OPTIONS = ("--n-layer", "--n-head", "--n-embd", "--block-size", "--warmup-steps",
           "--weight-decay", "--grad-accum")  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def run(task: str, out: Path, data: str | None = None, **options) -> dict:
    """``pretrain TASK --preset tiny`` for ``options`` (1 step unless they say), quietly."""
    options = {"max_steps": 1, **options}
    return pretrain(task, "tiny", data=data, out=out, device="cpu", progress=False,
                    log=lambda line: None, **options)  # fmt: skip


def test_help_explains_each_option_with_its_default():
    commands = next(action for action in build_parser()._actions if action.dest == "command")
    text = " ".join(commands.choices["pretrain"].format_help().split())
    for option in OPTIONS:
        assert f"{option} " in text, option
    assert text.count("(default: the preset's") >= len(OPTIONS)
    assert "0 = none" in text and "multiple of it" in text


def test_shape_options_build_the_model_and_go_to_run_json(tmp_path, corpus):
    one = run("gpt", tmp_path / "one", corpus)
    two = run("gpt", tmp_path / "two", corpus, n_layer=2, n_head=4, n_embd=64, block_size=16)
    config = two["model"].config
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (2, 4, 64, 16)
    assert one["model"].config.n_layer == 1
    block = sum(p.numel() for p in two["model"].transformer.h[1].parameters())
    # One layer, 64 wide (num_parameters leaves out the position embeddings, as nanoGPT's).
    wider = run("gpt", tmp_path / "wider", corpus, n_embd=64)
    assert two["model"].num_parameters() - block == wider["model"].num_parameters()
    model = read_run(tmp_path / "two")["settings"]["model"]
    assert (model["n_layer"], model["n_head"], model["n_embd"], model["block_size"]) == (
        2, 4, 64, 16,
    )  # fmt: skip


def test_bert_takes_the_shape_options_under_its_own_names(tmp_path):
    settings = make_settings("bert", "tiny", n_layer=2, n_head=4, n_embd=64, block_size=16)
    model = settings["model"]
    assert (model["num_hidden_layers"], model["num_attention_heads"], model["hidden_size"]) == (
        2, 4, 64,
    )  # fmt: skip
    assert model["intermediate_size"] == 2 * 64  # tiny's feed-forward is twice its width
    assert settings["block_size"] == 16
    bert = run("bert", tmp_path / "bert", n_layer=2, n_embd=64, block_size=16)["model"].config
    assert (bert.num_hidden_layers, bert.hidden_size, bert.max_position_embeddings) == (2, 64, 16)


def test_warmup_zero_trains_at_the_peak_lr_from_the_first_step(tmp_path, corpus):
    peak = make_settings("gpt", "tiny")["lr"]
    rows = {}
    for warmup in (0, 2):
        out = tmp_path / f"warmup{warmup}"
        run("gpt", out, corpus, max_steps=3, warmup_steps=warmup, log_every=1)
        lines = (out / "metrics.jsonl").read_text().splitlines()
        rows[warmup] = [row["lr"] for row in map(json.loads, lines) if "lr" in row]
        assert read_run(out)["settings"]["warmup_steps"] == warmup
    assert rows[0][0] == pytest.approx(peak)
    assert rows[2][:2] == [0.0, pytest.approx(peak / 2)]  # linear from 0 over 2 steps


def test_weight_decay_goes_to_the_optimizer_matrices_only(tmp_path, corpus):
    run("gpt", tmp_path / "wd", corpus, weight_decay=0.25)
    groups = load_checkpoint(tmp_path / "wd" / "last.pt")["optimizer"]["param_groups"]
    assert sorted(group["weight_decay"] for group in groups) == [0.0, 0.25]
    assert read_run(tmp_path / "wd")["settings"]["weight_decay"] == 0.25
    none = run("gpt", tmp_path / "none", corpus, weight_decay=0)
    groups = load_checkpoint(Path(none["run"]) / "last.pt")["optimizer"]["param_groups"]
    assert all(group["weight_decay"] == 0 for group in groups)


def test_grad_accum_takes_that_many_micro_batches_per_step(tmp_path, corpus, monkeypatch):
    drawn = []
    batch = Trainer._batch

    def counted(self, index):
        drawn.append(index)
        return batch(self, index)

    monkeypatch.setattr(Trainer, "_batch", counted)
    summary = run("gpt", tmp_path / "accum", corpus, max_steps=2, grad_accum=2)
    assert summary["step"] == 2 and drawn == [0, 1, 2, 3]
    assert read_run(tmp_path / "accum")["settings"]["grad_accum"] == 2
    config = json.loads((tmp_path / "accum" / "config.json").read_text())
    assert config["train"]["grad_accum_steps"] == 2


def test_a_reshaped_run_resumes_evaluates_and_generates(tmp_path, corpus):
    out = tmp_path / "shaped"
    shape = dict(n_layer=2, n_embd=64, grad_accum=2, weight_decay=0.0)
    run("gpt", out, corpus, max_steps=2, **shape)
    resumed = run("gpt", out, corpus, max_steps=3, resume=True, **shape)
    assert resumed["step"] == 3 and resumed["model"].config.n_layer == 2
    with pytest.raises(
        UsageError, match=r"cannot resume .*model \(run \{'n_layer': 2.*now \{'n_layer': 1"
    ):
        run("gpt", out, corpus, max_steps=4, resume=True)  # without the run's options
    with pytest.raises(UsageError, match=r"cannot resume .*grad_accum \(run 2, now 1\)"):
        run("gpt", out, corpus, max_steps=4, resume=True, n_layer=2, n_embd=64, weight_decay=0.0)
    record, metrics, _ = evaluate_run(out)
    assert record["settings"]["model"]["n_embd"] == 64 and metrics["loss"] > 0
    _, wired, model = load_run(out)
    assert (model.config.n_layer, model.config.n_embd) == (2, 64)
    text = generate_text(model, wired.tokenizer, "Every", max_new_tokens=5)
    assert text.startswith("Every") and len(text) == 10


def test_a_run_from_before_grad_accum_existed_still_resumes(tmp_path, corpus):
    out = tmp_path / "old"
    run("gpt", out, corpus, max_steps=1)
    record = json.loads((out / "run.json").read_text())
    del record["settings"]["grad_accum"]
    (out / "run.json").write_text(json.dumps(record))
    assert run("gpt", out, corpus, max_steps=2, resume=True)["step"] == 2


def _warmup_of(out: Path) -> tuple[int, int]:
    """(run.json's warmup, the warmup of last.pt's schedule)."""
    scheduler = load_checkpoint(out / "last.pt")["scheduler"]
    return read_run(out)["settings"]["warmup_steps"], scheduler["warmup_steps"]


def test_resume_keeps_the_runs_warmup_and_refuses_another(tmp_path, corpus):
    given = tmp_path / "given"
    run("gpt", given, corpus, max_steps=2, warmup_steps=1)
    assert run("gpt", given, corpus, max_steps=3, warmup_steps=1, resume=True)["step"] == 3
    assert run("gpt", given, corpus, max_steps=4, resume=True)["step"] == 4  # without the option
    assert _warmup_of(given) == (1, 1)
    with pytest.raises(UsageError) as refused:
        run("gpt", given, corpus, max_steps=5, warmup_steps=3, resume=True)
    message = str(refused.value)
    assert "warmup_steps (run 1, now 3)" in message and "\n" not in message
    assert "leave out --warmup-steps" in message and "another --out" in message
    # A warmup of 5 is cut to the 2 steps of this run: the same command resumes it, and without
    # the option the preset's 5 is no difference even when --max-steps grows past it.
    cut = tmp_path / "cut"
    run("gpt", cut, corpus, max_steps=2, warmup_steps=5)
    assert run("gpt", cut, corpus, max_steps=2, warmup_steps=5, resume=True)["step"] == 2
    assert run("gpt", cut, corpus, max_steps=7, resume=True)["step"] == 7
    assert _warmup_of(cut) == (2, 2)
    with pytest.raises(UsageError, match=r"warmup_steps \(run 2, now 5\)"):
        run("gpt", cut, corpus, max_steps=8, warmup_steps=5, resume=True)


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("lr", 0.01, "lr (run 0.003, now 0.01)"),
        ("batch_size", 4, "batch_size (run 8, now 4)"),
        ("weight_decay", 0.5, "weight_decay (run 0.1, now 0.5)"),
        ("grad_accum", 2, "grad_accum (run 1, now 2)"),
    ],
)
def test_resume_refuses_other_optimizer_settings(tmp_path, corpus, option, value, words):
    out = tmp_path / "run"
    run("gpt", out, corpus)
    with pytest.raises(UsageError) as refused:
        run("gpt", out, corpus, max_steps=2, resume=True, **{option: value})
    message = str(refused.value)
    assert words in message and "another --out" in message and "--warmup-steps" not in message


@pytest.mark.parametrize(
    "task, options, words",
    [
        ("gpt", dict(n_head=3), ["--n-embd 32 must be divisible by --n-head 3"]),
        ("bert", dict(n_embd=30, n_head=4), ["--n-embd 30 must be divisible by --n-head 4"]),
        ("cnn", dict(n_layer=2), ["--n-layer", "for gpt and bert, not cnn"]),
        ("tts", dict(block_size=8, n_embd=8), ["--n-embd, --block-size", "not tts"]),
        ("gpt", dict(n_layer=0), ["--n-layer must be > 0, got 0"]),
        ("gpt", dict(grad_accum=1.5), ["--grad-accum must be a whole number"]),
        ("gpt", dict(warmup_steps=-1), ["--warmup-steps must be ≥ 0, got -1"]),
        ("gpt", dict(weight_decay=-0.1), ["--weight-decay must be ≥ 0, got -0.1"]),
        ("gpt", dict(weight_decay=float("nan")), ["--weight-decay must be ≥ 0"]),
    ],
)
def test_bad_settings_are_refused_in_one_line(task, options, words):
    with pytest.raises(UsageError) as error:
        make_settings(task, "tiny", **options)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_an_unknown_setting_is_a_type_error():
    with pytest.raises(TypeError, match="gpt has no setting 'n_layers'"):
        make_settings("gpt", "tiny", n_layers=2)


@pytest.mark.slow
def test_the_command_line_round_trip(tmp_path, corpus):
    """The console script: a reshaped run, its --resume, evaluate and generate; bad values."""
    out = str(tmp_path / "cli")
    made = ["pretrain", "gpt", "--data", corpus, "--n-layer", "2", "--n-embd", "64",
            "--warmup-steps", "0", "--grad-accum", "2", "--device", "cpu",
            "--out", out]  # fmt: skip
    done = minimod(*made, "--max-steps", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    done = minimod(*made, "--max-steps", "3", "--resume")
    assert done.returncode == 0 and "done: step 3," in done.stdout, done.stdout + done.stderr
    assert "held-out batches: loss" in minimod("evaluate", "--from", out).stdout
    assert minimod("generate", "--from", out, "--prompt", "Every").returncode == 0
    assert_usage_error(minimod("pretrain", "gpt", "--n-head", "5"), "divisible by --n-head 5")
    assert_usage_error(minimod("pretrain", "gpt", "--weight-decay", "-1"), "≥ 0")
    assert_usage_error(minimod("pretrain", "gpt", "--grad-accum", "0"), "must be ≥ 1")
