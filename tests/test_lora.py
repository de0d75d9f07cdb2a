"""LoRA (minimod.nn.lora) against an independent formula written with
torch.nn.functional.linear and the twin torch.nn.Linear:

    y = x Wᵀ + b + (α/r) · (x Aᵀ) Bᵀ,        merged weight W + (α/r)·B·A.

Lesson 22's tests: LoRALinear, apply_lora, merge_lora, lora_state_dict and load_lora come from
``impl.lora``; the models are minimod's own GPT and BERT (so that, against the empty stubs, only
this lesson's code fails). The layers LoRA wraps are
minimod's own Linear, the class the models are built from (lesson 2 tests Linear itself).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import tolerance
from minimod.models.bert import BERT, BERTConfig
from minimod.models.gpt import GPT, GPTConfig
from minimod.nn import Linear
from minimod.nn.lora import LoRALinear, apply_lora, load_lora, lora_state_dict, merge_lora
from minimod.optim import AdamW
from strategies import batch_shapes, dtypes, seeds

GPT_SIZES = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
BERT_SIZES = dict(
    vocab_size=17,
    hidden_size=8,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=12,
    max_position_embeddings=8,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
INIT_HINT = "the wrapped model must start equal to the base: initialise B to zeros"
SCALING_HINT = "looks like you scaled the update by alpha; LoRA scales it by alpha / rank"
NO_SCALING_HINT = "the update is not scaled: multiply it by scaling = alpha / rank"
FREEZE_HINT = (
    "the base layer must be frozen (requires_grad False on its weight and bias): only the "
    "adapters A and B train"
)
MERGE_BIAS_HINT = "the merged Linear must keep the base layer's bias"

sides = st.integers(1, 6)
ranks = st.integers(1, 4)
alphas = st.sampled_from([1.0, 0.5, 3.0, 16.0])


def randn(shape, dtype, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def make_layer(in_f, out_f, bias, dtype, rank, alpha, seed, dropout=0.0):
    """(LoRALinear under test, its base, the base's torch.nn.Linear twin)."""
    torch.manual_seed(seed)
    twin = torch.nn.Linear(in_f, out_f, bias=bias, dtype=dtype)
    base = Linear(in_f, out_f, bias=bias, dtype=dtype)
    base.load_state_dict(twin.state_dict())
    return impl.lora.LoRALinear(base, rank=rank, alpha=alpha, dropout=dropout), base, twin


@torch.no_grad()
def randomise_B(layer, seed: int) -> None:
    """Give B non-zero values (as after training), so the update shows in the output."""
    layer.lora_B.copy_(randn(layer.lora_B.shape, layer.lora_B.dtype, seed))


def reference(x, twin, A, B, scaling):
    """The LoRA formula, independently: torch.nn.Linear plus two F.linear calls."""
    return twin(x) + scaling * TF.linear(TF.linear(x, A), B)


# -- hints for the classic mistakes -----------------------------------------------------------


def init_hint(layer) -> str | None:
    if not torch.equal(layer.lora_B.detach(), torch.zeros_like(layer.lora_B)):
        return INIT_HINT
    return None


def freeze_hint(layer) -> str | None:
    frozen = [p for p in (layer.base.weight, layer.base.bias) if p is not None]
    if any(p.requires_grad or p.grad is not None for p in frozen):
        return FREEZE_HINT
    return None


@torch.no_grad()
def scaling_hint(x, twin, A, B, rank, alpha, out, tol) -> str | None:
    """Which wrong scale ``out`` was computed with, if it matches one."""
    if torch.allclose(out, reference(x, twin, A, B, alpha / rank), **tol):
        return None
    if rank != 1 and torch.allclose(out, reference(x, twin, A, B, alpha), **tol):
        return SCALING_HINT
    if alpha != rank and torch.allclose(out, reference(x, twin, A, B, 1.0), **tol):
        return NO_SCALING_HINT
    return None


def assert_hint_free(hint: str | None) -> None:
    assert hint is None, hint


# -- one layer --------------------------------------------------------------------------------


@given(sides, sides, st.booleans(), dtypes, ranks, alphas, batch_shapes(), seeds)
@example(1, 1, True, torch.float32, 1, 1.0, (), 0)  # a single feature, unbatched
def test_a_new_layer_starts_equal_to_its_base(in_f, out_f, bias, dtype, rank, alpha, batch, seed):
    layer, base, twin = make_layer(in_f, out_f, bias, dtype, rank, alpha, seed)
    assert layer.base is base, "keep the base layer itself (a tied weight stays tied)"
    assert tuple(layer.lora_A.shape) == (rank, in_f), "lora_A is (rank, in_features)"
    assert tuple(layer.lora_B.shape) == (out_f, rank), "lora_B is (out_features, rank)"
    assert layer.lora_A.dtype == layer.lora_B.dtype == dtype, "adapters take the base's dtype"
    assert layer.scaling == pytest.approx(alpha / rank), (
        f"scaling is {layer.scaling}, expected alpha / rank = {alpha / rank}: scaling by alpha "
        "alone makes the update rank times too large"
    )
    assert_hint_free(init_hint(layer))
    assert_hint_free(freeze_hint(layer))
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad, "the adapters train"
    bound = 1 / math.sqrt(in_f) * (1 + 1e-6)  # (float32 rounding at the edge)
    assert layer.lora_A.abs().max() <= bound, "lora_A ~ U(-1/√in, 1/√in): kaiming_uniform_(a=√5)"
    x = randn((*batch, in_f), dtype, seed + 1)
    with torch.no_grad():
        out = layer(x)
        assert torch.equal(out, base(x)), INIT_HINT
        torch.testing.assert_close(out, twin(x), **tolerance(dtype))


def test_lora_A_is_initialised_like_peft():
    layer, _, _ = make_layer(400, 3, True, torch.float64, 64, 16.0, 0)
    twin = torch.empty(64, 400, dtype=torch.float64)
    torch.nn.init.kaiming_uniform_(twin, a=math.sqrt(5))  # what peft does
    a = layer.lora_A.detach()
    bound = twin.abs().max().item()
    assert a.abs().max() <= 1 / math.sqrt(400) and a.abs().max() > 0.95 * bound
    assert a.std().item() == pytest.approx(twin.std().item(), rel=0.05), "U(-1/√in, 1/√in)"
    assert a.mean().abs() < 0.003
    other, _, _ = make_layer(400, 3, True, torch.float64, 64, 16.0, 1)
    assert not torch.equal(a, other.lora_A.detach()), "A is random (a zero A never learns)"


@given(sides, sides, st.booleans(), dtypes, ranks, alphas, batch_shapes(), seeds)
@example(3, 2, True, torch.float64, 4, 16.0, (2,), 0)  # rank > in_features is allowed
def test_forward_and_gradients_match_the_formula(
    in_f, out_f, bias, dtype, rank, alpha, batch, seed
):
    layer, _, twin = make_layer(in_f, out_f, bias, dtype, rank, alpha, seed)
    randomise_B(layer, seed + 1)
    x = randn((*batch, in_f), dtype, seed + 2).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    A = layer.lora_A.detach().clone().requires_grad_(True)
    B = layer.lora_B.detach().clone().requires_grad_(True)
    out = layer(x)
    expected = reference(x_ref, twin, A, B, alpha / rank)
    tol = tolerance(dtype, 10)
    assert_hint_free(scaling_hint(x_ref, twin, A, B, rank, alpha, out.detach(), tol))
    torch.testing.assert_close(out, expected, **tol)
    grad = randn(out.shape, dtype, seed + 3)
    out.backward(grad)
    expected.backward(grad)
    assert_hint_free(freeze_hint(layer))
    torch.testing.assert_close(x.grad, x_ref.grad, **tol)
    torch.testing.assert_close(layer.lora_A.grad, A.grad, **tol, msg="gradient of lora_A")
    torch.testing.assert_close(layer.lora_B.grad, B.grad, **tol, msg="gradient of lora_B")


def test_dropout_applies_to_the_update_only():
    """With one input feature, dropout either drops a row's update entirely or scales it by
    1/(1-p); the base output is never dropped. In eval mode there is no dropout."""
    p, n = 0.5, 200
    layer, _, twin = make_layer(1, 3, True, torch.float64, 2, 4.0, 0, dropout=p)
    randomise_B(layer, 1)
    x = randn((n, 1), torch.float64, 2)
    A, B = layer.lora_A.detach(), layer.lora_B.detach()
    with torch.no_grad():
        full_update = 2.0 * TF.linear(TF.linear(x, A), B)
        update = layer.train()(x) - twin(x)
        kept = torch.isclose(update, full_update / (1 - p), rtol=1e-9, atol=1e-12).all(-1)
        dropped = torch.isclose(update, torch.zeros_like(update), atol=1e-12).all(-1)
        assert (kept | dropped).all(), "dropout is applied to the adapter's input x only"
        assert kept.any() and dropped.any(), "in training mode dropout drops some rows"
        torch.testing.assert_close(layer.eval()(x), twin(x) + full_update, rtol=1e-9, atol=1e-12)


@given(sides, sides, st.booleans(), dtypes, ranks, alphas, batch_shapes(max_dims=2), seeds)
def test_merged_is_a_linear_with_the_update_folded_in(
    in_f, out_f, bias, dtype, rank, alpha, batch, seed
):
    layer, base, _ = make_layer(in_f, out_f, bias, dtype, rank, alpha, seed)
    randomise_B(layer, seed + 1)
    merged = layer.merged()
    W, A, B = base.weight.detach(), layer.lora_A.detach(), layer.lora_B.detach()
    expected = (W.double() + alpha / rank * (B.double() @ A.double())).to(dtype)
    twin = torch.nn.Linear(in_f, out_f, bias=bias, dtype=dtype)
    assert sorted(merged.state_dict()) == sorted(twin.state_dict()), MERGE_BIAS_HINT
    if any(t.is_meta for t in merged.state_dict().values()):
        raise AssertionError(
            f"{MERGE_BIAS_HINT}: merged() left a tensor on the meta device (no data); assign "
            "the weight AND the bias as new Parameters"
        )
    twin.load_state_dict(merged.state_dict())  # a plain Linear: loads into torch.nn.Linear
    tol = tolerance(dtype, 10)
    with torch.no_grad():
        if not torch.allclose(twin.weight, expected, **tol):
            for wrong, hint in ((alpha, SCALING_HINT), (1.0, NO_SCALING_HINT)):
                if torch.allclose(twin.weight, (W + wrong * B @ A), **tol):
                    pytest.fail(f"merged weight: {hint}")
        torch.testing.assert_close(twin.weight, expected, **tol, msg="weight W + (α/r)·B·A")
        if bias:
            torch.testing.assert_close(
                twin.bias, base.bias.detach(), rtol=0, atol=0, msg=MERGE_BIAS_HINT
            )
        x = randn((*batch, in_f), dtype, seed + 2)
        torch.testing.assert_close(twin(x), layer(x), **tol)
        merged.weight.add_(1.0)  # the merged layer is independent of the LoRA layer
    assert torch.equal(base.weight.detach(), W), "merged() must not change the base weight"


# -- whole models -----------------------------------------------------------------------------


def tiny_gpt(seed: int = 0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**GPT_SIZES))


def tokens(shape, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, GPT_SIZES["vocab_size"], shape, generator=generator)


def train_adapters(model, steps: int = 3) -> None:
    """A few AdamW steps on whatever requires grad, so that B ≠ 0."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=0.05, weight_decay=0.0)
    for step in range(steps):
        idx = tokens((2, 6), step)
        _, loss = model(idx[:, :-1], idx[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def block_names(pattern: str) -> list[str]:
    return [pattern.format(i) for i in range(GPT_SIZES["n_layer"])]


def test_apply_lora_wraps_exactly_the_targeted_layers_and_freezes_the_rest():
    model, original = tiny_gpt(), tiny_gpt()
    idx = tokens((2, 5), 1)
    with torch.no_grad():
        before = model(idx)[0]
    linears = dict(model.named_modules())
    wrapped = impl.lora.apply_lora(model, targets=("*.c_attn", "*.mlp.c_proj"), rank=3, alpha=6)
    expected = block_names("transformer.h.{}.attn.c_attn") + block_names(
        "transformer.h.{}.mlp.c_proj"
    )
    assert sorted(wrapped) == sorted(expected)
    modules = dict(model.named_modules())
    for name, module in modules.items():
        is_lora = isinstance(module, impl.lora.LoRALinear)
        assert is_lora == (name in expected), f"{name}: wrapped only if a target matches"
        if is_lora:
            assert module.base is linears[name], f"{name}: the original Linear becomes the base"
            assert_hint_free(init_hint(module))
            assert_hint_free(freeze_hint(module))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{name}.lora_{k}" for name in expected for k in "AB"}, (
        "every parameter except the adapters is frozen"
    )
    shapes = dict(original.named_modules())
    counted = sum(3 * (shapes[n].in_features + shapes[n].out_features) for n in expected)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == counted, "r·(in+out)"
    assert model.lm_head.weight is model.transformer.wte.weight, "the tied weight stays tied"
    logits, loss = model(idx, idx)
    assert torch.equal(logits.detach(), before), INIT_HINT
    loss.backward()
    for name, param in model.named_parameters():
        if name.endswith("lora_A"):  # B = 0, so A's gradient (α/r)·(g B)ᵀ x is exactly zero
            assert param.grad is not None and not param.grad.any(), name
        elif name.endswith("lora_B"):
            assert param.grad is not None and param.grad.any(), f"{name} gets a gradient"
        else:
            assert param.grad is None, f"{name} is frozen: it gets no gradient"


def test_apply_lora_to_a_tied_layer_keeps_the_tie():
    model = tiny_gpt()
    idx = tokens((2, 5), 1)
    with torch.no_grad():
        before = model(idx)[0]
    assert impl.lora.apply_lora(model, "lm_head", rank=2) == ["lm_head"]
    assert model.lm_head.base.weight is model.transformer.wte.weight
    assert not model.transformer.wte.weight.requires_grad
    train_adapters(model)
    assert model.lm_head.base.weight is model.transformer.wte.weight
    with torch.no_grad():
        assert not torch.equal(model(idx)[0], before), "the adapters trained"


def test_apply_lora_on_bert_attention():
    torch.manual_seed(0)
    model = BERT(BERTConfig(**BERT_SIZES)).eval()
    idx = torch.randint(0, BERT_SIZES["vocab_size"], (2, 5))
    with torch.no_grad():
        before = model(idx)[0]
    targets = ["*attn.query", "*attn.value"]
    wrapped = impl.lora.apply_lora(model, targets, rank=2)
    layers = range(BERT_SIZES["num_hidden_layers"])
    assert wrapped == [
        f"encoder.layer.{i}.attn.{kind}" for i in layers for kind in ("query", "value")
    ]
    with torch.no_grad():
        assert torch.equal(model(idx)[0], before), INIT_HINT
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == [f"{name}.lora_{k}" for name in wrapped for k in "AB"]


def test_merged_model_equals_the_trained_lora_model():
    model, fresh = tiny_gpt(), tiny_gpt(seed=5)
    targets = ("*.c_attn", "*.c_fc")
    wrapped = impl.lora.apply_lora(model, targets, rank=2, alpha=4.0)
    train_adapters(model)
    assert all(module.lora_B.any() for module in model.modules() if hasattr(module, "lora_B"))
    idx = tokens((3, 7), 9)
    with torch.no_grad():
        trained = model(idx)[0]
        assert impl.lora.merge_lora(model) == wrapped
        # float32: the merged weight rounds differently from the two-step product
        torch.testing.assert_close(model(idx)[0], trained, rtol=1e-5, atol=1e-6)
    assert not any(isinstance(m, impl.lora.LoRALinear) for m in model.modules())
    layout = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert layout == {key: tuple(value.shape) for key, value in fresh.state_dict().items()}, (
        "after merging, the state_dict has the original model's keys and shapes"
    )
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(idx)[0], trained, rtol=1e-5, atol=1e-6)


def test_lora_state_dict_is_small_and_round_trips():
    model = tiny_gpt()
    pretrained = {key: value.clone() for key, value in model.state_dict().items()}
    targets = ["*.c_attn"]
    wrapped = impl.lora.apply_lora(model, targets, rank=2)
    model.transformer.ln_f.requires_grad_(True)  # unfrozen after apply_lora: it trains too
    train_adapters(model)
    assert not torch.equal(
        model.transformer.ln_f.weight.detach(), pretrained["transformer.ln_f.weight"]
    )
    saved = {
        key: value.clone()
        for key, value in impl.lora.lora_state_dict(model, extra=["transformer.ln_f.*"]).items()
    }
    adapters = [f"{name}.lora_{k}" for name in wrapped for k in "AB"]
    assert sorted(saved) == sorted(adapters + ["transformer.ln_f.weight", "transformer.ln_f.bias"])
    assert sorted(impl.lora.lora_state_dict(model)) == sorted(adapters)
    full = sum(value.numel() for value in model.state_dict().values())
    assert sum(value.numel() for value in saved.values()) < full / 10, "a LoRA checkpoint is small"
    restored = tiny_gpt(seed=7)
    restored.load_state_dict(pretrained)
    impl.lora.apply_lora(restored, targets, rank=2)
    impl.lora.load_lora(restored, saved)
    idx = tokens((2, 6), 3)
    with torch.no_grad():
        assert torch.equal(restored(idx)[0], model(idx)[0])


# -- minimod's own behaviour: errors, repr, hints ---------------------------------------------


@pytest.mark.reference_only
def test_bad_arguments_fail_clearly():
    base = Linear(4, 3)
    with pytest.raises(TypeError, match="LoRALinear: base must be a Linear layer, got Linear"):
        LoRALinear(torch.nn.Linear(4, 3))
    for rank in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"LoRALinear: rank must be an integer ≥ 1"):
            LoRALinear(base, rank=rank)
    with pytest.raises(ValueError, match="alpha must be a number > 0"):
        LoRALinear(base, alpha=0.0)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\)"):
        LoRALinear(base, dropout=1.0)
    with pytest.raises(ValueError, match=r"LoRALinear\(in_features=4, .*last dimension 4"):
        LoRALinear(base)(torch.ones(2, 5))
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"apply_lora: no Linear layer matches '\*\.query'"):
        apply_lora(model, ["*.c_attn", "*.query"])
    with pytest.raises(ValueError, match=r"Linear layers are: transformer\.h\.0\.attn\.c_attn, "):
        apply_lora(model, "attn")  # names are full dotted names: "*attn*" would match
    assert all(p.requires_grad for p in model.parameters()), "a failed call changes nothing"
    with pytest.raises(TypeError, match="the model is itself a Linear"):
        apply_lora(base)
    with pytest.raises(TypeError, match="targets must be name patterns"):
        apply_lora(model, [1])
    with pytest.raises(ValueError, match="apply_lora: rank must be"):
        apply_lora(model, rank=0)


@pytest.mark.reference_only
def test_applying_twice_never_wraps_a_base_and_keeps_earlier_adapters_trainable():
    model = tiny_gpt()
    first = apply_lora(model, "*.c_attn", rank=2)
    second = apply_lora(model, "*", rank=2)
    assert not set(first) & set(second) and "lm_head" in second
    assert not any(isinstance(m.base, LoRALinear) for m in model.modules() if hasattr(m, "base"))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{name}.lora_{k}" for name in first + second for k in "AB"}


@pytest.mark.reference_only
def test_merging_a_tied_weight_is_refused():
    model = tiny_gpt()
    apply_lora(model, ["lm_head", "*.c_fc"])
    with pytest.raises(ValueError, match="lm_head's weight is tied to transformer.wte.weight"):
        merge_lora(model)
    assert isinstance(model.transformer.h[0].mlp.c_fc, LoRALinear), "nothing merged"
    with pytest.raises(TypeError, match=r"use model\.merged\(\)"):
        merge_lora(LoRALinear(Linear(2, 2)))


@pytest.mark.reference_only
def test_load_lora_reports_every_key_that_does_not_fit():
    model = tiny_gpt()
    apply_lora(model, "*.c_attn", rank=2)
    saved = {key: value.clone() + 1 for key, value in lora_state_dict(model).items()}
    other = tiny_gpt()
    apply_lora(other, "*.c_attn", rank=3)
    with pytest.raises(ValueError, match=r"shape mismatches \(4\).*saved \(2, 8\), model \(3, 8\)"):
        load_lora(other, saved)
    other = tiny_gpt()
    apply_lora(other, ["*.c_attn", "*.c_fc"], rank=2)
    before = {key: value.clone() for key, value in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"adapters missing from the state_dict \(4\): transfo"):
        load_lora(other, saved)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items()), "no copy"
    with pytest.raises(ValueError, match=r"keys the model does not have \(1\): head\.weight"):
        load_lora(model, {**saved, "head.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="apply_lora with the same targets and rank"):
        load_lora(tiny_gpt(), saved)
    with pytest.raises(ValueError, match=r"lora_state_dict: no state_dict key matches 'head\.\*'"):
        lora_state_dict(model, extra="head.*")


@pytest.mark.reference_only
def test_repr_and_merged_flags():
    layer = LoRALinear(Linear(4, 3, bias=False), rank=2, alpha=8)
    assert repr(layer).splitlines()[:3] == [
        "LoRALinear(",
        "  in_features=4, out_features=3, rank=2, alpha=8.0",
        "  (base): Linear(in_features=4, out_features=3, bias=False)",
    ]
    merged = layer.merged()
    assert type(merged) is Linear and merged.bias is None
    assert not merged.weight.requires_grad, "requires_grad is copied from the (frozen) base"
    state = torch.random.get_rng_state()
    layer.merged()
    assert torch.equal(torch.random.get_rng_state(), state), "merging draws no random numbers"


class _RandomB(LoRALinear):
    def reset_lora_parameters(self):
        super().reset_lora_parameters()
        torch.nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))


class _AlphaScaled(LoRALinear):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scaling = self.alpha


class _Unscaled(LoRALinear):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scaling = 1.0


class _Unfrozen(LoRALinear):
    def __init__(self, base, *args, **kwargs):
        super().__init__(base, *args, **kwargs)
        base.requires_grad_(True)


@pytest.mark.reference_only
def test_hints_fire_on_wrong_implementations():
    torch.manual_seed(0)
    twin = torch.nn.Linear(4, 3, dtype=torch.float64)

    def wrapped(cls):
        base = Linear(4, 3, dtype=torch.float64)
        base.load_state_dict(twin.state_dict())
        layer = cls(base, rank=2, alpha=6.0)
        randomise_B(layer, 1)
        return layer

    assert init_hint(_RandomB(Linear(4, 3), rank=2)) == INIT_HINT
    assert init_hint(LoRALinear(Linear(4, 3), rank=2)) is None
    assert freeze_hint(_Unfrozen(Linear(4, 3))) == FREEZE_HINT
    assert freeze_hint(LoRALinear(Linear(4, 3))) is None
    x = randn((5, 4), torch.float64, 2)
    tol = tolerance(torch.float64)
    for cls, hint in (
        (_AlphaScaled, SCALING_HINT),
        (_Unscaled, NO_SCALING_HINT),
        (LoRALinear, None),
    ):
        layer = wrapped(cls)
        A, B = layer.lora_A.detach(), layer.lora_B.detach()
        with torch.no_grad():
            assert scaling_hint(x, twin, A, B, 2, 6.0, layer(x), tol) == hint, cls.__name__
    with pytest.raises(AssertionError, match="initialise B to zeros"):
        assert_hint_free(init_hint(_RandomB(Linear(4, 3))))
