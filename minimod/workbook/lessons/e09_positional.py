TEXT = """Lesson 9: Positional encodings -- sinusoidal, learned and rotary (RoPE)

The idea
Attention alone cannot tell positions apart: shuffle the tokens and its outputs are shuffled
the same way, since nothing in softmax(Q Kᵀ) V says where a token is ("dog bites man" and
"man bites dog" look alike). A positional encoding puts the position back in.

Sinusoidal (Vaswani et al. 2017): a fixed table, added to the token embeddings
    PE[p, 2i]   = sin(p · θ_i)        θ_i = base^(−2i/d),  i = 0 .. d/2 − 1 counts PAIRS
    PE[p, 2i+1] = cos(p · θ_i)        base = 10000;  table (length, d), d even
Each pair of features is a clock hand turning at its own speed, from 1 radian per position
(i = 0) down to one turn in about 2π · base positions. Moving k positions on turns each hand
by a fixed angle: PE[p + k] is a rotation of PE[p], so relative offsets are easy to read.
Compute the angles in float64 (p · θ reaches thousands of radians, where float32 has lost
most of its digits) and convert to the requested dtype at the end.
SinusoidalPositional keeps the table in a non-persistent buffer (it moves with .to() but is
not saved: it is recomputed) and adds its first T rows to x (..., T, d).

Learned (GPT-2, BERT): an Embedding over positions 0 .. max_len − 1
LearnedPositional.forward(x, offset=0) adds rows offset .. offset + T − 1 to x (..., T, d);
offset = the number of tokens that came before (a KV cache feeds only the new ones).

Rotary, RoPE (Su et al. 2021): rotate the queries and keys instead of adding anything
Pair feature i with feature i + d/2 (the "rotate half" layout of GPT-NeoX and Llama) and turn
each pair by the angle p · θ_i:
    cos, sin = rotary_cos_sin(positions, d): cos and sin of p · θ_i, each (*positions.shape, d),
               the d/2 frequencies repeated for both halves: [θ_0 .. θ_(d/2−1), θ_0 .. θ_(d/2−1)]
    apply_rotary(x, cos, sin) = x · cos + rotate_half(x) · sin,  rotate_half((x₁, x₂)) = (−x₂, x₁)
               x (..., T, d) with x₁, x₂ its two halves; cos, sin (T, d) broadcast
Rotations compose: ⟨R(m) q, R(n) k⟩ = ⟨q, R(n − m) k⟩. So a query-key score depends only on
the offset m − n, and every vector keeps its length. RotaryEmbedding precomputes cos and sin
for max_len positions (buffers) and rotates q and k (..., T, head_dim) whose first position is
`offset`, taking rows offset .. offset + T − 1 of its tables.

A worked example you can check by hand: d = 2 (one pair, θ_0 = base^0 = 1, so the angle is the
position itself), q = k = (1, 0). apply_rotary turns (x₁, x₂) into (x₁ cos a − x₂ sin a,
x₂ cos a + x₁ sin a): the query at position 2 becomes (cos 2, sin 2) = (−0.416, 0.909), the key
at position 1 becomes (cos 1, sin 1) = (0.540, 0.841), and their score is
−0.416 · 0.540 + 0.909 · 0.841 = 0.540 = cos(2 − 1). Move both on by 10 positions (12 and 11):
the score is cos(1) = 0.540 again -- only the offset counts, as the identity above says.

What you write
sinusoidal_positions, rotary_cos_sin, apply_rotary, and the forward of SinusoidalPositional,
LearnedPositional and RotaryEmbedding. Argument checks and the buffers are given.

Classic pitfalls
- sin and cos swapped, or all sines first and all cosines second (that is RoPE's layout).
- θ_i = base^(−i/d): i counts pairs of features, so the exponent is 2i/d.
- Rotating the wrong way: rotate_half gives (−x₂, x₁), not (x₂, −x₁).
- Pairing neighbours (2i, 2i+1) in RoPE: here feature i pairs with feature i + d/2.
- Ignoring the offset: a token at position p needs row (or angle) p, wherever its slice starts.
- Angles computed in float32 for large positions.

Run it
Once `minimod exercises check 9` passes, the text-to-speech model of lesson 30 trains with
your sinusoidal positions (added to its phoneme encodings and to its frames) on eSpeak NG's
digit strings (after `make real`; --use-mine swaps in every lesson that passes):
    minimod pretrain tts --use-mine --out runs/e09
prints which lessons are yours, the loss every 10 steps (about 7.7 at step 10, 5.3 at step 20),
then "done: step 40, held-out mel_l1 4.106, duration_mse 0.1737, length_error 12.4" (about
75 s on 2 busy shared cores). Then `minimod speak --from runs/e09 --text 'three one four'
--out speech.wav` prints the phonemes it said and "0.80 s of audio", and speech.png puts its
frames above eSpeak's: after 40 steps, a steady hum (the average spectrum) of about the right
length (70 frames for eSpeak's 83), not yet words; `--preset baby` (3000 steps) speaks
digits.
Next: lesson 10 (GPT: the pre-LayerNorm block, weight tying, sampling and the KV cache)

Check it: minimod exercises check 9
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e09_positional import apply_rotary, rotary_cos_sin, sinusoidal_positions
    >>> [[round(x, 4) for x in row] for row in sinusoidal_positions(2, 4).tolist()]
    [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 0.9999]]
    >>> q, k = torch.randn(1, 8), torch.randn(1, 8)
    >>> def score(m, n):
    ...     rotated_q = apply_rotary(q, *rotary_cos_sin(torch.tensor([m]), 8))
    ...     rotated_k = apply_rotary(k, *rotary_cos_sin(torch.tensor([n]), 8))
    ...     return (rotated_q * rotated_k).sum().item()
    >>> abs(score(7, 3) - score(104, 100)) < 1e-4  # only the offset m − n counts
    True
    >>> torch.allclose(apply_rotary(q, *rotary_cos_sin(torch.tensor([5]), 8)).norm(), q.norm())
    True
"""
