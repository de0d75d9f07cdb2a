"""minimod.models.gpt: config checks, parameter count, weight tying, initialisation, forward and
loss, causality, a training smoke test; minimod.models.generation: sampling and generation (with
and without the KV cache).

The loss is compared with torch.nn.functional.cross_entropy; sampling with hand-made
distributions whose nucleus / top-k sets are known. Cached vs uncached generation is compared in
float64 under one torch.Generator seed, on weights large enough that the next-token
distributions are peaked (a wrong cache then changes the tokens, not just their last digits).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import impl
from benchmarks.twins import TwinGPT
from minimod.nn import Parameter
from minimod.optim import AdamW
from strategies import seeds

BABY = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False)
SMALL = dict(vocab_size=23, block_size=8, n_layer=2, n_head=2, n_embd=16)
CAUSAL_HINT = (
    "a logit at position t changed when only tokens after t changed: the causal mask must "
    "hide keys j > i from query i"
)
TWIN_HINT = (
    "GPT's logits differ from its torch twin's (benchmarks/twins.py, the same weights): each "
    "block is pre-LN with a residual stream, x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))"
)
CHUNK_HINT = (
    "a chunk of tokens run through the KV cache after a prefix differs from the full pass at "
    "those positions: the chunk's positions start at past, and its causal mask needs "
    "offset=past (query i sees keys 0 … past + i)"
)
PROJ_SCALE_HINT = (
    "the projections that write into the residual stream (attn.c_proj, mlp.c_proj) start with "
    "std 0.02/√(2·n_layer): each block adds two of them to the residual stream"
)


def ids(shape, vocab_size: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def sharpen(model, seed: int, scale: float = 0.3):
    """Add N(0, scale²) noise to every parameter: peaked, position-dependent predictions."""
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)
    return model


@functools.cache
def small_model(dtype: torch.dtype = torch.float64):
    torch.manual_seed(1)
    return sharpen(impl.gpt.GPT(impl.gpt.GPTConfig(**SMALL)).to(dtype).eval(), seed=1)


# ------------------------------------------------------------------------------- config


@pytest.mark.reference_only
@pytest.mark.parametrize("name", ["vocab_size", "block_size", "n_layer", "n_head", "n_embd"])
@pytest.mark.parametrize("value", [0, -1])
def test_config_rejects_non_positive_sizes(name, value):
    with pytest.raises(ValueError, match=name):
        impl.gpt.GPTConfig(**{**SMALL, name: value})


@pytest.mark.reference_only
def test_config_requires_n_embd_divisible_by_n_head():
    with pytest.raises(ValueError, match="n_head"):
        impl.gpt.GPTConfig(**{**SMALL, "n_embd": 18, "n_head": 4})
    impl.gpt.GPTConfig(**{**SMALL, "n_embd": 20, "n_head": 4})  # divisible: fine


@pytest.mark.reference_only
@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_config_rejects_dropout_outside_0_1(dropout):
    with pytest.raises(ValueError, match="dropout"):
        impl.gpt.GPTConfig(**{**SMALL, "dropout": dropout})


@pytest.mark.reference_only
def test_config_accepts_dropout_in_range():
    for dropout in (0.0, 0.5, 0.99):
        impl.gpt.GPTConfig(**{**SMALL, "dropout": dropout})


# ------------------------------------------------------------------------------- parameters


def expected_parameter_count(vocab_size, block_size, n_layer, n_head, n_embd, bias) -> int:
    """From the architecture: tied token embedding / LM head, per block two LayerNorms, the
    q/k/v and output projections (4 C²) and the MLP (C -> 4C -> C: 8 C²), a final LayerNorm.
    Position embeddings excluded (nanoGPT's count)."""
    c = n_embd
    layer_norm = c + (c if bias else 0)
    attention = 3 * c * c + c * c + ((3 * c + c) if bias else 0)
    mlp = 4 * c * c + 4 * c * c + ((4 * c + c) if bias else 0)
    block = 2 * layer_norm + attention + mlp
    return vocab_size * c + n_layer * block + layer_norm


@pytest.mark.parametrize("bias", [False, True])
def test_num_parameters_follows_the_architecture(bias):
    config = {**BABY, "bias": bias}
    model = impl.gpt.GPT(impl.gpt.GPTConfig(**config))
    expected = expected_parameter_count(**config)
    if not bias:
        assert expected == 795_904  # nanoGPT's "number of parameters: 0.80M" for this config
    got = model.num_parameters()
    assert got == expected, (
        f"num_parameters() = {got}, expected {expected}"
        + (
            " -- the position embeddings are excluded by default (non_embedding=True)"
            if got == expected + BABY["block_size"] * BABY["n_embd"]
            else ""
        )
        + (
            " -- the tied weight counts once (lm_head.weight must BE transformer.wte.weight, "
            "not a copy)"
            if got == expected + BABY["vocab_size"] * BABY["n_embd"]
            else ""
        )
    )
    with_positions = expected + BABY["block_size"] * BABY["n_embd"]
    assert model.num_parameters(non_embedding=False) == with_positions
    assert sum(p.numel() for p in model.parameters()) == with_positions


def test_lm_head_is_tied_to_the_token_embedding():
    model = impl.gpt.GPT(impl.gpt.GPTConfig(**SMALL))
    wte, head = model.transformer.wte.weight, model.lm_head.weight
    assert head is wte, "lm_head.weight must BE transformer.wte.weight (one Parameter)"
    assert sum(p is wte for p in model.parameters()) == 1, "a shared parameter is listed once"
    names = [name for name, _ in model.named_parameters()]
    assert len(names) == len(set(names))
    state = model.state_dict()
    assert "lm_head.weight" in state and "transformer.wte.weight" in state
    assert torch.equal(state["lm_head.weight"], state["transformer.wte.weight"])


def test_tied_weight_gets_the_gradient_of_both_uses():
    """grad(tied) == grad(embedding use) + grad(output use), both non-zero."""
    torch.manual_seed(2)
    model = sharpen(impl.gpt.GPT(impl.gpt.GPTConfig(**SMALL)).double(), seed=2, scale=0.1)
    x, y = ids((2, 8), SMALL["vocab_size"], 3), ids((2, 8), SMALL["vocab_size"], 4)
    model(x, targets=y)[1].backward()
    tied = model.lm_head.weight.grad.clone()
    model.zero_grad()
    model.lm_head.weight = Parameter(model.transformer.wte.weight.detach().clone())  # untie
    model(x, targets=y)[1].backward()
    as_input, as_output = model.transformer.wte.weight.grad, model.lm_head.weight.grad
    assert as_input.abs().sum() > 0 and as_output.abs().sum() > 0
    torch.testing.assert_close(
        tied,
        as_input + as_output,
        rtol=1e-9,
        atol=1e-12,
        msg=lambda m: f"the tied weight's gradient must add up both uses\n{m}",
    )


def test_initialisation():
    torch.manual_seed(3)
    n_layer = 4
    model = impl.gpt.GPT(
        impl.gpt.GPTConfig(vocab_size=512, block_size=64, n_layer=n_layer, n_head=4, n_embd=128)
    )
    residual_std = 0.02 / math.sqrt(2 * n_layer)
    for name, param in model.named_parameters():
        values = param.detach()
        if name.endswith("c_proj.weight"):
            std = values.std().item()
            assert abs(std - residual_std) < 0.05 * residual_std, (
                f"{name}: std {std:.5f}, expected {residual_std:.5f}. " + PROJ_SCALE_HINT
            )
        elif name.endswith(".weight") and ("ln_" in name):
            assert torch.equal(values, torch.ones_like(values)), f"{name} must start at 1"
        elif name.endswith(".weight"):  # Linear and Embedding weights
            std = values.std().item()
            assert abs(std - 0.02) < 0.05 * 0.02, f"{name}: std {std:.5f}, expected 0.02"
            assert abs(values.mean().item()) < 0.002, f"{name}: mean should be 0"
        else:
            assert name.endswith(".bias"), name
            assert torch.equal(values, torch.zeros_like(values)), f"{name} must start at 0"


# ------------------------------------------------------------------------------- forward


def test_forward_shapes_and_loss_match_cross_entropy():
    model = small_model()
    x = ids((3, 7), SMALL["vocab_size"], 5)
    y = ids((3, 7), SMALL["vocab_size"], 6)
    logits, loss = model(x, targets=y)
    assert logits.shape == (3, 7, SMALL["vocab_size"])
    expected = TF.cross_entropy(logits.reshape(-1, SMALL["vocab_size"]), y.reshape(-1))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    logits_only, no_loss = model(x)
    assert no_loss is None
    torch.testing.assert_close(logits_only, logits, rtol=0, atol=0)


def test_loss_ignores_targets_of_minus_one():
    model = small_model()
    x = ids((2, 8), SMALL["vocab_size"], 7)
    y = ids((2, 8), SMALL["vocab_size"], 8)
    y[0, :3] = -1
    y[1, 5] = -1
    logits, loss = model(x, targets=y)
    kept = y != -1
    expected = TF.cross_entropy(logits[kept], y[kept])
    including = TF.cross_entropy(logits[kept], y[kept], reduction="sum") / y.numel()
    assert not math.isclose(loss.item(), including.item(), rel_tol=1e-9), (
        "the mean must be over the positions that are NOT ignored (divide by their count, "
        "not by B·T)"
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


@given(
    batch=st.integers(1, 3),
    length=st.integers(1, SMALL["block_size"]),
    cut=st.integers(0, SMALL["block_size"] - 1),
    seed=seeds,
)
def test_logits_do_not_see_the_future(batch, length, cut, seed):
    cut = min(cut, length - 1)  # keep positions 0..cut, change the rest
    model = small_model()
    x = ids((batch, length), SMALL["vocab_size"], seed)
    changed = x.clone()
    changed[:, cut + 1 :] = ids((batch, length - cut - 1), SMALL["vocab_size"], seed + 1)
    with torch.no_grad():
        before, after = model(x)[0], model(changed)[0]
    torch.testing.assert_close(
        after[:, : cut + 1],
        before[:, : cut + 1],
        rtol=1e-12,
        atol=1e-12,
        msg=lambda m: f"{CAUSAL_HINT}\n{m}",
    )
    if cut + 1 < length:  # and the future does matter where it should (the model is not blind)
        assert not torch.equal(after, before) or torch.equal(changed, x)


def test_logits_match_the_torch_twin_and_a_cached_chunk_matches_the_full_pass():
    model = small_model()
    twin = TwinGPT(impl.gpt.GPTConfig(**SMALL)).to(torch.float64).eval()
    twin.load_state_dict(model.state_dict())
    x = ids((2, SMALL["block_size"]), SMALL["vocab_size"], 14)
    cache = [impl.generation.LayerCache() for _ in range(SMALL["n_layer"])]
    with torch.no_grad():
        logits, expected = model(x)[0], twin(x)[0]
        full = model.hidden_states(x)
        model.hidden_states(x[:, :3], cache)
        chunk = model.hidden_states(x[:, 3:], cache)
    tol = dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(logits, expected, **tol, msg=lambda m: f"{TWIN_HINT}\n{m}")
    torch.testing.assert_close(chunk, full[:, 3:], **tol, msg=lambda m: f"{CHUNK_HINT}\n{m}")


# ------------------------------------------------------------------------------- generation

SAMPLING = [
    dict(temperature=1.0),
    dict(temperature=0.7, top_k=5),
    dict(temperature=1.3, top_p=0.9),
    dict(temperature=0.9, top_k=8, top_p=0.8),
    dict(temperature=0.0),
]


@pytest.mark.parametrize(
    "options", SAMPLING, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_cached_and_uncached_generation_agree(options):
    """In float64 and past block_size (8): the prompt has 3 tokens, 12 are generated."""
    model = small_model(torch.float64)
    prompt = ids((2, 3), SMALL["vocab_size"], 9)
    outputs = {}
    for use_cache in (True, False):
        generator = torch.Generator().manual_seed(10)
        outputs[use_cache] = model.generate(
            prompt, 12, use_cache=use_cache, generator=generator, **options
        )
    assert outputs[True].shape == (2, 15)
    assert torch.equal(outputs[True][:, :3], prompt), "generate must keep the prompt"
    assert torch.equal(outputs[True], outputs[False]), (
        f"with the KV cache: {outputs[True].tolist()}\n"
        f"without:           {outputs[False].tolist()}\n"
        "the cached keys/values or the positions of the new tokens are off (a new token at "
        "position p needs position embedding p and must see every earlier key)"
    )


def test_greedy_generation_is_the_argmax_loop():
    model = small_model(torch.float64)
    prompt = ids((2, 2), SMALL["vocab_size"], 11)
    block = SMALL["block_size"]
    expected = prompt
    with torch.no_grad():
        for _ in range(10):  # 12 tokens in the end: the window slides past block_size
            logits = model(expected[:, -block:])[0][:, -1]
            expected = torch.cat([expected, logits.argmax(-1, keepdim=True)], dim=1)
    for use_cache in (True, False):
        got = model.generate(prompt, 10, temperature=0.0, use_cache=use_cache)
        assert torch.equal(got, expected), f"use_cache={use_cache}: {got.tolist()}"
    got = impl.generation.generate(model, prompt, 10, temperature=0.0)
    assert torch.equal(got, expected), "GPT.generate(...) is generation.generate(model, ...)"
    assert len(set(expected[0, 2:].tolist())) > 1, "test setup: a constant greedy sequence"


def frequencies(logits: torch.Tensor, draws: int, **options) -> torch.Tensor:
    """Empirical distribution of sample() over ``draws`` rows of the same logits (V,)."""
    generator = torch.Generator().manual_seed(12)
    tokens = impl.generation.sample(logits.expand(draws, -1), generator=generator, **options)
    assert tokens.shape == (draws, 1) and tokens.dtype == torch.long
    return torch.bincount(tokens[:, 0], minlength=logits.shape[-1]).double() / draws


# The probabilities are deliberately not sorted by token id.
PROBS = torch.tensor([0.2, 0.1, 0.05, 0.5, 0.15], dtype=torch.float64)
DRAWS = 20_000


def assert_frequencies(freq: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    sigma = (expected * (1 - expected) / DRAWS).sqrt()
    outside = (freq - expected).abs() > 5 * sigma + 1e-12
    assert not outside.any(), f"{what}: frequencies {freq.tolist()} vs {expected.tolist()}"


def test_sample_with_temperature_follows_softmax_of_scaled_logits():
    logits = PROBS.log()
    assert_frequencies(frequencies(logits, DRAWS), PROBS, "temperature 1")
    assert_frequencies(
        frequencies(logits, DRAWS, temperature=2.0),
        torch.softmax(logits / 2.0, -1),
        "temperature 2 divides the logits by 2",
    )


def test_sample_top_k_keeps_only_the_k_best():
    logits = PROBS.log()
    freq = frequencies(logits, DRAWS, top_k=2)
    kept = torch.tensor([True, False, False, True, False])  # 0.5 and 0.2
    assert (freq[~kept] == 0).all(), f"top_k=2 sampled a token outside the 2 best: {freq}"
    assert_frequencies(freq, torch.where(kept, PROBS, 0.0) / 0.7, "top_k=2 renormalised")
    assert_frequencies(frequencies(logits, DRAWS, top_k=50), PROBS, "top_k > vocab keeps all")


def test_sample_top_p_keeps_the_smallest_nucleus():
    logits = PROBS.log()
    # Sorted: 0.5 (id 3), 0.2 (id 0), 0.15 (id 4), 0.1, 0.05. For p = 0.8 the smallest set
    # reaching 0.8 is {3, 0, 4} (0.85); {3, 0} only has 0.7.
    freq = frequencies(logits, DRAWS, top_p=0.8)
    kept = torch.tensor([True, False, False, True, True])
    if (freq[:3] > 0).all() and (freq[3:] == 0).all():
        pytest.fail(
            "top_p kept tokens 0, 1, 2: the mask computed in sorted order must be put back in "
            "vocabulary order (scatter with the sort's indices)"
        )
    assert (freq[~kept] == 0).all(), f"top_p=0.8 sampled outside the nucleus {{3, 0, 4}}: {freq}"
    assert (freq[kept] > 0).all(), (
        f"top_p=0.8 must keep {{3, 0, 4}} (the token that crosses p stays): {freq}"
    )
    assert_frequencies(freq, torch.where(kept, PROBS, 0.0) / 0.85, "top_p=0.8 renormalised")
    freq = frequencies(logits, DRAWS, top_p=0.3)  # the best token alone already reaches 0.3
    assert freq[3] == 1.0, f"top_p=0.3 keeps only the most likely token: {freq}"
    assert_frequencies(frequencies(logits, DRAWS, top_p=1.0), PROBS, "top_p=1 keeps all")


def test_sample_temperature_zero_is_argmax():
    logits = torch.randn(6, 11, generator=torch.Generator().manual_seed(13))
    assert torch.equal(
        impl.generation.sample(logits, temperature=0.0), logits.argmax(-1, keepdim=True)
    )


@pytest.mark.reference_only
@pytest.mark.parametrize("options", [dict(temperature=-0.5), dict(top_p=0.0), dict(top_p=1.5)])
def test_sample_rejects_invalid_options(options):
    with pytest.raises(ValueError):
        impl.generation.sample(torch.zeros(2, 5), **options)


# ------------------------------------------------------------------------------- bad input


@pytest.mark.reference_only
def test_bad_input_is_reported_clearly():
    model = impl.gpt.GPT(impl.gpt.GPTConfig(**SMALL))
    block, vocab = SMALL["block_size"], SMALL["vocab_size"]
    with pytest.raises(ValueError, match=f"block_size {block}"):
        model(torch.zeros(1, block + 1, dtype=torch.long))
    with pytest.raises(IndexError, match=rf"id {vocab} is out of range \[0, {vocab}\)"):
        model(torch.full((1, 3), vocab))
    with pytest.raises(TypeError, match="integer ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(3, dtype=torch.long))


# ------------------------------------------------------------------------------- training


def test_a_tiny_gpt_learns_a_repeating_sequence():
    torch.manual_seed(14)
    vocab, block = 8, 16
    model = impl.gpt.GPT(
        impl.gpt.GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=2, n_embd=32)
    )
    stream = torch.arange(200) % vocab  # 0 1 2 … 7 0 1 …: the next token is always known
    optimizer = AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(15)
    losses = []
    for _ in range(60):
        starts = torch.randint(0, len(stream) - block - 1, (8,), generator=generator)
        x = torch.stack([stream[s : s + block] for s in starts])
        y = torch.stack([stream[s + 1 : s + block + 1] for s in starts])
        loss = model(x, targets=y)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.8 * math.log(vocab), f"initial loss {losses[0]:.3f}"
    assert losses[-1] < 0.1 * losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"


def test_layer_cache_grows_past_its_capacity_and_keeps_everything():
    """Appends of 1 and 5 tokens, well past the first buffer: the cache returns exactly the
    concatenation of everything appended, in order."""
    cache = impl.generation.LayerCache()
    generator = torch.Generator().manual_seed(0)
    appended_keys, appended_values = [], []
    for step in range(30):
        length = 5 if step % 4 == 0 else 1
        keys = torch.randn(2, 3, length, 4, generator=generator)
        values = torch.randn(2, 3, length, 4, generator=generator)
        appended_keys.append(keys)
        appended_values.append(values)
        all_keys, all_values = cache.update(keys, values)
        expected = torch.cat(appended_keys, dim=2), torch.cat(appended_values, dim=2)
        assert len(cache) == expected[0].shape[2], f"after {step + 1} appends: wrong length"
        same = torch.equal(all_keys, expected[0]) and torch.equal(all_values, expected[1])
        assert same, (
            f"after {step + 1} appends ({expected[0].shape[2]} tokens) the cache lost or moved "
            "earlier keys/values: when the buffer is full, copy the old ones into the new one"
        )
