"""Lesson 8: Scaled dot-product attention, masks and multi-head attention

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

# Lesson 8 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import describe, expect_trailing_shape
from minimod.nn._function import run
from minimod.nn.activation import exp_
from minimod.nn.attention import _check_arguments
from minimod.nn.linear import Linear, linear
from minimod.nn.module import Module, Parameter

# ---- from minimod/nn/attention.py ----------------------------------------


def causal_mask(
    length: int, source_length: int | None = None, offset: int = 0, device=None
) -> torch.Tensor:
    """Boolean (L, S) mask, True where query i may attend to key j: j ≤ i + offset (the diagonal
    too). offset = the number of earlier keys, e.g. those already in a KV cache."""
    source_length = length if source_length is None else source_length
    # BEGIN YOUR CODE
    return torch.ones(length, source_length, dtype=torch.bool, device=device).tril(offset)
    # END YOUR CODE


def masked_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, IN PLACE: overwrites ``scores`` (..., L, S) with the weights
    and returns it. −inf scores get weight 0. A row whose scores are all −inf (every key masked)
    gets all-zero weights, so its output is 0 -- not NaN. In place because its one caller,
    Attention's forward, owns its scores and writes the backward by hand: no autograd runs
    through here, and the weights take no memory beyond the scores'. (``exp_`` is e^x in place,
    through exp2: the faster of the two on the CPU.)"""
    # BEGIN YOUR CODE
    row_max = scores.amax(-1, keepdim=True)
    row_max.masked_fill_(torch.isinf(row_max), 0.0)  # a row of −inf has max −inf: use 0
    weights = exp_(scores.sub_(row_max))  # exp(−inf) = 0
    total = weights.sum(-1, keepdim=True)
    return weights.div_(total.masked_fill_(total == 0, 1.0))
    # END YOUR CODE


def _additive_mask(attn_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask (True = attend) as 0 / −inf to add to the scores; a float mask as is."""
    # BEGIN YOUR CODE
    if attn_mask.dtype == torch.bool:
        zeros = torch.zeros(attn_mask.shape, dtype=dtype, device=attn_mask.device)
        return zeros.masked_fill(~attn_mask, float("-inf"))
    return attn_mask.to(dtype)
    # END YOUR CODE


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    need_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.functional.scaled_dot_product_attention's semantics: a boolean ``attn_mask`` is
    True where attention is allowed; a float mask is added to the scores; ``is_causal`` hides
    the future (keys after the query's position). Dropout (on the weights) only if dropout_p > 0.

    ``need_weights=True`` (minimod's addition, for MultiheadAttention) returns (output, weights):
    the weights (..., L, S) after dropout, those the output was computed with; gradients flow
    through both.

    Computed by ``Attention``, whose backward pass is written by hand: it keeps only the
    weights (not the scores, the masked scores, the exponentials, ...), and takes a few large
    tensor operations where autograd would replay every step of the forward.
    """
    _check_arguments(query, key, attn_mask, dropout_p, is_causal)
    if is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2], device=query.device)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return run(Attention, query, key, value, attn_mask, scale, dropout_p, need_weights)


class Attention(torch.autograd.Function):
    """softmax(Q Kᵀ · scale + mask) V with a hand-written backward pass.

    Forward, with P the weights (..., L, S) and D the dropout mask scaled by 1/(1 − p)
    (D = 1 without dropout):
        S = Q Kᵀ · scale (+ mask),   P = masked_softmax(S),   O = (P ∘ D) V
    and, if need_weights, also returns W = P ∘ D. Backward, given dO (..., L, d_v) and dW
    (0 without need_weights):
        dV = (P ∘ D)ᵀ dO                                   (..., S, d_v)
        dP = (dO Vᵀ + dW) ∘ D                               (..., L, S)
        dS = P ∘ (dP − rowsum(dP ∘ P))    the softmax's Jacobian, one row at a time
           = P ∘ dP − P ∘ rowsum(P ∘ dP)  (so it is computed: in place over dP)
        dQ = dS K · scale,   dK = dSᵀ Q · scale,   d(float mask) = dS
    Gradients of broadcast batch axes are summed back to each input's shape. Only Q, K, V, P
    (and the dropout mask) are kept for the backward pass. The softmax runs in at least
    float32, also when autocast computes Q Kᵀ in bfloat16. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, query, key, value, attn_mask, scale, dropout_p, need_weights):
        ctx.dtypes = (query.dtype, key.dtype, value.dtype)
        ctx.mask_shape = None if attn_mask is None else attn_mask.shape
        # BEGIN YOUR CODE
        scores = query @ key.transpose(-2, -1)  # (..., L, S), a new tensor: edit it in place
        compute = torch.promote_types(scores.dtype, torch.float32)
        scores = scores.to(compute).mul_(scale)  # .to copies only a 16-bit product
        if attn_mask is not None:
            scores.add_(_additive_mask(attn_mask, compute))
        weights = masked_softmax(scores)
        keep = None
        dropped = weights
        if dropout_p > 0.0:
            keep = torch.rand_like(weights) >= dropout_p  # as dropout(): keep with 1 − p
            dropped = weights * keep * (0.0 if dropout_p == 1.0 else 1.0 / (1.0 - dropout_p))
        dropped = dropped.to(value.dtype)
        output = dropped @ value
        ctx.save_for_backward(query, key, value, weights, keep)
        ctx.scale, ctx.dropout_p = scale, dropout_p
        return (output, dropped) if need_weights else output
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, grad_returned_weights=None):
        query, key, value, weights, keep = ctx.saved_tensors
        scale, dropout_p = ctx.scale, ctx.dropout_p
        # The products in the inputs' dtype (bfloat16 under autocast, as autocast's own
        # products would be), the softmax's backward in the weights' (at least float32).
        low = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
        query, key, value, grad_output = (t.to(low) for t in (query, key, value, grad_output))
        # BEGIN YOUR CODE
        factor = 0.0 if dropout_p == 1.0 else 1.0 / (1.0 - dropout_p)
        dropped = weights if keep is None else weights * keep * factor
        grad_value = dropped.to(low).transpose(-2, -1) @ grad_output
        grad_weights = (grad_output @ value.transpose(-2, -1)).to(weights.dtype)
        if grad_returned_weights is not None:  # need_weights: the returned P ∘ D was used
            grad_weights.add_(grad_returned_weights.to(weights.dtype))
        if keep is not None:
            grad_weights.mul_(keep).mul_(factor)
        # The softmax's backward, per row: dS = P ∘ (dP − Σ_j dP_j P_j), spelled
        # P ∘ dP − P · Σ_j (P ∘ dP)_j and written over dP: no second (..., L, S) tensor.
        grad_scores = grad_weights.mul_(weights)
        grad_scores.addcmul_(weights, grad_scores.sum(-1, keepdim=True), value=-1.0)
        grad_low = grad_scores.to(low)
        grad_query = (grad_low @ key).mul_(scale)
        grad_key = (grad_low.transpose(-2, -1) @ query).mul_(scale)
        grads = [grad_query, grad_key, grad_value]
        grads = [
            g.sum_to_size(shape).to(dtype)
            for g, shape, dtype in zip(
                grads, (query.shape, key.shape, value.shape), ctx.dtypes, strict=True
            )
        ]
        grad_mask = None
        if ctx.needs_input_grad[3]:
            grad_mask = grad_scores.sum_to_size(ctx.mask_shape)
        return (*grads, grad_mask, None, None, None)
        # END YOUR CODE


# ---- from minimod/nn/multihead.py ----------------------------------------


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention's layer and state_dict layout: ``in_proj_weight`` (3E, E)
    stacks the query, key and value projections, ``in_proj_bias`` (3E,), ``out_proj`` Linear;
    with ``add_bias_kv``, ``bias_k`` and ``bias_v`` (1, 1, E): one more (projected) key and
    value appended to every sequence; with ``add_zero_attn``, one more all-zero key and value
    per head after those.

    forward(query (N, L, E), key (N, S, E), value (N, S, E)) -> (output (N, L, E), weights)
    with batch_first=True (the default here; torch's default is False). Masks as in torch:
    ``key_padding_mask`` (N, S) True = padding (ignored); ``attn_mask`` (L, S) or (N·H, L, S)
    True = NOT allowed, or a float mask added to the scores. The weights, (N, L, S') averaged
    over the heads or (N, H, L, S') per head (S' = S plus the appended keys), are computed only
    when need_weights=True. Unlike torch, a query whose keys are all masked gets a zero output
    (out_proj's bias) instead of NaN.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        batch_first: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"MultiheadAttention: embed_dim {embed_dim} is not divisible by "
                f"num_heads {num_heads}"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim, self.batch_first = embed_dim // num_heads, batch_first
        self.add_zero_attn = add_zero_attn
        factory = dict(device=device, dtype=dtype)
        self.in_proj_weight = Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        if bias:
            self.in_proj_bias = Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(torch.empty(1, 1, embed_dim, **factory))
            self.bias_v = Parameter(torch.empty(1, 1, embed_dim, **factory))
        else:
            self.bias_k = self.bias_v = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN YOUR CODE
        # One xavier draw over the stacked (3E, E) matrix, as torch: fan_in E, fan_out 3E.
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        # END YOUR CODE
        if self.bias_k is not None:  # as torch: xavier_normal_, fan_in = fan_out = E
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        """(q, k, v), each (N, T, E): rows 0..E−1 of in_proj_weight project the query,
        E..2E−1 the key, 2E..3E−1 the value."""
        # BEGIN YOUR CODE
        weight, bias = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:  # self-attention: one matmul for all three
            return linear(query, weight, bias).chunk(3, dim=-1)
        weights = weight.chunk(3)
        biases = bias.chunk(3) if bias is not None else (None, None, None)
        return tuple(
            linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases, strict=True)
        )
        # END YOUR CODE

    def _mask(self, key_padding_mask, attn_mask, batch, length, source_length, dtype):
        """Both masks as one additive (N or 1, H or 1, L or 1, S) tensor, or None."""
        if key_padding_mask is not None and key_padding_mask.shape != (batch, source_length):
            raise ValueError(
                f"{describe(self)}: key_padding_mask must have shape "
                f"(N, S) = {(batch, source_length)}, got {tuple(key_padding_mask.shape)}"
            )
        expected = [(length, source_length), (batch * self.num_heads, length, source_length)]
        if attn_mask is not None and tuple(attn_mask.shape) not in expected:
            raise ValueError(
                f"{describe(self)}: attn_mask must have shape (L, S) or "
                f"(N·num_heads, L, S), i.e. one of {expected}, got {tuple(attn_mask.shape)}"
            )
        # BEGIN YOUR CODE
        mask = None
        if key_padding_mask is not None:  # True = padding: NOT allowed
            mask = _additive_mask(
                ~key_padding_mask if key_padding_mask.dtype == torch.bool else key_padding_mask,
                dtype,
            )[:, None, None, :]
        if attn_mask is not None:  # True = NOT allowed, the opposite of attention's
            extra = _additive_mask(
                ~attn_mask if attn_mask.dtype == torch.bool else attn_mask, dtype
            )
            if extra.dim() == 3:
                extra = extra.view(batch, self.num_heads, length, source_length)
            mask = extra if mask is None else mask + extra
        return mask
        # END YOUR CODE

    def _append_keys(self, k, v, mask):
        """add_bias_kv and add_zero_attn: k, v (N, H, S, D) get bias_k / bias_v (split into the
        heads) and then a zero key and value appended along S; the mask allows the new keys."""
        extra = []
        if self.bias_k is not None:
            extra.append((self.bias_k, self.bias_v))
        if self.add_zero_attn:
            zeros = k.new_zeros(1, 1, self.embed_dim)
            extra.append((zeros, zeros))
        for new_k, new_v in extra:
            new_k, new_v = (
                rearrange(t, "1 1 (h d) -> 1 h 1 d", h=self.num_heads).expand(
                    k.shape[0], -1, -1, -1
                )
                for t in (new_k, new_v)
            )
            k, v = torch.cat([k, new_k], dim=2), torch.cat([v, new_v], dim=2)
        if extra and mask is not None:
            mask = torch.cat([mask, mask.new_zeros(*mask.shape[:-1], len(extra))], dim=-1)
        return k, v, mask

    def _attend(self, query, key, value, mask, need_weights):
        """query (N, L, E), key and value (N, S, E), mask additive or None -> the output
        (N, L, E) and, if need_weights, the attention weights of every head (N, H, L, S)
        (else None)."""
        # BEGIN YOUR CODE
        q, k, v = self._project(query, key, value)
        q, k, v = (rearrange(x, "b t (h d) -> b h t d", h=self.num_heads) for x in (q, k, v))
        k, v, mask = self._append_keys(k, v, mask)
        dropout_p = self.dropout if self.training else 0.0
        attended = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, need_weights=need_weights
        )
        output, weights = attended if need_weights else (attended, None)
        output = rearrange(output, "b h t d -> b t (h d)")
        return self.out_proj(output), weights
        # END YOUR CODE

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        for name, x in (("query", query), ("key", key), ("value", value)):
            expect_trailing_shape(f"{describe(self)} {name}", x, (self.embed_dim,))
        unbatched = query.dim() == 2
        if unbatched:  # (L, E): add a batch axis of 1
            query, key, value = query[None], key[None], value[None]
            key_padding_mask = None if key_padding_mask is None else key_padding_mask[None]
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        batch, length, source_length = query.shape[0], query.shape[1], key.shape[1]
        if is_causal and attn_mask is None:
            attn_mask = ~causal_mask(length, source_length, device=query.device)
        mask = self._mask(key_padding_mask, attn_mask, batch, length, source_length, query.dtype)
        output, weights = self._attend(query, key, value, mask, need_weights)
        if unbatched:
            output = output[0]
        elif not self.batch_first:
            output = output.transpose(0, 1)
        if weights is None:
            return output, None
        weights = weights.mean(dim=1) if average_attn_weights else weights
        return output, weights[0] if unbatched else weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
