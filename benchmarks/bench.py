"""Training-step speed of minimod's models against their torch.nn twins, measured side by side.

    python benchmarks/bench.py [--models gpt-baby,gpt-small,bert-tiny,resnet,gru,lstm,ctc,mobilenet,
        generate,smollm2,attention,workbook]
        [--steps N] [--warmup N] [--compile] [--device cpu|cuda] [--threads N] [--quick]
        [--json PATH] [--e2e TEXT [--e2e-precisions fp32,bf16] [--e2e-steps N]]
        [--nanogpt DIR --nanogpt-data TEXT [--nanogpt-steps N] [--nanogpt-pairs N]]

Each twin (benchmarks/twins.py) has minimod's architecture and loads minimod's weights; the
forward losses must agree to 1e-4 before anything is timed. A training step is forward,
backward and optimizer step (minimod.optim.AdamW against torch.optim.AdamW, the same
hyperparameters). The layer rows (gru, lstm, ctc) time forward and backward alone: the layer
against torch.nn.GRU / torch.nn.LSTM with the same state_dict, ctc_loss against F.ctc_loss,
MobileNetV2 (ImageNet-sized) against benchmarks.twins.TwinMobileNetV2, torchvision's tree.
Steps alternate A/B in one process after warm-up; the figure that matters is the median of the
per-pair ratios minimod / torch (< 1: minimod is faster).
"generate" times GPT.generate with the KV cache against without it (use_cache=False).
"smollm2" times the real SmolLM2-135M-Instruct's prefill and decode against transformers on the
same GGUF weights (benchmarks/llm_speed.py; after `make real`).
"workbook" times `minimod exercises check N` as a learner runs it: passing, with a pitfall's
mistake, and answered from the pass cache (benchmarks/workbook_times.py); --test-fast adds
`make test-fast`.
"attention" measures the peak memory of one attention forward + backward at T = 512, 2048, 8192:
minimod's two attentions and torch's (benchmarks/attention_memory.py).
--e2e times the whole `minimod pretrain gpt --preset baby --data TEXT` command (2000 steps) in a
fresh process per precision; benchmarks/nanogpt_side_by_side.py runs nanoGPT's own train.py
beside it on the same machine (the comparison that counts: quoted figures from another machine
are not); --nanogpt DIR --nanogpt-data TEXT runs that script's comparison from here.

The output ends with the targets table: every performance target (TARGETS below, the one place
their bounds are written), its bound, the figure this run measured and met / missed, "not
measured" with what to add to the command, or "reported" for a figure without a bound.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as tnn
from common import (
    alternate,
    machine_info,
    markdown_table,
    matmul_peak,
    median,
    memory_method,
    pretrain_baby_gpt,
    si,
    step_memory,
)
from nanogpt_side_by_side import format_rows as format_side_by_side
from nanogpt_side_by_side import medians, side_by_side
from nanogpt_side_by_side import parse_args as side_by_side_args
from twins import TwinBERTForMaskedLM, TwinGPT, TwinMobileNetV2, TwinResNet

from minimod.models.bert import BERTConfig, BERTForMaskedLM
from minimod.models.cnn import ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig
from minimod.models.mobilenet import MobileNetV2, MobileNetV2Config
from minimod.nn import GRU, LSTM, CTCLoss
from minimod.optim import AdamW
from minimod.train.allocator import keep_freed_memory
from minimod.train.loop import compile_forward

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4  # |loss_minimod - loss_twin| allowed before timing
# Both optimizers, the same settings; foreach (one call per operation for all parameters) as
# minimod's training commands use it.
HYPER = dict(lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, foreach=True)
TRAIN_MODELS = ("gpt-baby", "gpt-small", "bert-tiny", "resnet")
LAYER_MODELS = ("gru", "lstm", "ctc", "mobilenet")
ALL_MODELS = (*TRAIN_MODELS, *LAYER_MODELS, "generate", "smollm2", "attention", "workbook")


@dataclass
class Case:
    """One model, built twice (minimod and twin) with the same weights and the same batch."""

    name: str
    setup: str  # the config in words
    mine: Any
    twin: tnn.Module
    mine_loss: Callable[[], torch.Tensor]
    twin_loss: Callable[[], torch.Tensor]
    items: int  # tokens or images per step
    unit: str  # "tok" or "img"
    flops: float  # per training step
    steps: int
    warmup: int
    notes: list[str] = field(default_factory=list)
    # Set for a layer row: its step is forward and backward alone (no optimizer), and these
    # non-parameter leaves (inputs that need a gradient) get their .grad cleared each step.
    leaves: tuple[torch.Tensor, ...] | None = None


def transformer_flops(n_params: int, n_layer: int, width: int, seq: int, tokens: int) -> float:
    """nanoGPT's estimate: 6·N per token (forward 2N, backward 4N) + attention 12·L·C·T."""
    return (6 * n_params + 12 * n_layer * width * seq) * tokens


def build_gpt(name: str, args: argparse.Namespace) -> Case:
    cpu = args.device == "cpu"
    if name == "gpt-baby":
        cfg = dict(n_layer=4, n_head=4, n_embd=128, block_size=64)
        batch, steps, warmup, notes = 12, args.steps, args.warmup, []
    else:  # gpt-small: nanoGPT's shakespeare_char GPU config
        cfg = dict(n_layer=6, n_head=6, n_embd=384, block_size=256)
        batch, steps, warmup, notes = 64, args.steps, args.warmup, []
        if cpu:
            batch = 2 if args.quick else 8
            steps, warmup = min(steps, 2 if args.quick else 5), min(warmup, 1)
            notes.append(
                f"gpt-small on CPU: batch {batch} instead of 64 and {steps} timed steps "
                "(a batch-64 step takes many seconds there)"
            )
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=65, dropout=0.0, bias=False, **cfg)
    mine = GPT(config).to(args.device)
    twin = TwinGPT(config).to(args.device)
    twin.load_state_dict(mine.state_dict())
    T = config.block_size
    x = torch.randint(0, config.vocab_size, (batch, T), device=args.device)
    y = torch.randint(0, config.vocab_size, (batch, T), device=args.device)
    n_params = sum(p.numel() for p in twin.parameters()) - twin.transformer.wpe.weight.numel()
    return Case(
        name=name,
        setup=f"L{config.n_layer} H{config.n_head} C{config.n_embd} T{T} B{batch} V65",
        mine=mine,
        twin=twin,
        mine_loss=lambda: mine(x, y)[1],
        twin_loss=lambda: twin(x, y)[1],
        items=batch * T,
        unit="tok",
        flops=transformer_flops(n_params, config.n_layer, config.n_embd, T, batch * T),
        steps=steps,
        warmup=warmup,
        notes=notes,
    )


def build_bert(name: str, args: argparse.Namespace) -> Case:
    # minimod's "tiny" BERT preset (minimod/tasks/presets.py), at seq 128 and batch 32.
    batch, T, vocab = (8 if args.quick else 32), 128, 512
    torch.manual_seed(0)
    config = BERTConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    mine = BERTForMaskedLM(config).to(args.device)
    twin = TwinBERTForMaskedLM(config).to(args.device)
    twin.load_state_dict(mine.state_dict())
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (batch, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (batch,), generator=g)
    attention = (torch.arange(T)[None, :] < lengths[:, None]).long()  # padding at the end
    ids = ids.masked_fill(attention == 0, config.pad_token_id)
    chosen = (torch.rand(batch, T, generator=g) < 0.15) & (attention == 1)
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    ids, attention, labels = (t.to(args.device) for t in (ids, attention, labels))
    embeddings = twin.bert.embeddings
    n_params = (
        sum(p.numel() for p in twin.parameters())
        - embeddings.position_embeddings.weight.numel()
        - embeddings.token_type_embeddings.weight.numel()
    )
    notes = ["bert-tiny: minimod's tiny BERT preset (H32 L1 A2 I64), vocab 512, padding mask"]
    if args.quick:
        notes.append("bert-tiny --quick: batch 8")
    return Case(
        name=name,
        setup=f"L1 H32 A2 I64 T{T} B{batch} V{vocab}",
        mine=mine,
        twin=twin,
        mine_loss=lambda: mine(ids, attention, None, labels)[1],
        twin_loss=lambda: twin(ids, attention, None, labels)[1],
        items=batch * T,
        unit="tok",
        flops=transformer_flops(n_params, 1, 32, T, batch * T),
        steps=args.steps,
        warmup=args.warmup,
        notes=notes,
    )


def conv_macs(model: tnn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the Conv2d and Linear layers in one forward of x."""
    total = 0

    def hook(module: tnn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, tnn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (tnn.Conv2d, tnn.Linear))
    ]
    try:
        with torch.no_grad():
            model.eval()
            model(x)
    finally:
        model.train()
        for h in handles:
            h.remove()
    return total


def build_resnet(name: str, args: argparse.Namespace) -> Case:
    batch = 16 if args.quick else 64
    torch.manual_seed(0)
    config = ResNetConfig(in_channels=3, num_classes=10)
    mine = ResNet(config).to(args.device)
    twin = TwinResNet(config).to(args.device)
    twin.load_state_dict(mine.state_dict())
    x = torch.randn(batch, 3, 32, 32, device=args.device)
    y = torch.randint(0, 10, (batch,), device=args.device)
    macs = conv_macs(twin, x)
    notes = ["resnet FLOPs: 3 (forward + backward) x 2 x conv/linear MACs"]
    if args.quick:
        notes.append("resnet --quick: batch 16")
    return Case(
        name=name,
        setup=f"widths {config.widths} depths {config.depths} 3x32x32 B{batch}",
        mine=mine,
        twin=twin,
        mine_loss=lambda: torch.nn.functional.cross_entropy(mine(x), y),
        twin_loss=lambda: torch.nn.functional.cross_entropy(twin(x), y),
        items=batch,
        unit="img",
        flops=6.0 * macs,
        steps=args.steps,
        warmup=args.warmup,
        notes=notes,
    )


def build_recurrent(name: str, args: argparse.Namespace) -> Case:
    """SpeechRecognizer's GRU (input 80, hidden 128, 2 layers, bidirectional, batch_first) at
    batch 32 and 100 frames; the LSTM row the same with one direction."""
    batch, T, features, hidden, layers = 32, 100, 80, 128, 2
    bidirectional = name == "gru"
    torch.manual_seed(0)
    kind = dict(gru=(GRU, tnn.GRU), lstm=(LSTM, tnn.LSTM))[name]
    shape = dict(num_layers=layers, batch_first=True, bidirectional=bidirectional)
    mine = kind[0](features, hidden, **shape).to(args.device)
    twin = kind[1](features, hidden, **shape).to(args.device)
    twin.load_state_dict(mine.state_dict())
    x = torch.randn(batch, T, features, device=args.device, requires_grad=True)
    weights = sum(p.numel() for n, p in twin.named_parameters() if n.startswith("weight"))
    directions = "bidirectional" if bidirectional else "1 direction"
    return Case(
        name=name,
        setup=f"I{features} H{hidden} L{layers} {directions} B{batch} T{T} batch_first",
        mine=mine,
        twin=twin,
        mine_loss=lambda: mine(x)[0].square().mean(),
        twin_loss=lambda: twin(x)[0].square().mean(),
        items=batch * T,
        unit="frame",
        flops=6.0 * weights * batch * T,  # forward 2 and backward 4 per weight and frame
        steps=args.steps,
        warmup=args.warmup,
        notes=[
            f"{name}: forward + backward of output.square().mean() (the input needs a gradient "
            "too); FLOPs 6 x weights x frames"
        ],
        leaves=(x,),
    )


def build_ctc(name: str, args: argparse.Namespace) -> Case:
    """SpeechRecognizer's CTC: 100 frames, batch 32, 11 classes (10 words + blank), targets of
    1 to 7 words, input lengths 80 to 100."""
    T, batch, classes = 100, 32, 11
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(T, batch, classes, generator=g)
    log_probs = logits.log_softmax(-1).to(args.device).requires_grad_()
    targets = torch.randint(1, classes, (batch, 7), generator=g).to(args.device)
    target_lengths = torch.randint(1, 8, (batch,), generator=g).to(args.device)
    input_lengths = torch.randint(80, T + 1, (batch,), generator=g).to(args.device)
    mine, twin = CTCLoss(), tnn.CTCLoss()
    inputs = (log_probs, targets, input_lengths, target_lengths)
    return Case(
        name=name,
        setup=f"T{T} B{batch} C{classes} S1-7, reduction mean",
        mine=mine,
        twin=twin,
        mine_loss=lambda: mine(*inputs),
        twin_loss=lambda: twin(*inputs),
        items=batch * T,
        unit="frame",
        flops=0.0,  # no matmuls: reported as n/a
        steps=args.steps,
        warmup=args.warmup,
        notes=["ctc: forward + backward of ctc_loss against F.ctc_loss, padded targets"],
        leaves=(log_probs,),
    )


def build_mobilenet(name: str, args: argparse.Namespace) -> Case:
    """MobileNetV2 (width 1.0, 1000 classes, dropout off so both sides compute the same thing)
    on 224x224 images: forward and backward of the cross-entropy, train mode (batch norm)."""
    batch, steps, warmup, notes = 32, args.steps, args.warmup, []
    if args.device == "cpu":  # a batch-32 step takes minutes on a few cores
        batch = 1 if args.quick else 4
        steps, warmup = min(steps, 2 if args.quick else 3), min(warmup, 1)
        notes.append(f"mobilenet on CPU: batch {batch} instead of 32 and {steps} timed steps")
    torch.manual_seed(0)
    mine = MobileNetV2(MobileNetV2Config(dropout=0.0)).to(args.device)
    twin = TwinMobileNetV2(dropout=0.0).to(args.device)
    twin.load_state_dict(mine.state_dict())
    x = torch.randn(batch, 3, 224, 224, device=args.device)
    y = torch.randint(0, 1000, (batch,), device=args.device)
    macs = conv_macs(twin, x)
    notes.append("mobilenet: forward + backward; FLOPs 3 x 2 x conv/linear MACs (depthwise too)")
    return Case(
        name=name,
        setup=f"MobileNetV2 width 1.0, 3x224x224 B{batch}",
        mine=mine,
        twin=twin,
        mine_loss=lambda: torch.nn.functional.cross_entropy(mine(x), y),
        twin_loss=lambda: torch.nn.functional.cross_entropy(twin(x), y),
        items=batch,
        unit="img",
        flops=6.0 * macs,
        steps=steps,
        warmup=warmup,
        notes=notes,
        leaves=(),
    )


BUILDERS = {
    "gpt-baby": build_gpt,
    "gpt-small": build_gpt,
    "bert-tiny": build_bert,
    "resnet": build_resnet,
}
# Not in BUILDERS: profile_step.py builds training steps (with an optimizer) from that one.
LAYER_BUILDERS = {
    "gru": build_recurrent,
    "lstm": build_recurrent,
    "ctc": build_ctc,
    "mobilenet": build_mobilenet,
}


def training_step(model: Any, optimizer: Any, loss_fn: Callable[[], torch.Tensor]):
    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def backward_step(case: Case, model: Any, loss_fn: Callable[[], torch.Tensor]):
    """A layer row's step: forward and backward, gradients cleared first."""

    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        for leaf in case.leaves:
            leaf.grad = None
        loss = loss_fn()
        loss.backward()
        return loss.detach()

    return step


def run_case(case: Case, args: argparse.Namespace, peak: float, compiled: bool) -> dict:
    label = case.name + (" (compiled)" if compiled else "")
    print(f"... {label}: {case.setup}", file=sys.stderr, flush=True)
    compile_s = {}
    if compiled:
        # As minimod's Trainer does (compile_forward: also the workaround for torch 2.13's
        # aliasing check, which knows only torch.nn.Parameter).
        compile_forward(case.mine)
        compile_forward(case.twin)
    if case.leaves is None:
        mine_step = training_step(case.mine, AdamW(case.mine.parameters(), **HYPER), case.mine_loss)
        twin_step = training_step(
            case.twin, torch.optim.AdamW(case.twin.parameters(), **HYPER), case.twin_loss
        )
    else:
        mine_step = backward_step(case, case.mine, case.mine_loss)
        twin_step = backward_step(case, case.twin, case.twin_loss)
    # The first step's loss is computed before any update: the twin check.
    losses = {}
    for who, step in (("minimod", mine_step), ("torch", twin_step)):
        start = time.perf_counter()
        losses[who] = float(step())
        compile_s[who] = time.perf_counter() - start
    diff = abs(losses["minimod"] - losses["torch"])
    if not diff <= TOLERANCE:
        raise SystemExit(
            f"{label}: twin check FAILED: loss minimod {losses['minimod']:.6f} vs torch.nn "
            f"{losses['torch']:.6f} (|diff| {diff:.2e} > {TOLERANCE})"
        )
    print(f"    twin check ok: |loss diff| {diff:.1e} <= {TOLERANCE}", file=sys.stderr)
    for _ in range(case.warmup):
        mine_step()
        twin_step()
    mem_mine = step_memory(mine_step, args.device)
    mem_twin = step_memory(twin_step, args.device)
    t_mine, t_twin, ratios = alternate(mine_step, twin_step, case.steps, args.device)
    ms_mine, ms_twin = median(t_mine), median(t_twin)
    row = dict(
        model=label,
        setup=case.setup,
        steps=case.steps,
        minimod_ms=ms_mine * 1e3,
        torch_ms=ms_twin * 1e3,
        ratio=median(ratios),
        unit=case.unit,
        minimod_items_per_s=case.items / ms_mine,
        torch_items_per_s=case.items / ms_twin,
        flops_per_step=case.flops,
        minimod_flops_per_s=case.flops / ms_mine,
        torch_flops_per_s=case.flops / ms_twin,
        minimod_mem_bytes=mem_mine,
        torch_mem_bytes=mem_twin,
        loss_minimod=losses["minimod"],
        loss_torch=losses["torch"],
        loss_diff=diff,
        twin_check="ok",
    )
    if compiled:
        row["minimod_compile_s"] = compile_s["minimod"]
        row["torch_compile_s"] = compile_s["torch"]
    return row


def run_generation(args: argparse.Namespace) -> dict:
    """GPT.generate with and without the KV cache: 256 greedy tokens from a 1-token prompt."""
    new_tokens, reps = 256, (1 if args.quick else 3)
    config = GPTConfig(
        vocab_size=65, n_layer=4, n_head=4, n_embd=128, block_size=512, dropout=0.0, bias=False
    )
    print(f"... generate: {new_tokens} tokens, gpt-baby with block 512", file=sys.stderr)
    torch.manual_seed(0)
    model = GPT(config).to(args.device)
    model.eval()
    prompt = torch.zeros(1, 1, dtype=torch.long, device=args.device)
    outputs = {}

    def gen(use_cache: bool):
        def call() -> None:
            outputs[use_cache] = model.generate(
                prompt, new_tokens, temperature=0.0, use_cache=use_cache
            )

        return call

    model.generate(prompt, 8, temperature=0.0, use_cache=True)  # warm-up
    model.generate(prompt, 8, temperature=0.0, use_cache=False)
    with_cache, without, ratios = alternate(gen(True), gen(False), reps, args.device)
    return dict(
        setup=f"gpt-baby L4 H4 C128, block_size 512 (not 64), B1, 1-token prompt, "
        f"{new_tokens} greedy tokens",
        cache_s=median(with_cache),
        no_cache_s=median(without),
        speedup=1.0 / median(ratios),
        cache_tokens_per_s=new_tokens / median(with_cache),
        no_cache_tokens_per_s=new_tokens / median(without),
        same_tokens=bool(torch.equal(outputs[True], outputs[False])),
    )


def run_llm(args: argparse.Namespace) -> dict:
    """SmolLM2's prefill and decode tokens/s against transformers (benchmarks/llm_speed.py);
    skipped, with the reason, without `make real` (CPU only: the file is dequantized there)."""
    from llm_speed import format_smollm2, run_smollm2

    from minimod.models.pretrained import MissingExtraError
    from minimod.tasks.common import UsageError

    if args.device != "cpu":
        return {"skipped": "SmolLM2: timed on the CPU only (run without --device)"}
    try:
        row = run_smollm2(reps=1 if args.quick else 3)
    except (MissingExtraError, ImportError, UsageError) as error:
        return {"skipped": f"SmolLM2: skipped ({error})"}
    return {**row, "lines": format_smollm2(row)}


def run_attention(args: argparse.Namespace) -> dict:
    """Peak memory of one attention forward + backward (benchmarks/attention_memory.py), not
    causal; --quick: T = 512 only."""
    from attention_memory import LENGTHS, format_table, run

    lengths = LENGTHS[:1] if args.quick else LENGTHS
    rows = run(list(lengths), causal=False, block_size=128, device=args.device)
    return {"rows": rows, "table": format_table(rows, list(lengths), args.device, False)}


def run_workbook(args: argparse.Namespace) -> dict:
    """What a learner waits for: `minimod exercises check N` passing, with a pitfall's mistake,
    and from the pass cache (benchmarks/workbook_times.py); lessons 2, 8, 13, 16, 35, --quick 2;
    --test-fast also times `make test-fast`."""
    from workbook_times import measure
    from workbook_times import table as check_table

    rows = [measure(number) for number in ((2,) if args.quick else (2, 8, 13, 16, 35))]
    lines = ["### `minimod exercises check N` (a fresh process each, empty pass cache)", ""]
    lines += [check_table(rows), ""]
    test_fast = None
    if args.test_fast:
        start = time.perf_counter()
        done = subprocess.run(["make", "test-fast"], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        test_fast = dict(seconds=seconds, returncode=done.returncode)
        status = "passed" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        lines += [f"`make test-fast`: {seconds:.0f} s, {status}.", ""]
    return {"rows": rows, "test_fast": test_fast, "table": "\n".join(lines)}


def run_end_to_end(args: argparse.Namespace) -> list[dict]:
    """`minimod pretrain gpt --preset baby --data TEXT` in a fresh process per precision:
    wall time of the whole command (start-up, data, training, evaluations, final evaluation
    on 200 batches, checkpoints), its median ms/step and final val loss."""
    steps = ["--max-steps", str(args.e2e_steps)] if args.e2e_steps else []
    return [
        dict(
            precision=precision,
            **pretrain_baby_gpt(args.e2e, "--precision", precision, *steps, device=args.device),
        )
        for precision in args.e2e_precisions
    ]


def format_end_to_end(rows: list[dict]) -> list[str]:
    table = [
        [
            "minimod pretrain gpt --preset baby",
            r["precision"],
            str(r["steps"]),
            f"{r['ms_per_step']:.1f}",
            f"{r['wall_s']:.0f} s",
            f"{r['val_loss']:.3f} (200 batches)",
        ]
        for r in rows
    ]
    headers = ["run", "precision", "steps", "ms/step", "wall", "val loss"]
    return [
        "### End to end: the baby GPT",
        "",
        markdown_table(headers, table),
        "",
        "wall: the whole command in a fresh process (start-up, data, training, evaluation "
        "every 250 steps, the final 200-batch evaluation, checkpoints). Against nanoGPT's own "
        "train.py on the same machine, alternating whole runs and scoring both models on the "
        "same 200 fixed batches: `python benchmarks/nanogpt_side_by_side.py --nanogpt DIR "
        "--data TEXT`.",
        "",
    ]


# --------------------------------------------------------------------------------------------
# The performance targets: every bound is written here once; the README quotes this table.


@dataclass(frozen=True)
class Target:
    """One performance target: the figure MEASURES[measure] reads off a run's results for
    `which` (a row's model, an attention method, a precision, ...) must be <= bound (None: a
    figure reported, with no bound)."""

    name: str
    measure: str
    which: str
    bound: float | None
    hint: str  # what to add to the command of a run that did not measure it
    unit: str = "×"  # printed after the bound


NANOGPT = "--nanogpt DIR --nanogpt-data TEXT"
TARGETS = (
    Target("GPT training step, eager (gpt-baby)", "ratio", "gpt-baby", 1.2, "--models gpt-baby"),
    Target(
        "BERT training step, eager (bert-tiny)", "ratio", "bert-tiny", 1.2, "--models bert-tiny"
    ),
    Target("ResNet training step, eager (resnet)", "ratio", "resnet", 1.5, "--models resnet"),
    Target(
        "MobileNetV2 forward + backward (mobilenet)",
        "ratio",
        "mobilenet",
        2.0,
        "--models mobilenet",
    ),
    Target(
        "ResNet training step, compiled (resnet)",
        "ratio",
        "resnet (compiled)",
        1.2,
        "--models resnet --compile",
    ),
    Target(
        "BERT training step, compiled (bert-tiny)",
        "ratio",
        "bert-tiny (compiled)",
        1.0,
        "--models bert-tiny --compile",
    ),
    Target("GPT memory per step (gpt-baby's mem)", "memory", "gpt-baby", 1.2, "--models gpt-baby"),
    Target(
        "BERT memory per step (bert-tiny's mem)", "memory", "bert-tiny", 1.2, "--models bert-tiny"
    ),
    # O(T): quadrupling T may quadruple the peak (plus noise); the (T, T) path's grows ~16×.
    Target(
        "Attention memory O(T): flash_attention's peak, T = 8192 / T = 2048",
        "attention",
        "minimod flash_attention",
        4.5,
        "--models attention, without --quick",
    ),
    Target(
        "nanoGPT side by side: minimod fp32 wall / nanoGPT's", "nanogpt wall", "fp32", 1.0, NANOGPT
    ),
    Target(
        "nanoGPT side by side: minimod bf16 wall / nanoGPT's", "nanogpt wall", "bf16", 0.8, NANOGPT
    ),
    Target(
        "nanoGPT side by side: fp32 val loss - nanoGPT's, absolute",
        "nanogpt val",
        "fp32",
        0.01,
        NANOGPT,
        unit="",
    ),
    Target(
        "nanoGPT side by side: bf16 val loss - nanoGPT's, absolute",
        "nanogpt val",
        "bf16",
        0.01,
        NANOGPT,
        unit="",
    ),
    Target(
        "`minimod exercises check N` (workbook)", "workbook", "check", None, "--models workbook"
    ),
    Target("`make test-fast`", "workbook", "test-fast", None, "--models workbook --test-fast"),
)


@dataclass
class Figure:
    """What a run measured for a target: `value` is compared with the bound, rounded as `text`
    prints it (None: asked for but not measurable, `text` says why)."""

    value: float | None
    text: str


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def timed_row(result: dict, model: str) -> dict | None:
    return next((r for r in result["rows"] if r["model"] == model), None)


def ratio_figure(result: dict, which: str) -> Figure | None:
    row = timed_row(result, which)
    if row is None:
        failure = result.get("compile_failures", {}).get(which.removesuffix(" (compiled)"))
        if which.endswith(" (compiled)") and failure:
            return Figure(None, f"torch.compile FAILED ({failure})")
        return None
    text = f"{row['ratio']:.2f}"
    return Figure(float(text), f"{text}× ({row['minimod_ms']:.1f} vs {row['torch_ms']:.1f} ms)")


def memory_figure(result: dict, which: str) -> Figure | None:
    row = timed_row(result, which)
    if row is None:
        return None
    mine, twin = row["minimod_mem_bytes"], row["torch_mem_bytes"]
    if mine is None or not twin:
        return Figure(None, f"{mib(mine)} vs {mib(twin)}: no ratio ({result['memory']})")
    text = f"{mine / twin:.2f}"
    return Figure(float(text), f"{text}× ({mib(mine)} vs {mib(twin)})")


def attention_figure(result: dict, which: str) -> Figure | None:
    rows = result.get("attention_memory") or []
    peak = {(r["method"], r["length"]): r["bytes"] for r in rows}
    if (which, 2048) not in peak or (which, 8192) not in peak:
        return None
    if not peak[which, 2048] or peak[which, 8192] is None:
        return Figure(None, f"no peak measured ({result['memory']})")

    def growth(method: str) -> str:
        low, high = peak[method, 2048], peak[method, 8192]
        return f"{high / low:.2f}" if low and high is not None else "n/a"

    others = "; ".join(
        f"{method} {mib(peak[method, 8192])} ({growth(method)}×)"
        for method in dict.fromkeys(r["method"] for r in rows)
        if method != which
    )
    text = growth(which)
    return Figure(
        float(text),
        f"{text}× ({mib(peak[which, 2048])} -> {mib(peak[which, 8192])}); at T = 8192 against "
        f"{others}",
    )


def nanogpt_figure(result: dict, which: str, wall: bool) -> Figure | None:
    rows = result.get("nanogpt") or []
    if not rows:
        return None
    ratio, diff = medians(rows, which)
    pairs = f"median over {len({r['pair'] for r in rows})} pair(s)"
    if wall:
        text = f"{ratio:.2f}"
        return Figure(float(text), f"{text}× ({pairs})")
    return Figure(float(f"{abs(diff):.4f}"), f"{diff:+.4f} ({pairs})")


def workbook_figure(result: dict, which: str) -> Figure | None:
    if which == "test-fast":
        fast = result.get("test_fast")
        if not fast:
            return None
        passed = "passed" if fast["returncode"] == 0 else f"FAILED (exit {fast['returncode']})"
        return Figure(round(fast["seconds"]), f"{fast['seconds']:.0f} s, {passed}")
    rows = result.get("workbook") or []
    if not rows:
        return None
    figures = [
        f"{label} {median([r[key] for r in rows if key in r]):.1f} s"
        for label, key in (("pass", "pass_s"), ("with a pitfall", "fail_s"), ("cached", "cached_s"))
        if any(key in r for r in rows)
    ]
    lessons = ", ".join(str(r["lesson"]) for r in rows)
    return Figure(
        round(median([r["pass_s"] for r in rows]), 1),
        f"{', '.join(figures)} (lessons {lessons}; medians)",
    )


MEASURES: dict[str, Callable[[dict, str], Figure | None]] = {
    "ratio": ratio_figure,
    "memory": memory_figure,
    "attention": attention_figure,
    "nanogpt wall": lambda result, which: nanogpt_figure(result, which, wall=True),
    "nanogpt val": lambda result, which: nanogpt_figure(result, which, wall=False),
    "workbook": workbook_figure,
}


def targets(result: dict) -> list[dict]:
    """One row per TARGETS entry from a run's results (main's JSON dictionary: rows,
    compile_failures, memory, attention_memory, nanogpt, workbook, test_fast): the bound, the
    figure, and status met / missed / not measured / reported."""
    table = []
    for target in TARGETS:
        figure = MEASURES[target.measure](result, target.which)
        if figure is None or figure.value is None:
            status = "not measured"
        elif target.bound is None:
            status = "reported"
        else:
            status = "met" if figure.value <= target.bound else "missed"
        table.append(
            dict(
                target=target.name,
                measure=target.measure,
                which=target.which,
                bound=target.bound,
                unit=target.unit,
                value=None if figure is None else figure.value,
                measured=f"(add {target.hint})" if figure is None else figure.text,
                status=status,
            )
        )
    return table


def format_targets(rows: list[dict], machine: dict, quick: bool) -> str:
    """The targets table under a header line naming the CPU (and GPU) and the thread count."""
    gpu = f", {machine['gpu']}" if "gpu" in machine else ""
    threads = f"{machine['threads']} thread" + ("" if machine["threads"] == 1 else "s")
    table = [
        [
            r["target"],
            "no bound" if r["bound"] is None else f"≤ {r['bound']:.2f}{r['unit']}",
            r["measured"],
            r["status"],
        ]
        for r in rows
    ]
    lines = [
        f"## Performance targets: {machine['cpu']}{gpu}, {threads}",
        "",
        markdown_table(["target", "bound", "measured", "status"], table),
        "",
        "- ×: minimod / the reference (the torch.nn twin; nanoGPT's train.py; for attention "
        "its own peak at T = 2048), judged on the printed figure; < 1: minimod is faster.",
    ]
    if quick:
        lines.append("- --quick: smaller sizes than the targets' (a smoke test, not a claim).")
    return "\n".join(lines)


def format_rows(rows: list[dict], peak: float) -> str:
    headers = [
        "model",
        "setup",
        "minimod ms",
        "torch ms",
        "ratio minimod/torch",
        "minimod /s",
        "torch /s",
        "minimod FLOP/s (% peak)",
        "torch FLOP/s (% peak)",
        "minimod mem",
        "torch mem",
        "Δloss (abs)",
    ]

    def flops(value: float) -> str:
        return f"{si(value)} ({100 * value / peak:.0f}%)" if value else "n/a"

    table = [
        [
            r["model"],
            r["setup"],
            f"{r['minimod_ms']:.1f}",
            f"{r['torch_ms']:.1f}",
            f"{r['ratio']:.2f}",
            si(r["minimod_items_per_s"], " " + r["unit"]),
            si(r["torch_items_per_s"], " " + r["unit"]),
            flops(r["minimod_flops_per_s"]),
            flops(r["torch_flops_per_s"]),
            mib(r["minimod_mem_bytes"]),
            mib(r["torch_mem_bytes"]),
            f"{r['loss_diff']:.1e}",
        ]
        for r in rows
    ]
    return markdown_table(headers, table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="The output ends with the targets table: every performance target, its bound, "
        "the figure this run measured and met or missed, 'not measured' with the options that "
        "measure it, or 'reported' (a figure without a bound).",
    )
    parser.add_argument(
        "--models",
        default=",".join(ALL_MODELS),
        help=f"comma-separated, from {', '.join(ALL_MODELS)} (default: all)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed pairs (20; --quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed pairs (3; --quick 1)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc as it is (default: minimod.train.keep_freed_memory(), as the "
        "minimod command runs, for both sides)",
    )
    parser.add_argument(
        "--test-fast",
        action="store_true",
        help="with the workbook row: also time `make test-fast` (minutes)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--e2e",
        metavar="TEXT",
        help="also time `minimod pretrain gpt --preset baby --data TEXT` end to end (2000 "
        "steps, minutes), e.g. tinyshakespeare.txt",
    )
    parser.add_argument(
        "--e2e-precisions",
        default="fp32,bf16",
        help="the --precision of each end-to-end run (default: fp32,bf16)",
    )
    parser.add_argument(
        "--e2e-steps", type=int, default=None, help="end-to-end steps (default: the preset's 2000)"
    )
    parser.add_argument(
        "--nanogpt",
        metavar="DIR",
        help="also run nanoGPT's own train.py beside `minimod pretrain gpt --preset baby` "
        "(benchmarks/nanogpt_side_by_side.py, whole runs: tens of minutes): the folder of a "
        "nanoGPT checkout (github.com/karpathy/nanoGPT); needs --nanogpt-data",
    )
    parser.add_argument(
        "--nanogpt-data",
        metavar="TEXT",
        help="the text both train on, e.g. tinyshakespeare.txt (its --data)",
    )
    parser.add_argument(
        "--nanogpt-steps",
        type=int,
        default=None,
        help="steps of every run, more than the preset's 100 warmup steps (its --steps; "
        "default: the baby preset's 2000)",
    )
    parser.add_argument(
        "--nanogpt-pairs",
        type=int,
        default=None,
        help="alternating rounds of the three runs, nanoGPT fp32 and minimod fp32 and bf16; the "
        "targets take the medians over them (its --pairs; default: 1)",
    )
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in ALL_MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(ALL_MODELS)}")
    if args.steps is None:
        args.steps = 3 if args.quick else 20
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.e2e and not Path(args.e2e).is_file():
        parser.error(f"--e2e {args.e2e}: no such file")
    args.e2e_precisions = [p.strip() for p in args.e2e_precisions.split(",") if p.strip()]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    args.side_by_side = None
    if bool(args.nanogpt) != bool(args.nanogpt_data):
        parser.error("--nanogpt DIR and --nanogpt-data TEXT go together")
    if args.nanogpt:
        forwarded = ["--nanogpt", args.nanogpt, "--data", args.nanogpt_data]
        for option, value in (
            ("--steps", args.nanogpt_steps),
            ("--pairs", args.nanogpt_pairs),
            ("--threads", args.threads),
        ):
            forwarded += [] if value is None else [option, str(value)]
        # Its own parser checks them and fills in its defaults (an error names its options).
        prog = "bench.py --nanogpt (nanogpt_side_by_side.py's --data, --steps, --pairs)"
        args.side_by_side = side_by_side_args(forwarded, prog=prog)
    elif args.nanogpt_steps is not None or args.nanogpt_pairs is not None:
        parser.error("--nanogpt-steps and --nanogpt-pairs need --nanogpt DIR")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Both sides run with freed memory kept in the process, as under the minimod command.
    allocator = "glibc default" if args.default_allocator else "freed memory kept"
    if not args.default_allocator and not keep_freed_memory():
        allocator = "glibc default (keep_freed_memory had no effect here)"
    command = "python benchmarks/bench.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    machine = machine_info(args.device)
    n = 1024 if args.quick else (4096 if args.device.startswith("cuda") else 2048)
    peak = matmul_peak(args.device, n)
    rows, notes, compile_failures = [], [], {}
    for name in args.models:
        if name in ("generate", "smollm2", "attention", "workbook"):
            continue
        build = BUILDERS.get(name) or LAYER_BUILDERS[name]
        case = build(name, args)
        notes += case.notes
        rows.append(run_case(case, args, peak, compiled=False))
        if args.compile:
            try:
                rows.append(run_case(build(name, args), args, peak, compiled=True))
            except Exception as error:  # report it, time the other models all the same
                message = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
                compile_failures[name] = message
                print(f"    compile FAILED: {message}", file=sys.stderr)
    generation = run_generation(args) if "generate" in args.models else None
    llm = run_llm(args) if "smollm2" in args.models else None
    attention = run_attention(args) if "attention" in args.models else None
    workbook = run_workbook(args) if "workbook" in args.models else None
    end_to_end = run_end_to_end(args) if args.e2e else []
    nanogpt = side_by_side(args.side_by_side) if args.side_by_side else []

    lines = [
        "## minimod vs torch.nn: one training step (forward, backward, AdamW; layer rows: "
        "forward and backward)",
        "",
        f"`{command}`",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} CPUs, {machine['platform']}, "
        f"torch {machine['torch']}, {machine['threads']} threads, device {args.device}, "
        f"malloc: {allocator}"
        + (f" ({machine['gpu']})" if "gpu" in machine else "")
        + f". fp32 matmul peak ({n}x{n}): {si(peak, 'FLOP/s')}.",
        "",
    ]
    if rows:
        lines += [format_rows(rows, peak), ""]
        lines += [
            "- ratio: median over the timed pairs of (minimod step / torch.nn step), steps "
            "alternating A/B after warm-up; < 1 means minimod is faster. ms: medians.",
            "- Twin check: the torch.nn twin loads minimod's weights; the first losses agree "
            f"to |Δloss| <= {TOLERANCE} (passed for every row).",
            "- FLOP/s: transformers 6·N·tokens + 12·L·C·T·tokens (nanoGPT's estimate, N without "
            "position embeddings); % of the fp32 matmul peak above.",
            f"- mem: {memory_method(args.device)}.",
            f"- Both optimizers: AdamW {HYPER}; dropout 0 in every model.",
        ]
        lines += [f"- {note}" for note in dict.fromkeys(notes)]
        compiled = [r for r in rows if "minimod_compile_s" in r]
        if compiled:
            lines += [
                "- compile time (first compiled training step, forward and backward graphs; "
                "inductor's on-disk cache makes repeat runs faster than the first): "
                + "; ".join(
                    f"{r['model']}: minimod {r['minimod_compile_s']:.1f} s, "
                    f"torch {r['torch_compile_s']:.1f} s"
                    for r in compiled
                )
            ]
        lines += [
            f"- {name} (compiled): torch.compile FAILED, not timed ({message})"
            for name, message in compile_failures.items()
        ]
        lines.append("")
    if generation:
        lines += [
            "### KV-cache generation: GPT.generate(use_cache=True) vs use_cache=False",
            "",
            markdown_table(
                ["setup", "with cache", "without", "speed-up", "same tokens"],
                [
                    [
                        generation["setup"],
                        f"{generation['cache_s'] * 1e3:.0f} ms "
                        f"({generation['cache_tokens_per_s']:.0f} tok/s)",
                        f"{generation['no_cache_s'] * 1e3:.0f} ms "
                        f"({generation['no_cache_tokens_per_s']:.0f} tok/s)",
                        f"{generation['speedup']:.1f}x",
                        "yes" if generation["same_tokens"] else "no",
                    ]
                ],
            ),
            "",
            "block_size 512 so that all 257 positions fit (the baby config's 64 would make "
            "the cache slide and be dropped after 64 tokens).",
            "",
        ]
    if llm:
        lines += ["### SmolLM2-135M-Instruct: minimod vs transformers, same weights and threads",
                  "", *llm.get("lines", [llm.get("skipped", "")]), ""]  # fmt: skip
    if attention:
        lines += [attention["table"], ""]
    if workbook:
        lines += [workbook["table"], ""]
    if end_to_end:
        lines += format_end_to_end(end_to_end)
    if nanogpt:
        lines += [format_side_by_side(nanogpt, args.side_by_side), ""]
    result = dict(
        command=command,
        machine=machine,
        matmul_peak_flops=peak,
        memory=memory_method(args.device),
        rows=rows,
        generation=generation,
        smollm2=llm,
        attention_memory=attention["rows"] if attention else None,
        workbook=workbook["rows"] if workbook else None,
        end_to_end=end_to_end,
        nanogpt=nanogpt,
        test_fast=workbook["test_fast"] if workbook else None,
        notes=notes,
        compile_failures=compile_failures,
    )
    result["targets"] = targets(result)
    lines.append(format_targets(result["targets"], machine, args.quick))
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    for r in rows:
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
    return result


if __name__ == "__main__":
    main()
