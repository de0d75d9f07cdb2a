TEXT = """Lesson 8: Scaled dot-product attention, masks and multi-head attention

The idea
In attention every position (a query) looks at the positions it is allowed to see (the keys)
and takes a weighted average of their values; the weights say how well query and key match:

    scores  = Q Kᵀ · scale            Q (..., L, d), K (..., S, d)  ->  (..., L, S)
    weights = softmax(scores + mask)  over the LAST axis (the keys): each row sums to 1
    output  = weights V               V (..., S, d_v)  ->  (..., L, d_v)

L queries, S keys and values; "..." is any batch shape (batch, heads), broadcast between Q, K, V.

Why scale = 1/√d
If the entries of q and k are independent with variance 1, q · k sums d such products: its
variance is d. Scores of size ±√d saturate the softmax (one weight near 1, the rest near 0) and
its gradients vanish. Multiplying by 1/√d brings the scores back to variance 1. A `scale`
argument, when given, replaces 1/√d.

Masks
- boolean, scaled_dot_product_attention's convention: True = MAY attend. _additive_mask turns it
  into 0 where True and −inf where False, added to the scores: e^(−inf) = 0. A float mask is
  added as it is (−inf hides a key, finite values bias the scores).
- is_causal: query i sees keys j ≤ i -- the diagonal too, a token sees itself.
  causal_mask(L, S, offset) is True where j ≤ i + offset (torch.tril does it); with a KV cache,
  offset = the number of keys already cached, so new query i still sees all that came before.
- A query whose keys are ALL masked: softmax of a row of −inf is 0/0 = NaN, and one NaN spreads
  to every gradient. masked_softmax gives such a row weights 0 (output 0): subtract a finite row
  max (a row of −inf has max −inf: use 0 there), exponentiate, divide by the sum -- or by 1
  where the sum is 0. It works IN PLACE (sub_, exp_, div_ on the scores it is given): its only
  caller, Attention's forward, owns its scores and writes the backward by hand. exp_ is
  minimod.nn.activation.exp_ (lesson 3), e^x in place through exp2: twice as fast on the CPU.
Dropout (only when dropout_p > 0) drops attention weights before weights V. It is NOT done in
scaled_dot_product_attention (given) nor by calling dropout(): you draw the keep-mask yourself
in Attention.forward, because the hand-written backward needs that very mask (see below).

A worked example you can check by hand: d = 4 (scale = 1/√4 = 1/2), one query q = (2, 0, 0, 0),
two keys k₁ = (1, 0, 0, 0), k₂ = 0 and one-number values v₁ = 10, v₂ = 0. Scores
(q·k₁, q·k₂) / 2 = (1, 0); weights softmax(1, 0) = (e, 1) / (e + 1) = (0.731, 0.269); output
0.731 · 10 + 0.269 · 0 = 7.31. A causal mask hiding k₂ would give weights (1, 0), output 10.

The attention's backward pass by hand: Attention
scaled_dot_product_attention (given) checks its arguments, builds the causal mask, picks the
default scale and computes through Attention, a torch.autograd.Function. In Attention.forward:
scores = Q Kᵀ (a new tensor, so everything after edits it in place: each (..., L, S) copy is
as large as P), times scale, + _additive_mask(mask), the masked softmax: P. With
dropout_p > 0 draw keep = torch.rand_like(P) >= dropout_p (boolean, (..., L, S), as dropout()
does), and D = keep / (1 − p) (0 when p = 1); without dropout D = 1. O = (P ∘ D) V; with
need_weights it returns (O, W = P ∘ D) -- the weights MultiheadAttention hands back. The
backward's given first lines read exactly this from ctx, so your forward must leave it there:
    ctx.save_for_backward(query, key, value, P, keep)   P (..., L, S) in the compute dtype
        (at least float32); keep the boolean keep-mask (..., L, S), or None when dropout_p = 0
        (save_for_backward takes None, and the backward then skips the mask)
    ctx.scale       the float the scores were multiplied by (1/√d or the given scale)
    ctx.dropout_p   the float p, for the factor 1/(1 − p) that rebuilds D from keep
(ctx.dtypes and ctx.mask_shape are set by the given first lines.) Not the scores, the
exponentials, the mask: P is enough. Backward, given dO (and dW when the weights were
returned; 0 otherwise):
    dV = (P ∘ D)ᵀ dO          dP = (dO Vᵀ + dW) ∘ D
    dS = P ∘ (dP − rowsum(dP ∘ P))        the softmax's Jacobian applied row by row
    dQ = dS K · scale         dK = dSᵀ Q · scale          d(float mask) = dS
Where dS comes from: in one row P_j = e^(S_j) / Σ_k e^(S_k), so ∂P_j/∂S_i = P_j ([i = j] − P_i)
(the numerator moves only for j = i, the denominator for every j). The chain rule sums over j:
    dS_i = Σ_j dP_j P_j ([i = j] − P_i) = P_i dP_i − P_i Σ_j dP_j P_j = P_i (dP_i − Σ_j dP_j P_j)
-- never build the (S, S) Jacobian, one row-sum does. Compute the middle form over dP itself:
dP ∘= P, then subtract P · rowsum(P ∘ dP) with addcmul_ -- a temporary dP ∘ P would be one more
(..., L, S) tensor, as large as P. (rowsum(dP ∘ P) also equals rowsum(dO ∘ O) when dW = 0:
Σ_j P_j D_j Σ_d dO_d V_jd = Σ_d dO_d O_d; that needs O kept too, and fails with need_weights.)
In the example above with dO = 1:
dP = (v₁, v₂) = (10, 0), rowsum(dP ∘ P) = 7.31 (the output), dS = (0.731 · 2.69, 0.269 · (−7.31))
= (1.966, −1.966): a softmax's input gradient always sums to 0 over the row.
Each gradient is summed back to its input's (broadcast) shape with sum_to_size. Rows that
were fully masked have P = 0, so they pass no gradient. The softmax runs in at least float32.

Multi-head attention, torch.nn.MultiheadAttention's layout (batch_first=True here)
H heads attend in their own subspaces of size D = E / H; their outputs are concatenated and
mixed by out_proj (Linear(E, E)):
    q, k, v = x W_qᵀ + b_q, ...     in_proj_weight (3E, E) stacks W_q, W_k, W_v; in_proj_bias (3E,)
    rearrange(q, "b t (h d) -> b h t d", h=H)           (N, L, E) -> (N, H, L, D)
    o, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)   (N, H, L, S)
    output  = out_proj(rearrange(o, "b h t d -> b t (h d)"))                      (N, L, E)
The weights are asked for only when forward's need_weights is True (torch's default); else the
call returns o alone. Dropout (training only) goes to scaled_dot_product_attention's dropout_p.
For self-attention (query is key is value) one matmul with the whole (3E, E) matrix, chunked in
three, makes q, k and v. Init: ONE xavier_uniform_ over the stacked (3E, E) matrix (fan_in E,
fan_out 3E, as torch), both biases zero; out_proj.weight keeps Linear's default.
MultiheadAttention's boolean masks have the OPPOSITE polarity: key_padding_mask (N, S) is True
where a key is padding, attn_mask (L, S) or (N·H, L, S) is True where attention is NOT allowed.
_mask turns both into one additive mask of shape (N, H or 1, L or 1, S), or None.
add_bias_kv (parameters bias_k, bias_v (1, 1, E), xavier_normal_) appends one learned key and
value to every sequence, add_zero_attn one all-zero key and value per head; the mask gets a 0
column for each (torch's options, given in _append_keys).

What you write
causal_mask, masked_softmax, _additive_mask, Attention's forward and backward, and
MultiheadAttention's reset_parameters, _project, _mask and _attend (the heads, from the
projections to out_proj). scaled_dot_product_attention (the argument checks, the causal mask,
the default scale), bias_k / bias_v's init, _append_keys, the (L, N, E) and unbatched layouts
of forward and the averaging of its returned weights are given.

Classic pitfalls
- Scaling by 1/d instead of 1/√d, or ignoring `scale` when it is given.
- softmax over the queries (dim=-2): the rows over the keys must sum to 1.
- A causal mask that hides the diagonal (tril(-1)), or is True where attention is forbidden.
- masked_fill(mask, −inf) with a "True = allowed" mask: that hides exactly the allowed keys.
- NaN for a fully masked row (a sequence of padding, a query before every key).
- "b t (d h)" instead of "b t (h d)": each head owns a contiguous block of D features.
- key_padding_mask read like scaled_dot_product_attention's mask (True = attend).

Run it
Once `minimod exercises check 8` passes, every attention layer of a tiny GPT runs your
scaled_dot_product_attention, causal mask and hand-written backward while it pretrains on
Python's documentation (--use-mine swaps in every lesson that passes and says which):
    minimod pretrain gpt --use-mine --out runs/e08
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.06,
perplexity 21.4" (about 20 s on 2 shared cores; every run needs a new --out).
Next: lesson 9 (Positional encodings: sinusoidal, learned and rotary (RoPE))

Check it: minimod exercises check 8
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e08_attention import MultiheadAttention, causal_mask
    >>> from exercises.e08_attention import scaled_dot_product_attention as attend
    >>> causal_mask(3).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    >>> q = k = torch.zeros(1, 3, 4)
    >>> v = torch.tensor([[[0.0], [1.0], [2.0]]])
    >>> attend(q, k, v, is_causal=True).flatten().tolist()
    [0.0, 0.5, 1.0]
    >>> allowed = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    >>> attend(q, k, v, attn_mask=allowed).flatten().tolist()
    [0.0, 0.0, 1.0]
    >>> mha = MultiheadAttention(embed_dim=8, num_heads=2)
    >>> x = torch.randn(2, 5, 8)
    >>> output, weights = mha(x, x, x, average_attn_weights=False)
    >>> tuple(output.shape), tuple(weights.shape)
    ((2, 5, 8), (2, 2, 5, 5))
"""
