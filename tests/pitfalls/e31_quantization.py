"""Lesson 31's pitfalls: ggml's Q8_0 and Q4_1 blocks, read and written."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant

T = "tests/test_gguf.py::"
SCALE = (T + "test_block_scale_is_a_little_endian_float16",)
Q4_1 = (T + "test_q4_1_layout_low_nibbles_first",)
ROUNDING = (T + "test_quantize_q4_1_rounds_like_ggml",)

MUTANTS = [
    Mutant(
        "Byte order",
        "d = _from_bytes(blocks[:, 0:2], torch.float16).float()",
        "d = _from_bytes(blocks[:, 0:2].flip(1), torch.float16).float()",
        "little-endian",
        SCALE,
    ),
    Mutant(
        "Byte order",
        "d = _from_bytes(blocks[:, 0:2], torch.float16).float()",
        "d = (blocks[:, 0:1].float() * 256 + blocks[:, 1:2].float()).to(torch.int16).view(torch.float16).float()",
        "little-endian",
        SCALE,
    ),
    Mutant(
        "Reading d and m as float32 or bfloat16",
        "d = _from_bytes(blocks[:, 0:2], torch.float16).float()",
        "d = _from_bytes(blocks[:, 0:2], torch.bfloat16).float()",
        "float16, 2 bytes each",
        SCALE,
    ),
    Mutant(
        "Nibble order",
        "q = torch.cat([packed & 0x0F, packed >> 4], dim=1).float()",
        "q = torch.stack([packed & 0x0F, packed >> 4], dim=2).reshape(-1, 32).float()",
        "q[16 + j] in its high one",
        Q4_1,
    ),
    Mutant(
        "Nibble order",
        "packed = q[:, : BLOCK // 2] | (q[:, BLOCK // 2 :] << 4)",
        "packed = q[:, 0::2] | (q[:, 1::2] << 4)",
        "nibble order",
        (T + "test_quantize_q4_1_bytes_equal_gguf",),
    ),
    Mutant(
        "Signed vs unsigned",
        "q = _from_bytes(blocks[:, 2:], torch.int8).float()",
        "q = blocks[:, 2:].float()",
        "0xFF is -1, not 255",
        (T + "test_q8_0_layout",),
    ),
    Mutant(
        "Signed vs unsigned",
        "q = torch.cat([packed & 0x0F, packed >> 4], dim=1).float()",
        "q = torch.cat([packed & 0x0F, packed >> 4], dim=1).float() - 8",
        "unsigned 0..15",
        Q4_1,
    ),
    Mutant(
        "Shifting an int8 view",
        "packed = blocks[:, 4:]",
        "packed = blocks[:, 4:].view(torch.int8)",
        "copies the sign bit in",
        Q4_1,
    ),
    Mutant(
        "torch.round instead of trunc(v + 0.5)",
        "q = torch.trunc((blocks - low) * inverse + 0.5)",
        "q = torch.round((blocks - low) * inverse)",
        "torch.round sends halves to even",
        ROUNDING,
    ),
    Mutant(
        "torch.round instead of trunc(v + 0.5)",
        "q = torch.trunc((blocks - low) * inverse + 0.5)",
        "q = torch.trunc((blocks - low) / d + 0.5)",
        "instead of the reciprocal",
        ROUNDING,
    ),
    Mutant(
        "d = 0 in a constant block",
        "inverse = torch.where(d == 0, 0.0, 1 / d)",
        "inverse = 1 / d",
        "(x - low) · inf is NaN",
        (T + "test_quantize_q4_1_computes_no_nan_in_a_constant_block",),
    ),
]
