"""Lesson 25: activation checkpointing (minimod.nn.recompute).

Recomputing a block in the backward pass must give exactly the gradients of the plain block
(same operations, same order, same dropout masks), while keeping far fewer tensors alive.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from minimod.models.bert import BERTConfig, BERTForMaskedLM
from minimod.models.cnn import ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig


def tiny_gpt(dropout: float = 0.1, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=dropout)
    )


def saved_bytes(run) -> int:
    """Bytes of every tensor autograd saves for the backward pass while ``run()`` records."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = run()
    loss.backward()
    return total


def grads(module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def hint_for(plain, recomputed) -> str:
    if all(torch.equal(a, torch.zeros_like(a)) for a in recomputed):
        return (
            "the block's parameters got no gradient: backward must recompute under "
            "torch.enable_grad() (it runs with gradients off) and run autograd.backward on the "
            "recomputed outputs"
        )
    return (
        "gradients differ from the plain block's: restore the forward's random state before "
        "recomputing (dropout must drop the same elements)"
    )


class _ForgetsTheRandomState(torch.autograd.Function):
    """A deliberately wrong Recompute: it recomputes without restoring the RNG."""

    @staticmethod
    def forward(ctx, function, x):
        ctx.function = function
        ctx.save_for_backward(x)
        with torch.no_grad():
            return function(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            torch.autograd.backward(ctx.function(x), grad)
        return None, x.grad


@pytest.mark.reference_only
def test_the_random_state_hint_fires_on_a_wrong_recompute():
    model = tiny_gpt(0.5)
    block, twin = model.transformer.h[0], copy.deepcopy(model.transformer.h[0])
    x = torch.randn(3, 8, 16, requires_grad=True)
    torch.manual_seed(0)
    block(x).sum().backward()
    torch.manual_seed(0)
    _ForgetsTheRandomState.apply(twin, x.detach().requires_grad_()).sum().backward()
    plain, recomputed = grads(block), grads(twin)
    assert not all(torch.allclose(a, b) for a, b in zip(plain, recomputed, strict=True))
    assert "random state" in hint_for(plain, recomputed)


@pytest.mark.slow
@given(seed=st.integers(0, 2**16), dropout=st.sampled_from([0.0, 0.2]))
def test_checkpointed_block_gives_the_same_gradients(seed, dropout):
    model = tiny_gpt(dropout)
    block, twin = model.transformer.h[0], copy.deepcopy(model.transformer.h[0])
    block.train(), twin.train()
    x = torch.randn(3, 8, 16, generator=torch.Generator().manual_seed(seed))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(seed)
    (block(x1) ** 2).sum().backward()
    torch.manual_seed(seed)
    out = impl.recompute.checkpoint(twin, x2)
    (out**2).sum().backward()
    plain, recomputed = (
        grads(block),
        [p.grad if p.grad is not None else torch.zeros_like(p) for p in twin.parameters()],
    )
    for a, b in zip(plain, recomputed, strict=True):
        torch.testing.assert_close(
            b, a, rtol=1e-6, atol=1e-7, msg=lambda m: hint_for(plain, recomputed) + "\n" + m
        )
    torch.testing.assert_close(
        x2.grad,
        x1.grad,
        rtol=1e-6,
        atol=1e-7,
        msg="the input's gradient differs: return the .grad of the detached INPUTS the block was "
        "recomputed from, not of its outputs (they are not leaves)",
    )


def test_checkpoint_keeps_far_fewer_tensors():
    model, twin = tiny_gpt(0.0), tiny_gpt(0.0)
    x = torch.randn(4, 8, 16)

    def plain():
        h = x.clone().requires_grad_()
        for block in model.transformer.h:
            h = block(h)
        return h.square().mean()

    def recomputed():
        h = x.clone().requires_grad_()
        for block in twin.transformer.h:
            h = impl.recompute.checkpoint(block, h)
        return h.square().mean()

    full, small = saved_bytes(plain), saved_bytes(recomputed)
    assert small < full / 4, f"checkpointing saved {small} bytes, the plain blocks {full}"


def test_parameters_get_gradients_when_the_input_needs_none():
    """A frozen layer below: the block's input does not require grad, its parameters do."""
    block = tiny_gpt(0.0).transformer.h[0]
    x = torch.randn(2, 8, 16)  # requires_grad False
    impl.recompute.checkpoint(block, x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters()), (
        "no parameter gradients when the input needs none: autograd only calls a Function's "
        "backward if one of its inputs requires grad (the dummy tensor)"
    )


def test_non_tensor_arguments_and_masks_pass_through():
    config = BERTConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    layer = BERTForMaskedLM(config).bert.encoder.layer[0]
    twin = copy.deepcopy(layer)
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()[:, None, None, :]
    for m in (mask, None):
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        layer.zero_grad(), twin.zero_grad()
        layer(x1, m).sum().backward()
        impl.recompute.checkpoint(twin, x2, m).sum().backward()
        torch.testing.assert_close(x2.grad, x1.grad)
        for a, b in zip(layer.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(b.grad, a.grad)


def test_gradcheck_through_a_recomputed_function():
    weight = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(
        lambda a, w: impl.recompute.checkpoint(lambda u, v: torch.tanh(u @ v), a, w), (x, weight)
    )


@pytest.mark.reference_only
def test_without_gradients_it_just_calls_the_function():
    calls = []

    def function(x):
        calls.append(torch.is_grad_enabled())
        return x * 2

    with torch.no_grad():
        out = impl.recompute.checkpoint(function, torch.ones(2, requires_grad=True))
    assert calls == [False] and not out.requires_grad


# -- models, the Trainer and the command line (minimod's own wiring) ----------------------------
def bert_with_padding() -> tuple[BERTForMaskedLM, torch.Tensor, torch.Tensor]:
    config = BERTConfig(
        vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    torch.manual_seed(0)
    ids = torch.randint(5, 30, (2, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    return BERTForMaskedLM(config), ids, mask


@pytest.mark.reference_only
def test_checkpointed_gpt_and_bert_give_identical_gradients_and_keep_less():
    from minimod.nn.recompute import enable_checkpointing

    gpt, twin = tiny_gpt(0.1), tiny_gpt(0.1)
    keys, text = list(twin.state_dict()), repr(twin)
    enable_checkpointing(twin.transformer.h)
    assert list(twin.state_dict()) == keys and repr(twin) == text, "keys and repr must not change"
    idx = torch.randint(0, 17, (3, 8), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    full = saved_bytes(lambda: gpt(idx, idx)[1])
    torch.manual_seed(5)
    small = saved_bytes(lambda: twin(idx, idx)[1])
    for a, b in zip(gpt.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0)
    assert small < full / 3, (small, full)

    bert, ids, mask = bert_with_padding()
    bert_twin = copy.deepcopy(bert)
    enable_checkpointing(bert_twin.bert.encoder.layer)
    for model in (bert, bert_twin):
        torch.manual_seed(3)  # dropout on: the recomputed layers must draw the same masks
        model(ids, mask, None, ids)[1].backward()
    for a, b in zip(bert.parameters(), bert_twin.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0)


@pytest.mark.reference_only
def test_enable_checkpointing_switches_off_again_and_never_nests():
    from minimod.nn.recompute import enable_checkpointing

    model = tiny_gpt(0.0)
    blocks = model.transformer.h
    enable_checkpointing(blocks)
    enable_checkpointing(blocks)  # twice: still one checkpoint per block
    idx = torch.randint(0, 17, (2, 8), generator=torch.Generator().manual_seed(0))
    with_blocks = saved_bytes(lambda: model(idx, idx)[1])
    with pytest.raises(TypeError, match="takes positional arguments only"):
        blocks[0](torch.randn(2, 8, 16), cache=None)
    enable_checkpointing(blocks, enabled=False)
    assert all("forward" not in block.__dict__ for block in blocks), "the plain forward is back"
    assert saved_bytes(lambda: model(idx, idx)[1]) > 3 * with_blocks
    model.eval()  # evaluation and generation run the plain forward
    enable_checkpointing(blocks)
    plain = tiny_gpt(0.0).eval()
    assert torch.equal(model.generate(idx[:, :2], 4, 0.0), plain.generate(idx[:, :2], 4, 0.0))


@pytest.mark.reference_only
def test_enable_checkpointing_needs_blocks():
    from minimod.nn.recompute import enable_checkpointing

    with pytest.raises(ValueError, match="no blocks given"):
        enable_checkpointing([])
    with pytest.raises(TypeError, match="expected the model's blocks"):
        enable_checkpointing([torch.zeros(2)])
    resnet = ResNet(ResNetConfig(in_channels=1, num_classes=2, widths=(4,), depths=(1,)))
    enable_checkpointing([resnet])  # any module can be recomputed as a whole
    resnet(torch.randn(2, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in resnet.parameters())


@pytest.mark.reference_only
def test_trainer_with_checkpointed_blocks_trains_identically():
    from minimod.nn.recompute import enable_checkpointing
    from minimod.optim import AdamW
    from minimod.train import TrainConfig, Trainer

    idx = torch.randint(0, 17, (4, 8), generator=torch.Generator().manual_seed(0))
    results = []
    for flag in (False, True):
        model = tiny_gpt(0.1, seed=1)
        enable_checkpointing(model.transformer.h, enabled=flag)
        trainer = Trainer(
            model,
            AdamW(model.parameters(), lr=1e-2),
            lambda i: (idx, idx),
            TrainConfig(max_steps=3, progress=False),
        )
        trainer.fit()
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.reference_only
def test_pretrain_records_checkpointing_and_resumes_with_or_without(tmp_path):
    """--checkpoint-activations is the task layer's: run.json's settings record it, and a run
    may switch it on or off when it resumes (the weights come out the same)."""
    from minimod.tasks.pretrain import pretrain
    from minimod.tasks.run import read_run
    from minimod.train.checkpoint import load_checkpoint

    def run(out, steps, resume=False, checkpoint_activations=False):
        return pretrain(
            "gpt", "tiny", out=tmp_path / out, device="cpu", max_steps=steps, resume=resume,
            checkpoint_activations=checkpoint_activations, progress=False, log=lambda line: None,
        )  # fmt: skip

    run("plain", 2)
    run("plain", 4, resume=True)
    run("switched", 2, checkpoint_activations=True)
    assert read_run(tmp_path / "switched")["settings"]["checkpoint_activations"] is True
    run("switched", 4, resume=True)
    assert read_run(tmp_path / "switched")["settings"]["checkpoint_activations"] is False
    straight = load_checkpoint(tmp_path / "plain" / "last.pt")["model"]
    switched = load_checkpoint(tmp_path / "switched" / "last.pt")["model"]
    for key, value in straight.items():
        torch.testing.assert_close(switched[key], value, rtol=0, atol=0, msg=key)
