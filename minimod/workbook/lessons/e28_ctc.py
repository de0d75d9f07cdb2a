TEXT = """Lesson 28: CTC -- the alignment lattice, the α and β recursions, greedy and beam decoding

The idea
A speech model emits one distribution over C classes per frame: log_probs (T, N, C), T frames
(100 per second of audio) for a transcript of S ≪ T characters. Nobody tells us which frames
belong to which character. Connectionist temporal classification (Graves et al. 2006) sums
over every alignment instead: a PATH π is one class per frame; the collapse B(π) merges
repeated symbols and then drops a special class, the blank ∅:
    B(a a ∅ b b ∅ ∅ b) = a b b          p(l | x) = Σ_{π: B(π) = l} Π_t y_t(π_t)
and the loss is −log p(l | x). y_t = exp(log_probs[t]) (a log-softmax over C).

Why a blank
Without it, "frames of nothing" (silence, between letters) would have to be some letter, and
a double letter could not exist: a a collapses to a. With it, "ll" in "hello" needs l ∅ l.
So a target with r adjacent repeats needs at least S + r frames; fewer and p = 0, loss = inf.

The lattice
Write l' = (∅, l1, ∅, l2, ..., ∅, lS, ∅): 2S + 1 states. A valid path walks through l' from
left to right, one state per frame, and from state s it may go to
    s      (stay: repeat the symbol)
    s + 1  (advance to the next blank or label)
    s + 2  (skip a blank) -- only if l'_{s+2} is a label different from l'_s.
It starts in state 0 or 1 and ends in state 2S or 2S − 1.

A worked example you can check by hand: classes (∅, a), T = 2 frames, both y_t = (0.4, 0.6),
target l = a, so l' = (∅, a, ∅). The paths that collapse to a are a a, a ∅ and ∅ a:
p = 0.6 · 0.6 + 0.6 · 0.4 + 0.4 · 0.6 = 0.84, loss = −ln 0.84 = 0.174. The α recursion below
gets there without listing paths: α_0 = (0.4, 0.6, 0); α_1(0) = 0.4 · 0.4 = 0.16,
α_1(1) = (0.6 + 0.4) · 0.6 = 0.6, α_1(2) = (0 + 0.6) · 0.4 = 0.24; p = α_1(1) + α_1(2) = 0.84.
The target a a needs a blank between its two a's (three frames): with T = 2, p = 0, loss = inf.

The α recursion (forward)
α_t(s) = total probability of all path prefixes that are in state s at frame t:
    α_0(0) = y_0(∅),  α_0(1) = y_0(l1),  α_0(s) = 0 otherwise
    α_t(s) = (α_{t-1}(s) + α_{t-1}(s − 1) + [skip allowed] α_{t-1}(s − 2)) · y_t(l'_s)
    p(l | x) = α_{T-1}(2S) + α_{T-1}(2S − 1)
alpha_recursion: one loop over t; every s and every sequence of the batch at once. The
lattice is laid out (T, S', N), S' = 2S + 1 -- states before sequences, so that one frame is one
contiguous (S', N) block -- and α lives in a (T, S' + 2, N) buffer with two −inf states before
s = 0: then α_{t-1}(s − 1) and α_{t-1}(s − 2) for EVERY s are slices of row t − 1 (views that
copy nothing, no concatenation per step), and the skip mask becomes, once, a (S', N) tensor of
0 and −inf added to the s − 2 term. Four operations per frame write the whole row α_t: two
torch.logaddexp, the mask, the emissions (a 3-way torch.logsumexp over a stacked window is
one call too, but measured slower: reductions over 3 elements cost more than two element-wise
calls). Each sequence is read at its own last frame input_lengths[n] − 1.

Why log space
α_t is a product of t probabilities: with 500 frames of y ≈ 0.1 it is 1e-500, which is 0 in
float64 (below 1e-308), let alone float32 (1e-38). In log space products become sums and the
sum of three terms becomes a logsumexp: log(e^a + e^b + e^c) = m + log(e^(a−m) + e^(b−m) +
e^(c−m)), m = max. Unreachable states are −inf; when all terms are −inf, m = 0 must be used
instead (−inf − (−inf) is NaN): torch.logaddexp(a, b) = max + log1p(e^−|a−b|) does exactly
that. The recursions run in float64 whatever the input's dtype: the loop then takes ~0.5 ms
more at T = 100 (float64 logaddexp is slower), and over 500 frames torch's float32 recursion
is off by 1e-3 in the gradient, ours by 4e-7.

The gradient: β and the state occupancies
β_t(s) is the same sum from the other end: paths that are in state s at frame t and finish
validly (it also includes y_t(l'_s)); it runs from each sequence's last frame down to 0 with
the mirrored moves (s, s + 1, s + 2). That is the α recursion of the problem read backwards:
each sequence's frames reversed within its own length (t <-> L − 1 − t) and its lattice too
(s <-> 2S − s), so the end states become the start states -- no second recursion to write.
When a gradient will be needed (any(ctx.needs_input_grad)), CTCFunction.forward puts the
reversed sequences beside the batch (columns N ... 2N − 1: the given _reversal gives the index
maps, _read_backwards applies them, _skips of the reversed l') and runs alpha_recursion ONCE for
both: the loop's cost is per frame, hardly per sequence. backward reads the second half back
with _read_backwards and has β. Then α_t(s) · β_t(s) / y_t(l'_s) is the probability of all
complete paths through (t, s), and with γ_t(s) = that / p(l | x) (a posterior, in [0, 1]):
    ∂(−log p) / ∂ log y_t(c) = −Σ_{s: l'_s = c} γ_t(s)
computed as exp(α + β − log y + nll) -- 0 outside each sequence's lattice (frames ≥ L,
states > 2S) -- and added into the classes with scatter_add_. Autograd through the α loop
would also work, but −inf states give NaN gradients (the derivative of a logsumexp of −infs)
and it keeps every intermediate. torch's own gradient differs from this exact one by
+ exp(log_probs): it assumes a log-softmax before it, which cancels the term.
The speed: the loop costs ~15 µs of Python and kernel launches per frame, however small the
rows; torch's C++ kernel has no such overhead, and at T = 100, N = 32 it is still 2.5 to 3
times faster than this ctc_loss, forward and backward (benchmarks/bench.py --models ctc).

Reductions, as torch: "none" gives (N,); "sum"; "mean" divides EACH loss by its target
length (at least 1), then averages. zero_infinity=True turns inf losses (targets that cannot fit)
into 0 with a zero gradient -- useful when a few utterances are too fast for the frame rate.
Targets are padded (N, S) with target_lengths, or concatenated (Σ target_lengths,).

Decoding
Greedy (best path): argmax class per frame, collapse. Fast, and usually close, but it finds
the most likely PATH, not the most likely LABELLING. Two frames with y(∅) = 0.6, y(a) = 0.4:
the best path ∅ ∅ (0.36) reads "", yet "a" has three paths a a, a ∅, ∅ a: 0.16 + 0.24 + 0.24
= 0.64. Prefix beam search keeps the beam_width best PREFIXES, each with two scores: p_b
(paths that end in a blank) and p_nb (paths that end in the prefix's last label). At each
frame, for each prefix and class c:
    c = ∅                 -> same prefix,    p_b  += (p_b + p_nb) · y(∅)
    c = last label        -> same prefix,    p_nb += p_nb · y(c)   (a repeat merges)
                          -> prefix + c,     p_nb += p_b · y(c)    (after a blank: new label)
    any other c           -> prefix + c,     p_nb += (p_b + p_nb) · y(c)
then keep the beam_width prefixes with the largest p_b + p_nb (in log space, logaddexp).
With a wide enough beam the scores are exactly p(l | x) = exp(−ctc_loss). A language model
can join the score here; greedy has nowhere to put it.

What you write
alpha_recursion (emit (T, S', N) of log y_t(l'_s), the skips (S', N) -> α (T, S', N));
CTCFunction.forward (the emissions, the reversed problem beside the batch when a gradient is
needed, alpha_recursion, reading the loss off, saving what backward unpacks, zero_infinity)
and CTCFunction.backward (β from the reversed half, the occupancies, the gradient);
ctc_greedy_decode and ctc_beam_search's search. extend_targets, the skip helper, the reversal
maps (_reversal, _read_backwards), the checks, the padding of concatenated targets, the
reductions and CTCLoss are given.

Classic pitfalls
- Allowing the skip between two EQUAL labels: "aa" then also matches a single run of a.
- Reading every sequence at frame T − 1 instead of input_lengths[n] − 1.
- Forgetting the end in the last label (state 2S − 1), or reading state 2S − 1 = −1 for an
  empty target (it ends in state 0 only).
- Plain probabilities instead of logs: 0 after a few hundred frames, loss inf.
- torch.logsumexp or logaddexp in an autograd recursion over −inf states: NaN gradients.
- Greedy: dropping blanks before merging repeats (a ∅ a must give "aa", not "a").
- Beam search with one score per prefix: a repeat after a blank and without one must differ.

Run it
Once `minimod exercises check 28` passes, a speech recogniser trains on synthetic spoken
keyword sentences through your CTC loss and its hand-written backward (--use-mine swaps in
every lesson that passes and says which; transcribe decodes with minimod's greedy and beam
search):
    minimod pretrain audio --task asr --use-mine --out runs/e28
prints which lessons are yours, the training loss every 10 steps (about 30 at step 10, 2.8 at
step 40), then "done: step 40, held-out wer 1, cer 1" (about 2 min 15 s on 2 busy shared
cores). Forty steps are not enough to hear anything: `minimod transcribe --from runs/e28
--held-out 3` shows an empty transcript for every utterance -- CTC learns the blank first.
A recogniser that does hear is `--task asr-digits --preset baby` (1000 steps: minutes, not
seconds; the README's speech-recognition table gives its word error rate).
Next: lesson 29 (Sound: the STFT, mel filterbanks, and the phase Griffin-Lim puts back)

Check it: minimod exercises check 28
Try it (python, in the repository folder):
    >>> import math
    >>> import torch
    >>> from exercises.e28_ctc import ctc_beam_search, ctc_greedy_decode, ctc_loss
    >>> log_probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()  # 2 frames, classes ∅, a
    >>> loss = ctc_loss(log_probs, torch.tensor([1]), 2, 1, reduction="sum")
    >>> round(math.exp(-loss.item()), 4)  # p("a") over its three paths
    0.64
    >>> ctc_greedy_decode(log_probs)  # the best path is ∅ ∅
    []
    >>> [(labels, round(math.exp(score), 4)) for labels, score in ctc_beam_search(log_probs)]
    [((1,), 0.64), ((), 0.36)]
"""
