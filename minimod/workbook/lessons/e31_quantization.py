TEXT = """Lesson 31: Quantization -- block scales, 4-bit packing, and what the round trip costs

What a number costs
A weight in float32 takes 32 bits; float16 and bfloat16 take 16. SmolLM2-135M's 135 M weights
are 540 MB in float32 -- and a language model reads every weight once per generated token, so
on a CPU or a phone the speed of generation is mostly the speed of moving those bytes from
memory. Fewer bits per weight is a smaller download, a smaller memory footprint AND faster
generation. The SmolLM2 file that `make real` installs (ggml's GGUF format, models/gguf.py)
stores its matrices in Q4_1, 5 bits per weight, and its token embedding in Q8_0, 8.5 bits:
98 MB in all. This lesson writes the two formats' decoder and the Q4_1 encoder, bit for bit
the ones of ggml (llama.cpp's library), and measures what the 4 bits cost.

Uniform affine quantization
Pick a step d (the scale) and an offset m (the minimum); store an integer q per number and read
    x ≈ d · q + m,        q in 0 .. 2^b - 1        (b bits: 16 levels for b = 4)
To quantize x, take the nearest level: q = round((x - m) / d), clipped to the range. With
m = min x and d = (max x - min x) / (2^b - 1) the levels run from the minimum to the maximum,
and every x lands within HALF A STEP of its level: |x - (d · q + m)| ≤ d / 2. Rounding errors
are spread roughly uniformly over (-d/2, d/2), so their RMS is about d / sqrt(12) ≈ 0.29 d.
The symmetric variant has no offset: x ≈ d · q with q signed, d = max |x| / (2^(b-1) - 1);
one number less to store, but half the levels are wasted when the values are all of one sign.

Why block scales: outliers
One (d, m) for a whole matrix would be ruled by its largest entries: trained weights are
roughly Gaussian with rare large outliers, and one value 10 times the typical size makes d 10
times coarser for everyone -- most weights then round to the same one or two levels. So ggml
cuts each row into BLOCKS of 32 consecutive elements (BLOCK = 32) with their own d (and m):
an outlier spoils only its own 31 neighbours, and a block's range follows the local spread.
The price is the header: two float16 numbers per 32 weights is 32 / 32 = 1 extra bit per
weight. 32 is the compromise ggml chose (larger blocks: less header, coarser steps). Blocks run
along the last (fastest-varying) axis, so its size must be a multiple of 32 -- dequantize and
quantize_q4_1 refuse anything else in one sentence.

The layouts, byte by byte (all numbers little-endian)
LAYOUTS maps each kind to (elements per block, bytes per block):
    F32    (1, 4)    float32, one per element
    F16    (1, 2)    float16, one per element
    Q8_0   (32, 34)  bytes 0-1: d (float16); bytes 2-33: q[0..31] as int8     x = q · d
    Q4_1   (32, 20)  bytes 0-1: d (float16); bytes 2-3: m (float16);
                     bytes 4-19: sixteen bytes of two 4-bit q in 0..15       x = d · q + m
Q8_0 is symmetric (q signed, -128..127, ggml's quantizer uses -127..127: d = max |x| / 127);
Q4_1 is affine (q unsigned). Bits per weight: Q8_0 34 · 8 / 32 = 8.5, Q4_1 20 · 8 / 32 = 5.
The 4-bit packing: byte j (j = 0..15) holds element j in its LOW nibble (byte & 0x0F) and
element 16 + j in its HIGH nibble (byte >> 4). So the low nibbles, in order, are elements
0..15 and the high nibbles elements 16..31 -- NOT elements 2j and 2j + 1 side by side.

Reading: dequantize
dequantize(raw (uint8, any shape), kind, shape) -> a new float32 tensor of shape, on raw's
device. The checks (kind known, last axis a multiple of the block, exactly the right number of
bytes) and the two float formats are given; you write the quantized ones, with no Python loop:
    blocks = raw as (n_blocks, bytes per block)
    d = the first two bytes of each block as float16, in float32           (n_blocks, 1)
    Q8_0: q = bytes 2.. as int8, in float32 (n_blocks, 32); x = q · d
    Q4_1: m = bytes 2-3 as float16 (n_blocks, 1); packed = bytes 4.. (n_blocks, 16);
          q = the low nibbles, then the high ones, side by side (n_blocks, 32); x = d · q + m
then reshape to shape. _from_bytes(raw (..., k), dtype) -> (..., k / itemsize) is the given
helper that reinterprets little-endian bytes as numbers of dtype (a view: bits unchanged,
nothing rounded) -- on a big-endian machine it reverses each number's bytes first.

Writing: quantize_q4_1 as ggml computes it
quantize_q4_1(x (..., 32k) float) -> uint8 (x.numel() / 32 · 20,). Given: the type and shape
checks, the conversion to float32 blocks (n_blocks, 32), an empty result for an empty x, and
the refusal of values beyond FLOAT16_MAX (65504) or not finite (a stored d or m would be
infinite). You write, per block (all in float32, as ggml's reference quantizer):
    low = min, high = max                       (n_blocks, 1)
    d = (high - low) / 15;  inverse = 1 / d, or 0 where d = 0 (a constant block: q = 0)
    q = trunc((x - low) · inverse + 0.5), clamped to 0..15, as uint8
    packed = q[:, :16] | (q[:, 16:] << 4)       (n_blocks, 16)
    bytes = d as float16, low as float16, packed: _to_bytes (the given helper: numbers ->
    little-endian uint8) of each, concatenated per block (n_blocks, 20), then flattened.
ggml's rounding is trunc(v + 0.5), not torch.round: round() sends a tie to the even neighbour
(2.5 -> 2), trunc(v + 0.5) sends it up (2.5 -> 3) -- and v ≥ 0 here, so trunc is floor. And
ggml multiplies by the reciprocal 1 / d instead of dividing by d: in float32 the two can differ
in the last bit, which moves a value sitting on a tie to the other level. Bit for bit means
the same operations in the same order.

The error bound
Every element comes back within d / 2 of where it was, plus what storing d and m as float16
costs: float16 keeps 11 significant bits, so d and m move by up to 2^-11 of themselves, and the
15 · d step at the top of the block by up to 15 times that. tests/test_gguf.py checks exactly
this bound, and that it is tight (some element is off by about d / 2).

Classic pitfalls
- Byte order: GGUF is little-endian; reinterpret bytes with a view (the helpers), never by
  arithmetic on a big-endian assumption.
- Reading d and m as float32 or bfloat16: they are float16 (2 bytes each); the block then
  shifts by 2 bytes and every number after it is garbage.
- Nibble order: (2j, 2j + 1) per byte instead of (j, 16 + j). It passes a constant block and
  fails everything else -- and the model still runs, just badly.
- Signed vs unsigned: Q8_0's q are int8 (a byte 0xFF is -1, not 255); Q4_1's nibbles are
  unsigned 0..15 (ggml's Q4_0 is the one that subtracts 8).
- Shifting an int8 view: packed >> 4 on int8 copies the sign bit in (0xF0 >> 4 = -1, not 15);
  unpack the nibbles from the uint8 bytes.
- torch.round instead of trunc(v + 0.5), or a division instead of the reciprocal: a few bytes
  differ from ggml's, and the file is no longer the one llama.cpp would write.
- d = 0 in a constant block: 1 / d is infinite, and (x - low) · inf is NaN where x = low.

A worked example
One block: x[0] = -1, x[1] = 2, x[2] = 0.37, x[17] = 1.1, every other element 0.
    low = -1, high = 2, d = 3 / 15 = 0.2, inverse = 5
    x[2]:  (0.37 + 1) · 5 + 0.5 = 7.35   -> q = 7
    x[17]: (1.1 + 1) · 5 + 0.5 = 11.0    -> q = 11   (10.5 steps above low: a near tie)
    zeros: (0 + 1) · 5 + 0.5 = 5.5       -> q = 5;   x[0] -> 0, x[1] -> 15
    bytes 0-1: 0.2 as float16 = 0x3266 = 0.199951171875 -> 66 32
    bytes 2-3: -1 as float16 = 0xBC00 -> 00 BC
    byte 4 (j = 0): q[0] = 0 low, q[16] = 5 high -> 0x50;  byte 5: q[1] = 15, q[17] = 11 -> 0xBF
    byte 6: q[2] = 7, q[18] = 5 -> 0x57;  bytes 7-19: 0x55
Read back with the float16 d: x[2] = 7 · 0.19995 - 1 = 0.39966 (error 0.030), x[17] = 1.19946
(error 0.0995, just under d / 2 = 0.1), the zeros -0.00024, x[1] = 1.99927.
Now put an outlier, 10, at x[5]: d = 11 / 15 = 0.733, and the zeros come back as -0.267, x[2]
as 0.467: the worst error grows from 0.0995 to 0.267 for the whole block. That is the outlier
problem -- in this block only.

What it costs, measured
quantize_q4_1 then dequantize on SmolLM2's token embedding (49152 x 576, stored as Q8_0):
the largest error is 0.0903 and the RMS error 0.01223, against a weight RMS of 0.1356 -- the
round trip adds noise of 9% of the weights' size (about 21 dB below them). Is that much? The
model answers. The perplexity of SmolLM2-135M-Instruct (minimod's LlamaForCausalLM, the GGUF
file's weights) on 4 windows of 512 tokens of this repository's README -- text written after
the model was trained, so held out; 2044 predicted tokens) goes from 47.9 with the file's Q8_0
embedding to 50.0 when that embedding alone is re-quantized to Q4_1 (the LM head is tied to
it, so both ends of the model get the noise): a mean loss 0.042 nats per token higher, +4.3%
perplexity, for 3.5 fewer bits on 28 M of its 135 M weights (the other matrices of the file
were already Q4_1). That is the usual picture: 8 bits are nearly free,
4 bits cost a few percent of perplexity, and below 4 bits (ggml's K-quants, GPTQ, AWQ) the
methods need smarter scales to stay usable. Why do 4 bits work at all? Each weight's error is
small, unbiased and independent of the others'; a matrix product sums hundreds of them, so the
errors partly cancel, and the network's normalisations absorb the rest.

What you write
The Q8_0 and Q4_1 decoding at the end of dequantize (the per-block scale, minimum and nibble
unpacking), and quantize_q4_1 after its checks (minimum and maximum, scale, rounding, packing).
The checks, the float formats, LAYOUTS, BLOCK, FLOAT16_MAX and the two byte helpers are given.

Run it
Your block formats read SmolLM2's real weights (after `make real`), requantize them, and count
the cost:
    python -c "if 1:
        import torch
        from minimod.models.gguf import read_gguf
        from minimod.models.pretrained import smollm2_path
        from exercises.e31_quantization import dequantize, quantize_q4_1
        tensors = read_gguf(smollm2_path()).tensors
        e, d = tensors['token_embd.weight'], tensors['blk.0.ffn_down.weight']
        w = dequantize(e.raw, e.kind, e.shape)
        back = dequantize(quantize_q4_1(w.flatten()), 'Q4_1', e.shape)
        print('embedding Q8_0 -> Q4_1:', round(((back - w).norm() / w.norm()).item(), 4))
        again = quantize_q4_1(dequantize(d.raw, d.kind, d.shape).flatten())
        print('ffn_down Q4_1 again, bit for bit:', torch.equal(again, d.raw.flatten()))"
prints embedding Q8_0 -> Q4_1: 0.0902 (a 9% relative error on the 28 M embedding numbers), then
ffn_down Q4_1 again, bit for bit: True (ggml's own bytes back); 10 to 35 s on 2 shared cores.
Next: lesson 32 (The modern block: RMSNorm, RoPE, grouped-query attention and SwiGLU)

Check it: minimod exercises check 31
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e31_quantization import dequantize, quantize_q4_1
    >>> x = torch.zeros(32)
    >>> x[0], x[1], x[2], x[17] = -1.0, 2.0, 0.37, 1.1
    >>> raw = quantize_q4_1(x)
    >>> raw[:8].tolist()
    [102, 50, 0, 188, 80, 191, 87, 85]
    >>> dequantize(raw, "Q4_1", (32,))[[0, 1, 2, 3, 17]].tolist()
    [-1.0, 1.999267578125, 0.399658203125, -0.000244140625, 1.199462890625]
"""
