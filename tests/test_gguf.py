"""GGUF reading (models/gguf.py) and ggml's weight formats (models/quantize.py), against the
field's own library, ``gguf``: its numpy quantizers make the bytes, and minimod's dequantize
must give the same float32 numbers as ``gguf.quants.dequantize``, bit for bit; minimod's
quantize_q4_1 must give the same bytes as gguf's Q4_1 quantizer.

``gguf`` and the SmolLM2 file come from ``make real``: without ``gguf`` its comparisons skip
with that hint; the tests marked ``real`` read SmolLM2-135M-Instruct.Q4_1.gguf itself.
Lesson 31 teaches dequantize's Q8_0 and Q4_1 decoding and quantize_q4_1: those tests reach them
through ``impl.quantize``; the tests of the GGUF reader, of the float formats and of the error
messages check minimod's own code (reference_only).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import impl
from minimod.models import pretrained
from minimod.models.gguf import GGUFFile, load_tensors, read_gguf
from minimod.models.pretrained import MissingExtraError, smollm2_path
from minimod.models.quantize import LAYOUTS, dequantize, quantize_q4_1

HINT = "run `make real`"


@pytest.fixture(scope="module")
def gguf():
    return pytest.importorskip("gguf", reason=f"needs the gguf package: {HINT}")


def bits(x) -> torch.Tensor:
    """float32 numbers -> their bit patterns (so -0.0 != 0.0 and a NaN equals itself)."""
    x = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    return x.contiguous().view(torch.int32)


def sample(case: str, shape=(16, 96)) -> torch.Tensor:
    """Test data per case; no block mixes 0.0 and -0.0 (whose minimum's sign is arbitrary)."""
    g = torch.Generator().manual_seed(len(case))
    x = torch.randn(shape, generator=g)
    if case == "tiny":  # scales and minima in float16's subnormal range
        return x * 1e-6
    if case == "large":  # near float16's largest
        return x / x.abs().max() * 6e4
    if case == "ties":  # small integers: (x - min) / d often lands exactly on .5
        return torch.randint(1, 31, shape, generator=g).float()
    if case == "constant":  # d = 0 in every other block
        x.reshape(-1, 32)[::2] = 0.75
        return x
    return x


CASES = ["normal", "tiny", "large", "ties", "constant"]


# ============================================================================ ggml's block layouts


def _q4_1_hint(back: torch.Tensor, q: torch.Tensor, d: float, m: float) -> str:
    """Which classic slip turns the block of nibbles ``q`` (d, m) into ``back``, in words."""
    slips = {
        "byte j holds q[j] in its low nibble and q[16 + j] in its high one, not q[2j] and "
        "q[2j + 1]": torch.stack([q[:16], q[16:]], dim=1).reshape(-1),
        "Q4_1's nibbles are unsigned 0..15: nothing is subtracted (ggml's Q4_0 subtracts 8)": q - 8,
        "packed >> 4 on an int8 view copies the sign bit in (0xF0 >> 4 = -1, not 15): unpack "
        "the nibbles from the uint8 bytes": torch.where(torch.arange(32) >= 16, (q ^ 8) - 8, q),
    }
    for words, slipped in slips.items():
        if torch.equal(back, d * slipped.float() + m):
            return f"\n{words}"
    return ""


def test_q4_1_layout_low_nibbles_first():
    """One hand-made Q4_1 block: d = 0.5, m = -1; byte j holds q[j] low and q[16 + j] high."""
    q = torch.arange(32) % 16
    packed = (q[:16] | (q[16:] << 4)).to(torch.uint8)
    header = torch.tensor([0.5, -1.0], dtype=torch.float16).view(torch.uint8)
    raw = torch.cat([header, packed])
    back = impl.quantize.dequantize(raw, "Q4_1", (32,))
    torch.testing.assert_close(
        back, 0.5 * q.float() - 1, rtol=0, atol=0, msg=lambda m: m + _q4_1_hint(back, q, 0.5, -1)
    )


def test_block_scale_is_a_little_endian_float16():
    """A Q8_0 block of q = 1 dequantizes to its scale d: the block's first 2 bytes, read as a
    little-endian float16."""
    header = torch.tensor([0.25], dtype=torch.float16).view(torch.uint8)
    ones = torch.ones(32, dtype=torch.uint8)
    got = impl.quantize.dequantize(torch.cat([header, ones]), "Q8_0", (32,))[0].item()
    misreadings = {
        "read big-endian": header.flip(0).view(torch.float16),
        "read as bfloat16": header.view(torch.bfloat16),
        "read as float32 from 4 bytes": torch.cat([header, ones[:2]]).view(torch.float32),
    }
    how = next((f" ({how})" for how, v in misreadings.items() if v.item() == got), "")
    assert got == 0.25, (
        f"a block with d = 0.25 and q = 1 dequantizes to {got}{how}: GGUF is little-endian and "
        "d (and Q4_1's m) are float16, 2 bytes each; reinterpret the bytes with a view"
    )


def test_q8_0_layout():
    """One hand-made Q8_0 block: d = 0.25, then 32 int8 values."""
    q = torch.arange(-16, 16, dtype=torch.int8)
    raw = torch.cat(
        [torch.tensor([0.25], dtype=torch.float16).view(torch.uint8), q.view(torch.uint8)]
    )
    back = impl.quantize.dequantize(raw, "Q8_0", (1, 32))
    unsigned = 0.25 * q.view(torch.uint8).float()[None]
    torch.testing.assert_close(
        back,
        0.25 * q.float()[None],
        rtol=0,
        atol=0,
        msg=lambda m: (
            m
            + (
                "\nQ8_0's q are signed int8: a byte 0xFF is -1, not 255"
                if torch.equal(back, unsigned)
                else ""
            )
        ),
    )


# ============================================================================ against gguf


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "kind",
    # the float formats are given code, not the lesson's
    [pytest.param(kind, marks=pytest.mark.reference_only) for kind in ("F32", "F16")]
    + ["Q8_0", "Q4_1"],
)
def test_dequantize_equals_gguf(gguf, kind, case):
    x = sample(case).numpy()
    kind_id = gguf.GGMLQuantizationType[kind]
    stored = np.ascontiguousarray(gguf.quants.quantize(x, kind_id)).view(np.uint8)
    expected = gguf.quants.dequantize(stored, kind_id).reshape(x.shape)
    ours = impl.quantize.dequantize(torch.from_numpy(stored.copy()), kind, x.shape)
    assert ours.dtype == torch.float32 and tuple(ours.shape) == x.shape
    assert torch.equal(bits(ours), bits(expected))


@pytest.mark.parametrize("case", CASES)
def test_quantize_q4_1_bytes_equal_gguf(gguf, case):
    x = sample(case, shape=(3, 4, 64))
    expected = gguf.quants.quantize(x.numpy(), gguf.GGMLQuantizationType.Q4_1).reshape(-1)
    ours = impl.quantize.quantize_q4_1(x)
    assert ours.dtype == torch.uint8 and ours.shape == (x.numel() // 32 * 20,)
    assert torch.equal(ours, torch.from_numpy(expected)), _bytes_hint(
        ours, torch.from_numpy(expected)
    )


def _nibbles(raw: torch.Tensor) -> torch.Tensor:
    """Q4_1 bytes -> their q (n_blocks, 32), read in ggml's order (low nibbles first)."""
    packed = raw.reshape(-1, 20)[:, 4:]
    return torch.cat([packed & 0x0F, packed >> 4], dim=1)


def _bytes_hint(ours: torch.Tensor, expected: torch.Tensor) -> str:
    """Where quantize_q4_1's bytes differ from ggml's, in words."""
    header = ours.reshape(-1, 20)[:, :4] != expected.reshape(-1, 20)[:, :4]
    if header.any():
        blocks = int(header.any(1).sum())
        return f"the d and m bytes (the first 4 of each 20) differ in {blocks} blocks"
    q, want = _nibbles(ours), _nibbles(expected)
    if torch.equal(q, torch.cat([want[:, 0::2], want[:, 1::2]], dim=1)):
        return "nibble order: byte j holds q[j] low and q[16 + j] high, not q[2j] and q[2j + 1]"
    return (
        f"{int((q != want).sum())} of {q.numel()} q differ from ggml's: q = trunc((x - m) · (1/d) "
        "+ 0.5), not torch.round, and with the reciprocal, not a division"
    )


def test_quantize_q4_1_rounds_like_ggml():
    """Block 0: d = 1, x - m = n + 0.5: ggml rounds every half up (torch.round sends even n + 0.5
    down). Block 1: d = 7/15, where (x - m) · (1/d) and (x - m) / d round differently."""
    halves = torch.arange(15) + 0.5
    first = torch.cat([torch.tensor([0.0, 15.0]), halves, torch.arange(15.0)])
    d = torch.tensor(7.0) / 15
    edges = torch.tensor([0.23333331942558289, 0.699999988079071, 1.1666666269302368])
    second = torch.cat([torch.tensor([0.0, 7.0]), edges, torch.zeros(27)])
    raw = impl.quantize.quantize_q4_1(torch.stack([first, second]))
    expected = torch.stack([torch.trunc(first + 0.5), torch.trunc(second * (1 / d) + 0.5)])
    assert torch.equal(expected[1, 2:5], torch.tensor([0.0, 1.0, 2.0]))  # the data's premise
    q = _nibbles(raw).float()
    assert torch.equal(q, expected), (
        f"q {q[q != expected].tolist()} where ggml stores {expected[q != expected].tolist()}: "
        "q = trunc((x - m) · (1/d) + 0.5) -- torch.round sends halves to even, and a division "
        "instead of the reciprocal differs in the last bit; then the bytes are not llama.cpp's"
    )


class _NoNaN(torch.overrides.TorchFunctionMode):
    """Fails at the first torch call whose floating-point result holds a NaN."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.isnan().any():
            raise AssertionError(
                f"{getattr(func, '__name__', func)} made a NaN while quantizing a constant block: "
                "there d = 0, 1 / d is infinite and (x - low) · inf is NaN where x = low; use "
                "0 for the reciprocal where d = 0"
            )
        return out


def test_quantize_q4_1_computes_no_nan_in_a_constant_block():
    """A constant block has d = 0 and stores q = 0: no NaN on the way (turned into a byte, a NaN
    is whatever the machine makes of it)."""
    x = torch.full((2, 32), 0.75)
    x[1] = torch.linspace(-1, 1, 32)
    with _NoNaN():
        raw = impl.quantize.quantize_q4_1(x)
    assert torch.equal(_nibbles(raw)[0], torch.zeros(32, dtype=torch.uint8))


def test_quantize_q4_1_reads_other_float_dtypes_as_float32():
    x = sample("normal")
    quantize = impl.quantize.quantize_q4_1
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        assert torch.equal(quantize(x.to(dtype)), quantize(x.to(dtype).float()))


@pytest.mark.parametrize("case", CASES)
def test_q4_1_round_trip_error_is_bounded(case):
    """|x - dequantize(quantize_q4_1(x))| <= d / 2, plus what storing d and m as float16 costs
    (a relative 2^-11 each, or 2^-25 absolute below float16's normal range), per block."""
    x = sample(case, shape=(8, 128))
    back = impl.quantize.dequantize(impl.quantize.quantize_q4_1(x), "Q4_1", x.shape)
    blocks, error = x.reshape(-1, 32), (back - x).abs().reshape(-1, 32)
    low = blocks.amin(1, keepdim=True)
    d = (blocks.amax(1, keepdim=True) - low) / 15
    half_ulp = 2.0**-11
    bound = (
        d * (0.5 + 15 * half_ulp + 1e-5)
        + low.abs() * half_ulp
        + 16 * 2.0**-25
        + blocks.abs() * 2.0**-22
    )
    assert bool((error <= bound).all()), f"worst excess {(error - bound).max().item():g}"
    if case not in ("constant", "ties"):  # the bound is tight: some element is off by ~d / 2
        assert bool((error >= 0.45 * d).any())


def test_empty_tensors_have_no_bytes():
    assert impl.quantize.quantize_q4_1(torch.zeros(0, 32)).shape == (0,)
    for kind in LAYOUTS:
        empty = impl.quantize.dequantize(torch.empty(0, dtype=torch.uint8), kind, (2, 0, 32))
        assert empty.shape == (2, 0, 32) and empty.dtype == torch.float32


# ============================================================================ errors


@pytest.mark.reference_only
def test_dequantize_errors():
    raw = torch.zeros(40, dtype=torch.uint8)
    with pytest.raises(ValueError, match="unsupported kind 'Q6_K'; minimod reads F32, F16, Q8_0"):
        dequantize(raw, "Q6_K", (64,))
    with pytest.raises(
        ValueError, match=r"last dimension must be a multiple of 32, got shape \(2, 40\)"
    ):
        dequantize(raw, "Q4_1", (2, 40))
    with pytest.raises(ValueError, match=r"a Q4_1 tensor of shape \(96,\) takes 60 bytes, got 40"):
        dequantize(raw, "Q4_1", (96,))
    with pytest.raises(ValueError, match=r"an? F32 tensor of shape \(3,\) takes 12 bytes, got 40"):
        dequantize(raw, "F32", (3,))
    with pytest.raises(TypeError, match="raw must be a uint8 tensor of bytes, got torch.int8"):
        dequantize(raw.to(torch.int8), "Q4_1", (64,))


@pytest.mark.reference_only
def test_quantize_q4_1_errors():
    with pytest.raises(TypeError, match="floating-point tensor, got torch.int64"):
        quantize_q4_1(torch.ones(32, dtype=torch.long))
    with pytest.raises(ValueError, match=r"multiple of 32, got shape \(4, 48\)"):
        quantize_q4_1(torch.ones(4, 48))
    for bad in (float("nan"), float("inf"), 7e4):
        x = torch.ones(64)
        x[5] = bad
        with pytest.raises(ValueError, match="finite with every .value. <= 65504"):
            quantize_q4_1(x)


# ============================================================================ GGUF files


def write_gguf(gguf, path, endianess=None):
    """A small GGUF file: metadata of every kind, tensors in four formats and one Q4_0."""
    options = {} if endianess is None else {"endianess": endianess}
    writer = gguf.GGUFWriter(path, "llama", **options)
    writer.add_uint32("llama.block_count", 2)
    writer.add_float32("llama.rope.freq_base", 0.5)
    writer.add_bool("tokenizer.ggml.add_bos_token", True)
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "é"])
    writer.add_array("tokenizer.ggml.token_type", [1, 2, 3])
    x = sample("normal", shape=(3, 64)).numpy()
    quantized = gguf.GGMLQuantizationType
    writer.add_tensor("f32", x)
    writer.add_tensor("f16", x.astype(np.float16))
    for kind in ("Q8_0", "Q4_1", "Q4_0"):
        stored = gguf.quants.quantize(x, quantized[kind])
        writer.add_tensor(kind.lower(), stored, raw_shape=stored.shape, raw_dtype=quantized[kind])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return torch.from_numpy(x)


@pytest.mark.reference_only
def test_read_gguf_metadata_and_torch_order(gguf, tmp_path):
    x = write_gguf(gguf, tmp_path / "small.gguf")
    file = read_gguf(tmp_path / "small.gguf")
    assert file.metadata == {
        "general.architecture": "llama",
        "llama.block_count": 2,
        "llama.rope.freq_base": 0.5,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.tokens": ["a", "b", "é"],
        "tokenizer.ggml.token_type": [1, 2, 3],
    }
    assert {name: t.kind for name, t in file.tensors.items()} == {
        "f32": "F32",
        "f16": "F16",
        "q8_0": "Q8_0",
        "q4_1": "Q4_1",
        "q4_0": "Q4_0",
    }
    # ggml stores [64, 3] (a row's length first); torch order is (3, 64), as written
    assert {t.shape for t in file.tensors.values()} == {(3, 64)}
    kind, shape, raw = file.tensors["q4_1"]
    assert raw.dtype == torch.uint8 and raw.numel() == 3 * 2 * 20
    assert "architecture='llama'" in repr(file) and "5 tensors" in repr(file)

    loaded = load_tensors(file, ["f32", "f16", "q8_0", "q4_1"])
    assert torch.equal(loaded["f32"], x)
    assert torch.equal(loaded["f16"], x.half().float())
    torch.testing.assert_close(loaded["q8_0"], x, atol=0.02, rtol=0)
    torch.testing.assert_close(loaded["q4_1"], x, atol=0.3, rtol=0)
    assert list(load_tensors(tmp_path / "small.gguf", ["f32"])) == ["f32"]


@pytest.mark.reference_only
def test_load_tensors_errors(gguf, tmp_path):
    write_gguf(gguf, tmp_path / "small.gguf")
    file = read_gguf(tmp_path / "small.gguf")
    with pytest.raises(ValueError, match="is stored as Q4_0; minimod dequantizes only F32"):
        load_tensors(file)
    with pytest.raises(ValueError, match="the file has no tensor 'nope'"):
        load_tensors(file, ["f32", "nope"])
    with pytest.raises(TypeError, match="names must be a list of tensor names, got one string"):
        load_tensors(file, "f32")


@pytest.mark.reference_only
def test_read_gguf_errors(gguf, tmp_path):
    with pytest.raises(FileNotFoundError, match="read_gguf: no file at"):
        read_gguf(tmp_path / "absent.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"")
    (tmp_path / "text.gguf").write_bytes(b"not a gguf file at all" * 10)
    for name in ("empty.gguf", "text.gguf"):
        with pytest.raises(ValueError, match="is not a readable GGUF file"):
            read_gguf(tmp_path / name)
    write_gguf(gguf, tmp_path / "small.gguf")
    whole = (tmp_path / "small.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[: len(whole) - 50])
    with pytest.raises(
        ValueError, match="cut.gguf is not a readable GGUF file .corrupt or truncated"
    ):
        read_gguf(tmp_path / "cut.gguf")
    write_gguf(gguf, tmp_path / "big.gguf", endianess=gguf.GGUFEndian.BIG)
    with pytest.raises(ValueError, match="big-endian GGUF file; minimod reads little-endian"):
        read_gguf(tmp_path / "big.gguf")


@pytest.mark.reference_only
def test_missing_packages_name_make_real(monkeypatch, tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    with pytest.raises(MissingExtraError, match="gguf package is not installed: run `make real`"):
        read_gguf(tmp_path / "x.gguf")
    monkeypatch.setattr(pretrained, "SMOLLM2_PACKAGE", "no_such_package_here")
    with pytest.raises(
        MissingExtraError, match="SmolLM2 weights are not installed: run `make real`"
    ):
        smollm2_path()


# ============================================================================ the real SmolLM2 file


@pytest.fixture(scope="module")
def smollm2(gguf) -> GGUFFile:
    try:
        return read_gguf(smollm2_path())
    except MissingExtraError as error:
        pytest.skip(str(error))


@pytest.mark.real
@pytest.mark.reference_only
def test_smollm2_metadata(smollm2):
    meta = smollm2.metadata
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == 30
    assert meta["llama.embedding_length"] == 576
    assert meta["llama.feed_forward_length"] == 1536
    assert meta["llama.attention.head_count"] == 9
    assert meta["llama.attention.head_count_kv"] == 3
    assert meta["llama.vocab_size"] == 49152
    assert len(meta["tokenizer.ggml.tokens"]) == 49152
    assert meta["tokenizer.ggml.tokens"][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    kinds = {}
    for tensor in smollm2.tensors.values():
        kinds[tensor.kind] = kinds.get(tensor.kind, 0) + 1
    assert kinds == {"Q8_0": 1, "Q4_1": 210, "F32": 61}
    assert smollm2.tensors["token_embd.weight"][:2] == ("Q8_0", (49152, 576))
    assert smollm2.tensors["blk.0.ffn_down.weight"][:2] == ("Q4_1", (576, 1536))
    assert smollm2.tensors["blk.0.attn_k.weight"][:2] == ("Q4_1", (192, 576))


@pytest.mark.real
@pytest.mark.reference_only
def test_smollm2_tensors_equal_gguf(smollm2, gguf):
    names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_gate.weight"]
    names += ["blk.0.attn_norm.weight", "output_norm.weight"]
    loaded = load_tensors(smollm2, names)
    for name in names:
        kind, shape, raw = smollm2.tensors[name]
        expected = gguf.quants.dequantize(raw.numpy(), gguf.GGMLQuantizationType[kind])
        assert loaded[name].shape == shape
        assert torch.equal(bits(loaded[name]), bits(expected.reshape(shape))), name


@pytest.mark.real
def test_smollm2_quantized_blocks_dequantize_as_gguf(smollm2, gguf):
    """The lesson's code on real weights: SmolLM2's Q8_0 embedding and a Q4_1 matrix."""
    for name in ("token_embd.weight", "blk.0.ffn_down.weight"):
        kind, shape, raw = smollm2.tensors[name]
        expected = gguf.quants.dequantize(raw.numpy(), gguf.GGMLQuantizationType[kind])
        ours = impl.quantize.dequantize(raw, kind, shape)
        assert torch.equal(bits(ours), bits(expected.reshape(shape))), name
