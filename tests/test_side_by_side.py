"""benchmarks/nanogpt_side_by_side.py without nanoGPT: its command line and refusals, nanoGPT's
character data it prepares, and the fixed-batch evaluation on tiny made-up models (the real
comparison needs a nanoGPT checkout, which CI does not have)."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from minimod.data import CharTokenizer, lm_batch
from minimod.models.gpt import GPT, GPTConfig
from minimod.tasks.lm import lm_evaluate

pytestmark = pytest.mark.reference_only

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "nanogpt_side_by_side.py"
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 8


@pytest.fixture(scope="module")
def sbs():
    """The script as a module (it imports benchmarks/common.py the way it does when run)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("nanogpt_side_by_side", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_help_explains_the_comparison():
    done = run_script("--help")
    assert done.returncode == 0, done.stderr
    assert "--nanogpt DIR" in done.stdout and "200 fixed" in done.stdout


def test_a_missing_or_wrong_nanogpt_folder_is_one_clear_error(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    for folder, said in ((tmp_path / "absent", "no such folder"), (tmp_path, "no train.py")):
        done = run_script("--nanogpt", str(folder), "--data", str(data))
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert said in done.stderr.strip().splitlines()[-1]


def test_prepared_data_is_nanogpts_character_dataset(sbs, tmp_path):
    meta = sbs.prepare_char_data(TEXT, tmp_path)
    chars = sorted(set(TEXT))
    assert meta == {
        "vocab_size": len(chars),
        "itos": dict(enumerate(chars)),
        "stoi": {c: i for i, c in enumerate(chars)},
    }
    with open(tmp_path / "meta.pkl", "rb") as f:
        assert pickle.load(f) == meta
    cut = int(len(TEXT) * 0.9)
    for name, part in (("train", TEXT[:cut]), ("val", TEXT[cut:])):
        ids = np.fromfile(tmp_path / f"{name}.bin", dtype=np.uint16)
        assert "".join(meta["itos"][int(i)] for i in ids) == part


def test_nanogpt_gets_the_baby_preset(sbs):
    arguments = sbs.nanogpt_arguments(2000)
    assert arguments[0] == "config/train_shakespeare_char.py"
    given = dict(a.removeprefix("--").split("=") for a in arguments[1:])
    assert given["n_layer"] == "4" and given["n_embd"] == "128" and given["block_size"] == "64"
    assert given["batch_size"] == "12" and given["max_iters"] == given["lr_decay_iters"] == "2000"
    assert given["eval_interval"] == "250" and given["always_save_checkpoint"] == "True"
    assert sbs.nanogpt_arguments(300)[1:].count("--eval_interval=300") == 1


def test_fixed_batches_are_minimods_final_evaluation(sbs):
    """The same windows on every call, and the loss minimod's own evaluation reports."""
    val = torch.tensor(CharTokenizer.train(TEXT).encode(TEXT))
    first, again = sbs.fixed_batches(val, 3, 8, 5), sbs.fixed_batches(val, 3, 8, 5)
    pairs = zip(first, again, strict=True)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in pairs)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=int(val.max()) + 1, n_layer=1, n_head=2, n_embd=16, block_size=8)
    ).eval()
    ours = sbs.fixed_batch_loss(lambda x, y: model(x, y)[1], first)

    def loss_of(model, tokens, g, device):
        x, y = lm_batch(tokens, 3, 8, g)
        return model(x, y)[1]

    with torch.no_grad():
        theirs = lm_evaluate(loss_of, val, 5, seed=sbs.EVAL_SEED)(model)["loss"]
    assert ours == pytest.approx(theirs, abs=1e-6)


FAKE_MODEL = """
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F


    @dataclass
    class GPTConfig:
        vocab_size: int = 5


    class GPT(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.table = torch.nn.Embedding(config.vocab_size, config.vocab_size)

        def forward(self, idx, targets):
            logits = self.table(idx)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
            return logits, loss
"""


def test_a_nanogpt_checkpoint_loads_with_its_own_model_file(sbs, tmp_path):
    """model.py is imported from the folder given; compiled runs' key prefix is dropped."""
    (tmp_path / "model.py").write_text(textwrap.dedent(FAKE_MODEL))
    table = torch.zeros(5, 5)
    table[torch.arange(5), (torch.arange(5) + 1) % 5] = 20.0  # predicts the next id
    torch.save(
        {"model": {"_orig_mod.table.weight": table}, "model_args": {"vocab_size": 5}},
        tmp_path / "ckpt.pt",
    )
    model = sbs.load_nanogpt(tmp_path, tmp_path / "ckpt.pt")
    assert not model.training
    batches = sbs.fixed_batches(torch.arange(40) % 5, 2, 4, 3)
    assert sbs.fixed_batch_loss(lambda x, y: model(x, y)[1], batches) < 1e-6


def test_nanogpt_log_lines_are_read(sbs):
    """The figures the script takes from train.py's output (its print formats at 3adf61e)."""
    log = "step 0: train loss 4.1676, val loss 4.1649\niter 0: loss 4.1828, time 3808.70ms, mfu "
    log += "-100.00%\niter 1: loss 4.0862, time 256.38ms, mfu -100.00%\n"
    assert [m["ms"] for m in sbs.NANOGPT_ITER.finditer(log)] == ["3808.70", "256.38"]
    assert [m["loss"] for m in sbs.NANOGPT_EVAL.finditer(log)] == ["4.1649"]
