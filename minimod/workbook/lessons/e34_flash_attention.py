TEXT = """Lesson 34: FlashAttention -- the online softmax, and attention in O(T) memory

The memory problem is the T × T matrix
Lesson 8's Attention computes S = Q Kᵀ · scale, the weights P = softmax(S) and O = P V, and keeps
P for the backward pass. P has one number per (query, key) pair: B · H · L · S of them. At
B = 1, H = 4, T = 8192 that is 4 · 8192² · 4 bytes = 1 GiB in float32 -- for ONE layer, while
Q, K, V and O together are 4 · (4 · 8192 · 64) · 4 bytes = 32 MiB. Doubling the context
quadruples it; and while computing P the forward holds the scores too, the backward dP and dS
as large again. Memory, not arithmetic, is what stops long contexts. On a GPU the time goes
the same way: P is written to and read back from main memory, which is slower than the
multiplications that make it.
FlashAttention (Dao et al., 2022; its backward as FlashAttention-2, 2023) computes the same
output without ever storing P: it reads the keys and values one BLOCK at a time, keeps a few
numbers per query row, and in the backward recomputes each block of P from one number per row.
Extra memory O(T · block) instead of O(T²); the answer is the same up to rounding.

The online softmax: a softmax one block at a time
One query row, scores s_1 .. s_S, values v_1 .. v_S. The output is
    o = Σ_j e^(s_j − m) v_j / Σ_j e^(s_j − m)       for ANY constant m
(m cancels; we take m = max_j s_j so no exponential overflows). The trouble: the maximum of all
the scores is known only at the end. So keep, for the blocks seen so far, the running max m,
the running sum l = Σ e^(s_j − m) and the running (unnormalised) output õ = Σ e^(s_j − m) v_j.
A new block of scores s_B arrives. Its max may be larger: m' = max(m, max s_B). Everything
accumulated so far was exponentiated relative to m; relative to m' each term e^(s_j − m)
becomes e^(s_j − m') = e^(s_j − m) · e^(m − m'). So one factor α = e^(m − m') fixes them all:
    m' = max(m, rowmax(s_B)),   α = exp(m − m'),   p_B = exp(s_B − m')
    l  = α l + rowsum(p_B)
    õ  = α õ + p_B V_B
    m  = m'
Start with m = −inf, l = 0, õ = 0 (then α = e^(−inf) = 0 wipes the empty start); at the end
o = õ / l. By induction, after every block l and õ are exactly the sums over all the keys seen
so far relative to the current m, so the final o is the softmax's. α ≤ 1 always, and every
exponent is ≤ 0: nothing overflows. Finally keep the LOG-SUM-EXP of each row,
    lse = m + log l = log Σ_j e^(s_j)          (one number per query)
since the true weight of any key is then p_j = e^(s_j − lse): that is all the backward needs.

The backward from the log-sum-exp (FlashAttention-2)
Lesson 8's backward, with D_i = Σ_j dP_ij P_ij:
    dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − D),   dQ = dS K · scale,   dK = dSᵀ Q · scale
It needs P only one block at a time, and P_B = exp(S_B − lse) recomputes a block from Q, K_B
and the saved lse: one more Q K_Bᵀ product, no T × T memory. D needs every P of the row -- but
    D_i = Σ_j dP_ij P_ij = Σ_j (dO_i · v_j) P_ij = dO_i · Σ_j P_ij v_j = dO_i · O_i,
so D = rowsum(dO ∘ O), (..., L, 1), from the saved output, before the loop. Then each block
gives its own dV_B and dK_B, and adds its share to dQ.

Blocks, causality and shapes in this code
FlashAttention's GPU kernels cut both the queries and the keys into tiles that fit a core's
fast memory. Query rows are independent of each other, so here all the queries go at once --
one matrix product per key block -- and only the keys are walked block by block: a block's
scores are (..., L, b), O(T · b) memory. Causal attention (query i sees keys j ≤ i, torch's
is_causal, also when L ≠ S) skips the work above the diagonal: for the key block starting at
position start only the rows start.. can see any of it, so _block_scores slices the queries to
rows start.. (the rows above see none of that block and are left out, not masked), and blocks
with start ≥ L are skipped entirely. Inside the block the first b of those rows see only the
keys up to their own position: those scores get −inf (a mask of triu(1) on the block).

What you write (minimod/nn/flash_attention.py)
flash_attention (given) checks the shapes and block_size, picks scale = 1/√d when not given and
calls FlashAttention through run (lesson 8: forward alone under no_grad).
_block_scores(query, key, start, is_causal, scale, dtype): the scores (..., L, b) of the key
block key (..., b, d) that starts at position start -- (..., L − start, b) when causal, with
the −inf triangle -- in dtype (the compute dtype, at least float32). Forward and backward both
call it.
FlashAttention.forward (its given first lines set ctx.dtypes, ctx.is_causal, ctx.scale and
ctx.block_size, the compute dtype, the row shape rows = (batch of Q and K, L, 1) and the
output's batch): the loop of the online softmax over blocks of block_size keys with the
running row_max, row_sum and output above, updating only rows first.. (start when causal, else
0); then O = õ / l in the value's dtype and lse = m + log l (..., L, 1), then
    ctx.save_for_backward(query, key, value, output, log_sum_exp)     in this order
and return the output. Nothing of size L × S is saved: tests/test_flash_attention.py checks
every saved tensor with a hook.
FlashAttention.backward (the saved tensors unpacked, cast to the products' dtype, and the
broadcast batch are given): D, zero gradients (batch, L or S, d) in the compute dtype, the
loop over the same blocks: recompute P_B = exp(S_B − lse), then dV_B, dP_B, dS_B, add
dS_B K_B · scale to rows first.. of dQ, dK_B = dS_Bᵀ Q · scale; and finally each gradient
summed back to its input's shape (sum_to_size: batch axes broadcast as in lesson 8) and cast to
its input's dtype.

A worked example with 2 blocks
d = 1 (scale = 1), one query q = 1, keys k = (1, 0 | 3, 1), values v = (10, 0 | 20, 5), blocks
of 2. The scores are the keys: s = (1, 0 | 3, 1).
  block 1: m = 1, p = (e⁰, e⁻¹) = (1, 0.3679), l = 1.3679, õ = 10 · 1 + 0 · 0.3679 = 10
  block 2: m' = max(1, 3) = 3, α = e^(1 − 3) = 0.1353, p = (e⁰, e⁻²) = (1, 0.1353)
           l = 0.1353 · 1.3679 + 1.1353 = 1.3205
           õ = 0.1353 · 10 + 20 · 1 + 5 · 0.1353 = 22.030
  o = 22.030 / 1.3205 = 16.684;   lse = 3 + log 1.3205 = 3.278
Check: softmax(1, 0, 3, 1) = (0.1025, 0.0377, 0.7573, 0.1025), and 1.025 + 0 + 15.146 + 0.512
= 16.684. Without α (õ = 10 + 20 + 0.677 = 30.68, l = 1.3679 + 1.1353 = 2.503) you get 12.26.
Backward with dO = 1: D = dO · o = 16.684; P = exp(s − 3.278) = (0.1025, 0.0377 | 0.7573,
0.1025) -- the true weights, recomputed per block; dV = P; dP = dO v = (10, 0 | 20, 5);
dS = P ∘ (dP − D) = (−0.6850, −0.6290 | 2.5115, −1.1975) (it sums to 0, as in lesson 8);
dK = dS · q · scale = dS; dQ = Σ dS_j k_j · scale = −0.685 + 0 + 7.535 − 1.197 = 5.652.

What it costs, measured
benchmarks/attention_memory.py: peak memory of one forward + backward, B = 1, H = 4, D = 64,
float32, not causal, on a CPU (growth of the resident set, bench.py's method; 1 thread):
    T       one (T, T) matrix   lesson 8's Attention   flash_attention   torch F.sdpa
    512            4 MiB               13 MiB               13 MiB            3 MiB
    2048          64 MiB              197 MiB               30 MiB           12 MiB
    8192        1024 MiB             3090 MiB              122 MiB           58 MiB
At T = 512 both minimod paths sit on the method's floor (allocator and thread buffers). Then
lesson 8's path grows with T² -- three T × T matrices at its peak: P, and dP and dP ∘ P in the
backward -- and the blocked one with T: at T = 8192 it needs 4% of lesson 8's memory. torch's
own scaled_dot_product_attention runs the same algorithm as one fused C++ kernel on the CPU,
with smaller blocks and no per-block temporaries. Time stays about the same (the recomputed
Q K_Bᵀ costs one more product in the backward; a single thread: 16 s against 15 s at T = 8192),
since each block's products are large and the Python loop runs only T / block times.

Classic pitfalls
- Forgetting to rescale the running output: l gets α but õ does not (or the reverse). One
  block hides it (α = 0 on the first); any growing maximum shows it -- 12.26 instead of 16.684
  in the example above.
- −inf rows under a causal mask. Were the rows above a block masked instead of sliced away,
  such a row's block max would be −inf, and with m = −inf at the start α = exp(−inf − (−inf)) =
  NaN, which then spreads through l, õ and every gradient. Slicing to rows start.. keeps at
  least one visible key (the one at position start) in every row of a block.
- The 1/√d scale in the backward: S = Q Kᵀ · scale, so dQ = dS K · scale and dK = dSᵀ Q · scale.
  Without it both are √d times too large (the tests name the factor); and the recomputed
  P_B = exp(S_B − lse) must use the SCALED scores, as the forward did.
- Recomputing P from the raw scores with the row max m instead of lse: exp(S − m) is not
  normalised (each row sums to l, not 1).
- Computing D as rowsum(dP ∘ P) inside the loop: it needs the whole row's P. rowsum(dO ∘ O)
  gives it before the loop.
- Overwriting dQ per block: every key block adds to every query's gradient (+=), while dK_B and
  dV_B belong to one block and are written once.
- Saving the scores or P "just for the backward": the memory is then T² again.

Run it
Your flash_attention and lesson 8's attention at T = 4096 (causal, 4 heads of 64), with what
each keeps for the backward pass, counted by a saved-tensors hook:
    python -c "if 1:
        import torch
        from torch.autograd.graph import saved_tensors_hooks
        from minimod.nn.functional import scaled_dot_product_attention as lesson8
        from exercises.e34_flash_attention import flash_attention
        def keep(t):
            kept.append(t.numel() * t.element_size())
            return t
        q, k, v = (torch.randn(1, 4, 4096, 64, requires_grad=True) for _ in range(3))
        outs = []
        for name, attend in (('lesson 8', lesson8), ('yours', flash_attention)):
            kept = []
            with saved_tensors_hooks(keep, lambda t: t):
                outs.append(attend(q, k, v, is_causal=True))
            outs[-1].sum().backward()
            print(name, 'keeps', round(sum(kept) / 2**20), 'MiB for the backward pass')
        print('same output:', torch.allclose(*outs, atol=1e-5))"
prints lesson 8 keeps 268 MiB for the backward pass (Q, K, V: 12 MiB, P: 256 MiB), then yours
keeps 16 MiB for the backward pass (Q, K, V, O and lse), then same output: True (about 20 s on
2 shared cores). The table above, peak memory included: python benchmarks/attention_memory.py
(about a minute; --causal for causal attention).
flash_attention has no mask or dropout yet: BERT's key-padding mask added to each block is the
natural next step.
Next: lesson 35 (One-stage detection: centres, assignment, NMS and average precision)

Check it: minimod exercises check 34
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e34_flash_attention import flash_attention
    >>> q = torch.tensor([[[1.0]]], requires_grad=True)
    >>> k = torch.tensor([[[1.0], [0.0], [3.0], [1.0]]], requires_grad=True)
    >>> v = torch.tensor([[[10.0], [0.0], [20.0], [5.0]]], requires_grad=True)
    >>> out = flash_attention(q, k, v, block_size=2)
    >>> round(out.item(), 3)
    16.684
    >>> out.backward()
    >>> round(q.grad.item(), 3), [round(g, 4) for g in k.grad.flatten().tolist()]
    (5.652, [-0.685, -0.629, 2.5115, -1.1975])
"""
