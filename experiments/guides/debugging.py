"""The measured runs of docs/guides/debugging.md: the checks of the debugging checklist, each on
the project's own code, and ``minimod diagnose`` on runs broken on purpose.

    python experiments/guides/debugging.py            # ~2 minutes on one thread
    python experiments/guides/debugging.py --quick    # a smoke run

What it measures: a shape error's message and a causal mask checked by perturbation; a GPT
overfitting one batch (``--overfit-batch``); a gradient check of the hand-written attention
backward; the loss at initialisation against ln(vocabulary); a small MLP trained healthy and
with four faults (lr ×100, no 1/√fan_in, a detached layer, dead ReLUs: the faults of
tests/test_diagnostics.py), with the warnings of ``minimod diagnose`` and the gradient norms per
layer under three initialisations; a GPT at lr ×100 through the command line; and what
duplicated examples across a random split do to the held-out accuracy, against a split by
content hash.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import torch
from common import figure, figure_path, fill, guide_path, metrics, options, run_minimod, save, table

from minimod import nn
from minimod.data.splits import split_by_hash
from minimod.models.gpt import GPT, GPTConfig
from minimod.nn import functional as F
from minimod.optim import AdamW
from minimod.tasks.diagnose import diagnose
from minimod.tasks.presets import settings_for
from minimod.tasks.run import BUILDERS, model_tuples
from minimod.train.config import TrainConfig
from minimod.train.diagnostics import Diagnostics
from minimod.train.loop import Trainer

NAME = "debugging"
FAULTS = {  # name: MLP settings (see mlp_run)
    "healthy": {},
    "lr ×100 (0.1)": {"lr": 1e-1},
    "no 1/√fan_in (std 1)": {"init_std": 1.0},
    "a detached layer": {"detach": 1},
    "dead ReLUs (bias −3)": {"bias": -3.0},
}


class MLP(nn.Module):
    """depth × (Linear, ReLU), then a Linear head over 4 classes; ``detach`` cuts the graph
    after that layer (the bug: every layer below it stops learning)."""

    def __init__(self, depth: int = 4, width: int = 64, detach: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(16 if i == 0 else width, width)
                                     for i in range(depth)])  # fmt: skip
        self.acts = nn.ModuleList([nn.ReLU() for _ in range(depth)])
        self.head = nn.Linear(width, 4)
        self.detach = detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (layer, act) in enumerate(zip(self.layers, self.acts, strict=True)):
            x = act(layer(x))
            if i == self.detach:
                x = x.detach()
        return self.head(x)


def teacher_batches(seed: int = 0, size: int = 64):
    """Batches of x (size, 16) ~ N(0, 1), labelled by a fixed random linear teacher (4 classes)."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))

    def batches(index: int):
        x = torch.randn(size, 16, generator=g)
        return x, (x @ teacher).argmax(-1)

    return batches


def mlp_run(out: Path, steps: int, lr: float = 1e-3, init_std: float | None = None,
            bias: float | None = None, detach: int | None = None,
            clip: float | None = 1.0) -> dict:  # fmt: skip
    """Train the MLP with diagnostics every 5 steps into ``out`` (gradients clipped to norm
    ``clip``, the Trainer's default; None: not clipped); {"init_loss", "rows", "diagnosis"}
    (the diagnosis is ``minimod diagnose --from OUT``'s, diagnostics.png too)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    torch.manual_seed(0)
    model = MLP(detach=detach)
    for layer in model.layers:
        if init_std is not None:
            layer.weight.data.normal_(0.0, init_std)
        if bias is not None:
            layer.bias.data.fill_(bias)
    batches = teacher_batches()
    with torch.no_grad():
        x, y = teacher_batches(seed=99)(0)
        init_loss = float(F.cross_entropy(model(x), y))
    watcher = Diagnostics(5, out)
    config = TrainConfig(max_steps=steps, clip_grad_norm=clip, progress=False, log_every=5,
                         out_dir=str(out))  # fmt: skip

    def loss_fn(model: MLP, batch: tuple) -> torch.Tensor:
        return F.cross_entropy(model(batch[0]), batch[1])

    optimizer = AdamW(model.parameters(), lr=lr)
    Trainer(model, optimizer, batches, config, loss_fn=loss_fn, callbacks=[watcher]).fit()
    return {"init_loss": init_loss, "rows": watcher.rows, "diagnosis": diagnose(out)}


def shapes_and_masks() -> tuple[str, float, float]:
    """The message of a Linear given the wrong width; the largest change of a tiny GPT's logits
    at positions before t when token t changes (0: the mask hides the future), and after."""
    try:
        nn.Linear(64, 10)(torch.randn(2, 32))
        message = "(no error)"
    except ValueError as error:
        message = str(error)
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()
    idx = torch.randint(0, 50, (1, 16))
    changed = idx.clone()
    changed[0, 8] = (idx[0, 8] + 1) % 50
    with torch.no_grad():
        delta = (gpt(idx)[0] - gpt(changed)[0]).abs().amax(-1)[0]
    return message, float(delta[:8].max()), float(delta[8:].max())


def gradient_check() -> bool:
    """torch.autograd.gradcheck of minimod's attention (the backward is written by hand)."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
               for _ in range(3))  # fmt: skip
    return torch.autograd.gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v)
    )


def gpt_init_loss(out: Path) -> tuple[int, float, float]:
    """The tiny GPT on the built-in corpus, before any step: (vocabulary, loss at GPT-2's
    initialisation, loss with the tied embedding/head drawn with std 1 instead of 0.02)."""
    found = {**settings_for("gpt", "tiny"), "seed": 0}
    wired = BUILDERS["gpt"](model_tuples(found), None, out, fresh=True)
    torch.manual_seed(0)
    net = wired.build()
    batch = wired.batches(0)
    with torch.no_grad():
        loss = float(wired.loss_fn(net, batch))
        net.lm_head.weight.normal_(0.0, 1.0)
        bad = float(wired.loss_fn(net, batch))
    return net.config.vocab_size, loss, bad


def leak(quick: bool) -> dict[str, float]:
    """Held-out accuracy with duplicated examples split at random (copies on both sides) and by
    content hash (copies together), and the accuracy on fresh examples, for a memorising MLP on
    labels with 20% noise."""
    g = torch.Generator().manual_seed(5)
    teacher = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))

    def examples(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 16, generator=g)
        y = (x @ teacher).argmax(-1)
        noisy = torch.rand(n, generator=g) < 0.2
        return x, torch.where(noisy, torch.randint(0, 4, (n,), generator=g), y)

    x, y = examples(600)
    copies = torch.randperm(600, generator=g)[:300]  # half the examples appear twice
    x, y = torch.cat([x, x[copies]]), torch.cat([y, y[copies]])
    fresh = examples(2000)
    order = torch.randperm(len(y), generator=g).tolist()
    cut = len(order) // 10
    splits = {
        "random": (order[2 * cut :], order[cut : 2 * cut]),
        "hash": tuple(split_by_hash([row.numpy().tobytes() for row in x], y.tolist(), s)
                      for s in ("train", "val")),
    }  # fmt: skip
    found = {}
    for name, (train, val) in splits.items():
        torch.manual_seed(0)
        model = MLP(depth=2, width=256)
        optimizer = AdamW(model.parameters(), lr=3e-3)
        xt, yt = x[train], y[train]
        for _ in range(100 if quick else 1500):  # full batch: memorise the noise
            loss = F.cross_entropy(model(xt), yt)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_ids = torch.tensor(val)
            seen = torch.tensor([bool((xt == x[i]).all(-1).any()) for i in val])
            right = model(x[val_ids]).argmax(-1) == y[val_ids]
            found[name] = {
                "val": 100 * float(right.float().mean()),
                "duplicated": 100 * float(seen.float().mean()),
                "fresh": 100 * float((model(fresh[0]).argmax(-1) == fresh[1]).float().mean()),
                "train": 100 * float((model(xt).argmax(-1) == yt).float().mean()),
            }
    return found


KINDS = ("update/weight ratio", "gets no gradient", "units are dead", "saturated",
         "with depth", "attention collapsed", "attention is uniform")  # fmt: skip


def grouped(warnings: list[str]) -> list[str]:
    """The first warning of each kind in full, with how many more layers said the same."""
    if not warnings:
        return ["(no warning)"]
    lines = []
    for kind in KINDS:
        same = [w for w in warnings if kind in w]
        if same:
            more = f" *(and {len(same) - 1} more like it)*" if len(same) > 1 else ""
            lines.append(same[0] + more)
    return lines


def main(argv: list[str] | None = None) -> None:
    args = options(__doc__, NAME, argv)
    guide = guide_path(args, NAME)
    torch.set_num_threads(1)

    message, before, after = shapes_and_masks()
    fill(guide, "shapes", f"```\nValueError: {message}\n```")
    fill(guide, "mask", (
        f"Changing token 8 of 16 moves the logits at positions 0–7 by at most **{before:.1g}** "
        f"and those at positions 8–15 by up to **{after:.2f}**: the future is hidden."
    ))  # fmt: skip

    vocab, init, bad = gpt_init_loss(args.out / "init")
    steps = 60 if args.quick else 300
    shutil.rmtree(args.out / "overfit", ignore_errors=True)
    overfit = run_minimod(["pretrain", "gpt", "--preset", "tiny", "--overfit-batch",
                           "--max-steps", steps, "--lr", "1e-2"], args.out / "overfit")  # fmt: skip
    rows = metrics(overfit)
    losses = [row["loss"] for row in rows if "loss" in row and "step_time_s" in row]
    held_out = [row["eval_loss"] for row in rows if "eval_loss" in row][-1]
    fill(guide, "overfit", (
        f"The training loss on the one batch: **{losses[0]:.2f}** at step 10, "
        f"**{losses[-1]:.3f}** at step {steps}; the held-out loss at the end: "
        f"**{held_out:.2f}** (ln of the vocabulary, the loss of a uniform guess, is "
        f"{math.log(vocab):.2f}): memorised, not learnt, as it should be."
    ))  # fmt: skip

    fill(guide, "gradcheck", f"`gradcheck` returns **{gradient_check()}**.")

    runs_steps = 20 if args.quick else 40
    runs = {fault: mlp_run(args.out / f"mlp-{i}", runs_steps, **settings)
            for i, (fault, settings) in enumerate(FAULTS.items())}  # fmt: skip
    fill(guide, "init-loss", (
        f"The tiny GPT on the built-in corpus ({vocab} characters): ln({vocab}) = "
        f"**{math.log(vocab):.3f}**; its loss before the first step: **{init:.3f}** (GPT-2's "
        f"initialisation, std 0.02); with the tied embedding and head drawn with std 1: "
        f"**{bad:.1f}**. The 4-class MLP below: ln 4 = {math.log(4):.3f}; measured "
        f"**{runs['healthy']['init_loss']:.3f}** with the default initialisation, "
        f"**{runs['no 1/√fan_in (std 1)']['init_loss']:.1f}** with std-1 weights."
    ))  # fmt: skip

    rows = [[fault, "<br>".join(grouped(run["diagnosis"]["warnings"]))]
            for fault, run in runs.items()]  # fmt: skip
    fill(guide, "faults", table(["the run", "what `minimod diagnose` says"], rows))

    # Exploding and vanishing: gradient norms (unclipped) and output spread per layer, step 0.
    inits = {"std 0.01 (vanishing)": 0.01, "default (1/√fan_in)": None, "std 1 (exploding)": 1.0}
    fig, (left, right) = figure(ncols=2)
    names = [f"layers.{i}" for i in range(4)]
    for label, std in inits.items():
        rows0 = mlp_run(args.out / "init-scale", 2, init_std=std, clip=None)["rows"][0]
        grads = [rows0["parameters"][f"{n}.weight"]["grad_norm"] for n in names]
        stds = [rows0["activations"][f"acts.{i}"]["std"] for i in range(4)]
        left.plot(range(4), grads, marker="o", label=label)
        right.plot(range(4), stds, marker="o", label=label)
    for ax, title in ((left, "gradient norm of each layer's weight"),
                      (right, "output std of each ReLU")):  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(range(4))
        ax.set_xlabel("layer (input → output)")
        ax.set_title(title, fontsize=8)
    left.legend(fontsize=6)
    save(fig, figure_path(args, NAME, "init-scale"))

    # The command line: a tiny GPT at 100× its learning rate, then minimod diagnose.
    shutil.rmtree(args.out / "gpt-lr", ignore_errors=True)
    command = ["pretrain", "gpt", "--preset", "tiny", "--max-steps", 30 if args.quick else 60,
               "--lr", "0.3", "--diagnostics", "5"]  # fmt: skip
    gpt = run_minimod(command, args.out / "gpt-lr")
    said = diagnose(gpt)
    shutil.copyfile(gpt / "diagnostics.png", figure_path(args, NAME, "diagnose"))
    fill(guide, "gpt-diagnose", "```\n" + "\n".join(f"warning: {w}" for w in said["warnings"])
         + "\n```")  # fmt: skip

    found = leak(args.quick)
    random, hashed = found["random"], found["hash"]
    fill(guide, "leak", table(
        ["split", "val examples also in train", "train accuracy", "held-out (val) accuracy",
         "accuracy on 2,000 fresh examples"],
        [[name, f"{r['duplicated']:.0f}%", f"{r['train']:.1f}%", f"{r['val']:.1f}%",
          f"{r['fresh']:.1f}%"] for name, r in (("random", random), ("by content hash", hashed))],
    ))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
