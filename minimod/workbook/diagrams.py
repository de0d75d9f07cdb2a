"""The lesson book's diagrams: one function per figure, each drawn with matplotlib (Agg) and,
where it can, computed by minimod itself on a small seeded input, so a figure shows what the
code does rather than what someone drew.

Every function takes the PNG path to write. ``DIAGRAMS`` says which lesson shows each figure,
under which section heading, and its alternative text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

DPI = 80


@dataclass(frozen=True)
class Diagram:
    lesson: int
    section: str  # the heading of the lesson's section it ends
    name: str  # file name, without .png
    alt: str  # alternative text, also the caption
    draw: Callable[[Path], None]


def _pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(figure)


def _table(axis, values: torch.Tensor, title: str, fmt: Callable[[float], str], cmap: str) -> None:
    """A small matrix drawn as a coloured table with its values written in the cells."""
    axis.imshow(values.float().numpy(), cmap=cmap, vmin=0, vmax=1)
    rows, columns = values.shape
    for i in range(rows):
        for j in range(columns):
            value = float(values[i, j])
            colour = "white" if value > 0.5 else "black"
            axis.text(j, i, fmt(value), ha="center", va="center", fontsize=9, color=colour)
    axis.set_xticks(range(columns), [f"k{j}" for j in range(columns)])
    axis.set_yticks(range(rows), [f"q{i}" for i in range(rows)])
    axis.set_title(title, fontsize=10)


def mask_tables(path: Path) -> None:
    """causal_mask(4) and, with a KV cache of 2 keys, causal_mask(2, 4, offset=2)."""
    from minimod.nn.attention import causal_mask

    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3))
    _table(
        left,
        causal_mask(4),
        "causal_mask(4): True = may attend",
        lambda v: "T" if v else "F",
        "Blues",
    )
    _table(
        right,
        causal_mask(2, 4, offset=2),
        "causal_mask(2, 4, offset=2): 2 keys cached",
        lambda v: "T" if v else "F",
        "Blues",
    )
    _save(figure, path)


def attention_heat_map(path: Path) -> None:
    """The causal attention weights of a seeded 6-token input, from scaled_dot_product_attention."""
    from minimod.nn.attention import scaled_dot_product_attention

    generator = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 6, 8, generator=generator)
    _, weights = scaled_dot_product_attention(q, k, v, is_causal=True, need_weights=True)
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4, 3.6))
    _table(
        axis, weights, "softmax(Q Kᵀ / √d + mask): rows sum to 1", lambda v: f"{v:.2f}", "Oranges"
    )
    _save(figure, path)


def pre_ln_block(path: Path) -> None:
    """GPT's pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)), the residual stream kept."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 2.4))
    boxes = [("ln_1", 1.0), ("attn", 2.6), ("ln_2", 5.0), ("mlp", 6.6)]
    axis.annotate("", xy=(8.4, 0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "lw": 2})
    axis.text(0, 0.15, "x", fontsize=12)
    axis.text(8.5, -0.05, "x'", fontsize=12)
    for name, x in boxes:
        colour = "#cde" if name.startswith("ln") else "#fdb"
        axis.add_patch(plt.Rectangle((x - 0.6, 0.8), 1.2, 0.6, facecolor=colour, edgecolor="k"))
        axis.text(x, 1.1, name, ha="center", va="center", fontsize=11)
    for (_, norm), (_, block) in (boxes[0:2], boxes[2:4]):
        arrow = {"arrowstyle": "->"}
        axis.annotate("", xy=(norm, 0.8), xytext=(norm, 0.02), arrowprops=arrow)
        axis.annotate("", xy=(block - 0.6, 1.1), xytext=(norm + 0.6, 1.1), arrowprops=arrow)
        axis.annotate("", xy=(block, 0.18), xytext=(block, 0.8), arrowprops=arrow)
        axis.add_patch(plt.Circle((block, 0), 0.18, facecolor="white", edgecolor="k", zorder=3))
        axis.text(block, 0, "+", ha="center", va="center", fontsize=12, zorder=4)
    axis.text(
        4.2,
        -0.55,
        "residual stream: normalised copies go out, updates are added back",
        ha="center",
        fontsize=9,
    )
    axis.set_xlim(-0.3, 9)
    axis.set_ylim(-0.8, 1.6)
    axis.axis("off")
    _save(figure, path)


def conv_taps(path: Path) -> None:
    """The views _taps takes of two 4×4 images stacked by _stacked for a 3×3 kernel (stride 1,
    padding 1): each tap reads the flattened stack shifted by i·Wr + j, P columns long."""
    from minimod.nn.conv import _stacked, _taps

    buffer, pitch = _stacked(torch.zeros(2, 1, 4, 4), (1, 1, 1, 1), (2, 2))
    taps = _taps(buffer, (3, 3), (1, 1), (1, 1), (4, 4))
    width, row = buffer.numel(), buffer.shape[-1]
    rows = torch.zeros(len(taps), width)
    for index, view in enumerate(taps):
        rows[index, view.storage_offset() : view.storage_offset() + view.shape[-1]] = 1
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.2))
    axis.imshow(rows.numpy(), cmap="Greens", vmin=0, vmax=1.4, aspect="auto")
    for x in range(0, width + 1, row):
        axis.axvline(x - 0.5, color="grey", lw=0.8)
    for x in range(0, width + 1, pitch * row):
        axis.axvline(x - 0.5, color="black", lw=1.6)
    axis.set_yticks(range(len(taps)), [f"tap ({i}, {j})" for i in range(3) for j in range(3)])
    axis.set_xlabel(
        f"column of the flat stack of 2 images (R·Wr = {width}; grey lines: rows of Wr = {row}, "
        f"black: images of Hr = {pitch} rows)"
    )
    axis.set_title(
        f"each tap: a view of P = {taps[0].shape[-1]} columns, shifted by i·Wr + j", fontsize=10
    )
    _save(figure, path)


def pooling_choices(path: Path) -> None:
    """How much of each position pool(..., how) takes, for one sequence of 5 real tokens and 2
    padding tokens: pooling the identity matrix gives the weights."""
    from minimod.models.heads import pool

    length, real = 7, 5
    hidden = torch.eye(length).unsqueeze(0)
    mask = (torch.arange(length) < real).unsqueeze(0)
    plt = _pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(8, 2.4), sharey=True)
    for axis, how in zip(axes, ("cls", "mean", "last"), strict=True):
        weights = pool(hidden, mask, how)[0]
        colours = ["#48a" if t < real else "#ccc" for t in range(length)]
        axis.bar(range(length), weights.numpy(), color=colours)
        axis.set_title(f'pool(how="{how}")', fontsize=10)
        axis.set_xticks(range(length), [str(t) if t < real else "pad" for t in range(length)])
    axes[0].set_ylabel("weight of position")
    _save(figure, path)


def lora_update(path: Path) -> None:
    """W' = W + (α/r)·B·A: a frozen 12×16 weight and a rank-2 update, from LoRALinear.merged()."""
    from minimod.nn.linear import Linear
    from minimod.nn.lora import LoRALinear

    with torch.random.fork_rng(devices=[]), torch.no_grad():  # the caller's seed is untouched
        torch.manual_seed(0)
        layer = LoRALinear(Linear(16, 12), rank=2, alpha=4.0)
        layer.lora_B.normal_()  # as after training: B is 0 at the start
    base = layer.base.weight.detach()
    merged = layer.merged().weight.detach()
    panels = [
        ("W (12, 16), frozen", base),
        ("B (12, 2)", layer.lora_B.detach()),
        ("A (2, 16)", layer.lora_A.detach()),
        ("(α/r)·B·A: rank 2", merged - base),
        ("W' = merged().weight", merged),
    ]
    plt = _pyplot()
    figure, axes = plt.subplots(
        1, 5, figsize=(11, 2.6), gridspec_kw={"width_ratios": [16, 3, 16, 16, 16]}
    )
    for axis, (title, values) in zip(axes, panels, strict=True):
        limit = float(values.abs().max())
        axis.imshow(values.numpy(), cmap="RdBu", vmin=-limit, vmax=limit)
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    _save(figure, path)


def ctc_lattice(path: Path) -> None:
    """The lattice of target "a a b" over 8 frames of uniform outputs: which states each frame
    can be in on a valid path, and the posterior occupancy γ_t(s) from α and β (alpha_recursion
    run forwards and on the reversed problem)."""
    from minimod.nn.ctc import _skips, alpha_recursion, extend_targets

    frames, classes = 8, 3
    target = torch.tensor([[1, 1, 2]])
    extended = extend_targets(target, torch.tensor([3]), blank=0)  # (1, S')
    states = extended.shape[1]
    emit = torch.full((frames, states, 1), -math.log(classes), dtype=torch.float64)
    alpha = alpha_recursion(emit, _skips(extended).T)[:, :, 0]
    beta = alpha_recursion(emit, _skips(extended.flip(1)).T)[:, :, 0].flip(0, 1)
    log_p = torch.logaddexp(alpha[-1, -1], alpha[-1, -2])
    occupancy = (alpha + beta - emit[:, :, 0] - log_p).exp()
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.imshow(occupancy.T.numpy(), cmap="Purples", vmin=0, vmax=1, aspect="auto")
    skips = _skips(extended)[0]
    for t in range(frames - 1):
        for s in range(states):
            if occupancy[t, s] <= 0:
                continue
            for move in (0, 1, 2):  # stay, advance, skip a blank
                to = s + move
                if to < states and (move < 2 or skips[to]) and occupancy[t + 1, to] > 0:
                    axis.plot([t, t + 1], [s, to], color="k", lw=0.8)
    names = ["∅" if int(c) == 0 else "ab"[int(c) - 1] for c in extended[0]]
    axis.set_yticks(range(states), [f"{s}: {name}" for s, name in enumerate(names)])
    axis.set_xlabel("frame t")
    axis.set_title("l' = ∅ a ∅ a ∅ b ∅: valid moves and γ_t(s)", fontsize=10)
    _save(figure, path)


def griffin_lim_iterations(path: Path) -> None:
    """Griffin-Lim on a seeded chirp: the spectrogram put back after 0 and 32 iterations, and
    the spectral convergence ‖S − |stft(y)|‖ / ‖S‖ as the iterations go."""
    from minimod.data.spectral import griffin_lim, spectral_convergence, stft

    n_fft, hop, samples = 256, 64, 2000
    time = torch.arange(samples) / 8000
    # faded in and out (a Hann envelope): no click at the ends to smear over every frequency
    signal = torch.sin(2 * torch.pi * (300 + 1500 * time) * time) * torch.hann_window(samples)
    magnitude = stft(signal, n_fft, hop).abs()
    counts = (0, 2, 8, 32)
    results = {n: griffin_lim(magnitude, n_fft, hop, n, length=samples) for n in counts}
    errors = [float(spectral_convergence(magnitude, results[n], n_fft, hop)) for n in counts]
    plt = _pyplot()
    figure, axes = plt.subplots(1, 4, figsize=(11, 2.6))
    panels = [("target |S|", magnitude)] + [
        (f"{n} iterations", stft(results[n], n_fft, hop).abs()) for n in (0, 32)
    ]
    for axis, (title, values) in zip(axes[:3], panels, strict=True):
        axis.imshow(values.T.clamp_min(1e-3).log().numpy(), origin="lower", aspect="auto")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("frame")
    axes[0].set_ylabel("frequency bin")
    axes[3].plot(counts, errors, marker="o")
    axes[3].set_xscale("symlog", linthresh=1)
    axes[3].set_title("spectral convergence", fontsize=9)
    axes[3].set_xlabel("iterations")
    _save(figure, path)


DIAGRAMS: tuple[Diagram, ...] = (
    Diagram(
        8, "Masks", "e08_mask_tables", "causal masks: True where a query may attend", mask_tables
    ),
    Diagram(
        8,
        "Masks",
        "e08_attention_heat_map",
        "causal attention weights of a seeded input: each row sums to 1",
        attention_heat_map,
    ),
    Diagram(
        10,
        "Pre-LN vs post-LN",
        "e10_pre_ln_block",
        "the pre-LN block: x + attn(ln_1(x)), x + mlp(ln_2(x))",
        pre_ln_block,
    ),
    Diagram(
        13,
        "Shifted inputs without copies: _channel_major, _stacked and _taps",
        "e13_conv_taps",
        "the nine tap views of two stacked 4×4 images: the same buffer, shifted",
        conv_taps,
    ),
    Diagram(
        20,
        "Pooling: one vector per sequence",
        "e20_pooling_choices",
        "what cls, mean and last pooling take of each position",
        pooling_choices,
    ),
    Diagram(
        22,
        "The math and the shapes",
        "e22_lora_update",
        "LoRA's low-rank update and the merged weight",
        lora_update,
    ),
    Diagram(
        28,
        "The lattice",
        "e28_ctc_lattice",
        "the CTC lattice of a a b: valid moves and occupancies",
        ctc_lattice,
    ),
    Diagram(
        29,
        "Griffin-Lim: alternating projections",
        "e29_griffin_lim",
        "Griffin-Lim: the spectrogram after 0 and 32 iterations, and the convergence",
        griffin_lim_iterations,
    ),
)
