"""Lesson 11: BERT's post-LayerNorm encoder layer

The idea
BERT (Devlin et al. 2018) is the encoder of the original transformer: every token attends to
every token (no causal mask; only padding is hidden), and each sub-layer is followed by its
LayerNorm -- post-LN, as in Vaswani et al. 2017:

    a = ln_1(x + dropout(attn(x)))          attn: BertSelfAttention, W_o (out) included
    y = ln_2(a + dropout(mlp(a)))           mlp: BertMLP, down(gelu(up(a)))

Compare GPT's pre-LN block (lesson 10): x = x + f(LN(x)). Post-LN normalises the residual
stream itself after every addition, so each layer's output has mean 0 and variance 1 per token
(before γ and β). Deep post-LN stacks need a learning-rate warmup to train, but it is the order
BERT's checkpoints were trained with: a real BERT only reproduces with exactly this order.

The layout: names for the reader, as in GPT
    attn.query / .key / .value   three Linear(H, H): separate q, k, v projections (GPT fuses
                                 them into c_attn, torch's MultiheadAttention stacks them in
                                 in_proj_weight)
    attn.out                     Linear(H, H): mixes the heads' outputs back together (W_o)
    ln_1                         LayerNorm(H) after the attention's residual addition
    mlp.up, mlp.down             Linear(H, intermediate_size), the exact GELU, Linear back to H
    ln_2                         LayerNorm(H) after the MLP's residual addition
Both LayerNorms use eps = layer_norm_eps (1e-12 in BERT); one Dropout(hidden_dropout_prob)
acts on each sub-layer's output before the addition.
Hugging Face's checkpoints keep the module tree of Google's original code instead
(attention.self.query, attention.output.dense, attention.output.LayerNorm, intermediate.dense,
output.dense, output.LayerNorm): minimod.models.weights.hf_bert_to_minimod renames every key
by an explicit table -- never by position -- and the strict load checks every shape.
The layer is torch.nn.TransformerEncoderLayer(norm_first=False, activation="gelu"): the tests
split torch's in_proj_weight (3H, H) into query, key and value, and compare outputs and
gradients.

Shapes and the mask
x (B, T, H) -> q, k, v with rearrange(t, "b t (h d) -> b h t d", h=num_heads): (B, heads, T, D),
D = H / heads. scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=...), with
dropout_p = self.dropout_p only in training, then "b h t d -> b t (h d)" back to (B, T, H) and
through out. mask is None or boolean (B, 1, 1, T), True = attend (BERT builds it from
attention_mask in lesson 12): it broadcasts over the heads and the queries, so every query
ignores padded keys.

What you write
BertSelfAttention (its four projections in BertSelfAttention.__init__: self.query, self.key,
self.value and self.out, each a Linear(hidden_size, hidden_size); and its forward) and
BertLayer.forward. BertMLP is
given.

Classic pitfalls
- Pre-LN by habit: a LayerNorm before the attention. BERT normalises after the addition.
- The wrong residual: ln_1 normalises x + attention; the MLP's residual adds a (ln_1's output),
  not the layer's input x.
- Normalising the sub-layer's output alone, without the residual: ln_1(attn(x)).
- Forgetting out after merging the heads: the shapes still fit, only the values are wrong.
- Dropout on the attention weights in eval mode.
- Hiding padded queries instead of padded keys: the (B, 1, 1, T) mask runs over the keys.

Run it
Once `minimod exercises check 11` passes, a tiny BERT pretrains (masked words in synthetic
reviews) with your post-LayerNorm encoder layer (--use-mine swaps in every lesson that passes
and says which):
    minimod pretrain bert --use-mine --out runs/e11
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.48,
perplexity 32.5" on masked words of held-out reviews (about 20 s on 2 shared cores; every
run needs a new --out).
Next: lesson 12 (BERT: embeddings, pooler and masked language modelling)

Check it: minimod exercises check 11
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod.models.bert import BERTConfig
    >>> from exercises.e11_bert_layer import BertLayer
    >>> config = BERTConfig(hidden_size=8, num_attention_heads=2, intermediate_size=16)
    >>> layer = BertLayer(config).eval()
    >>> len(layer.state_dict()), "attn.query.weight" in layer.state_dict()
    (16, True)
    >>> x = torch.randn(1, 5, 8)
    >>> y = layer(x)
    >>> tuple(y.shape), bool(y.mean(-1).abs().max() < 1e-5)  # post-LN: every token normalised
    ((1, 5, 8), True)
    >>> attend = torch.tensor([True, True, True, False, False])[None, None, None, :]
    >>> torch.allclose(layer(x, attend)[:, :3], layer(x[:, :3]), atol=1e-6)  # padding is unseen
    True
"""

# Lesson 11 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import torch
from einops import rearrange

from minimod import nn
from minimod.models.bert import BERTConfig
from minimod.nn import functional as F

# ---- from minimod/models/bert.py ----------------------------------------


class BertSelfAttention(nn.Module):
    """Multi-head self-attention over every position: x (B, T, H), mask None or boolean
    (B, 1, 1, T) with True = attend -> (B, T, H), the heads' outputs projected by ``out``."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        # BEGIN YOUR CODE
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        # END YOUR CODE
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # BEGIN YOUR CODE
        q, k, v = (
            rearrange(layer(x), "b t (h d) -> b h t d", h=self.num_heads)
            for layer in (self.query, self.key, self.value)
        )
        dropout_p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return self.out(rearrange(y, "b h t d -> b t (h d)"))
        # END YOUR CODE


class BertMLP(nn.Module):
    """x (B, T, H) -> down(gelu(up(x))) (B, T, H), through intermediate_size features."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = nn.GELU()
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class BertLayer(nn.Module):
    """Post-LayerNorm: transform, dropout, add back, then normalise the sum. x (B, T, H) ->
    (B, T, H); mask as in ``BertSelfAttention``."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.attn = BertSelfAttention(config)
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = BertMLP(config)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN YOUR CODE
        x = self.ln_1(x + self.dropout(self.attn(x, mask)))
        return self.ln_2(x + self.dropout(self.mlp(x)))
        # END YOUR CODE
