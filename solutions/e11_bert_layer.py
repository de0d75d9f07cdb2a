"""Lesson 11: BERT's post-LayerNorm encoder layer

The idea
BERT (Devlin et al. 2018) is the encoder of the original transformer: every token attends to
every token (no causal mask; only padding is hidden), and each sub-layer is followed by its
LayerNorm -- post-LN, as in Vaswani et al. 2017:

    a = LayerNorm(x + dropout(W_o · SelfAttention(x)))          BertAttention
    y = LayerNorm(a + dropout(W_2 · gelu(W_1 · a)))             BertIntermediate, then output

Compare GPT's pre-LN block (lesson 10): x = x + f(LN(x)). Post-LN normalises the residual
stream itself after every addition, so each layer's output has mean 0 and variance 1 per token
(before γ and β). Deep post-LN stacks need a learning-rate warmup to train, but it is the order
BERT's checkpoints were trained with: a real BERT only reproduces with exactly this order.

The layout: Hugging Face's names, so real checkpoints load by name
    attention.self.query / .key / .value   three Linear(H, H): separate q, k, v projections
                                           (GPT fuses them into c_attn, torch's
                                           MultiheadAttention stacks them in in_proj_weight)
    attention.output.dense, .LayerNorm     BertSelfOutput(config, H)
    intermediate.dense                     Linear(H, intermediate_size), then the exact GELU
    output.dense, output.LayerNorm         BertSelfOutput(config, intermediate_size)
One class, BertSelfOutput(config, in_features), serves both "output" sub-layers: dense from
in_features to H, dropout, add the residual, LayerNorm (eps = layer_norm_eps, 1e-12 in BERT).
The layer is torch.nn.TransformerEncoderLayer(norm_first=False, activation="gelu"): the tests
split torch's in_proj_weight (3H, H) into query, key and value, and compare outputs and
gradients.

Shapes and the mask
x (B, T, H) -> q, k, v with rearrange(t, "b t (h d) -> b h t d", h=num_heads): (B, heads, T, D),
D = H / heads. scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=...), with
dropout_p = self.dropout_p only in training, then "b h t d -> b t (h d)" back to (B, T, H).
mask is None or boolean (B, 1, 1, T), True = attend (BERT builds it from attention_mask in
lesson 12): it broadcasts over the heads and the queries, so every query ignores padded keys.

What you write
BertSelfAttention (its three projections and its forward), BertSelfOutput.forward,
BertAttention.forward and BertLayer.forward. BertIntermediate is given.

Classic pitfalls
- Pre-LN by habit: a LayerNorm before the attention. BERT normalises after the addition.
- The wrong residual: BertAttention adds its input x; the second sub-layer adds a (the
  attention sub-layer's output), not the layer's input x.
- Dropout on the attention weights in eval mode.
- Hiding padded queries instead of padded keys: the (B, 1, 1, T) mask runs over the keys.
- Naming the projections q, k, v or fusing them: Hugging Face checkpoints would not load.

Check it: minimod exercises check 11
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod.models.bert import BERTConfig
    >>> from exercises.e11_bert_layer import BertLayer
    >>> config = BERTConfig(hidden_size=8, num_attention_heads=2, intermediate_size=16)
    >>> layer = BertLayer(config).eval()
    >>> len(layer.state_dict()), "attention.self.query.weight" in layer.state_dict()
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
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        # BEGIN YOUR CODE
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
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
        return rearrange(y, "b h t d -> b t (h d)")
        # END YOUR CODE


class BertSelfOutput(nn.Module):
    """Project, dropout, add the residual, then LayerNorm (post-LN)."""

    def __init__(self, config: BERTConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        # BEGIN YOUR CODE
        return self.LayerNorm(residual + self.dropout(self.dense(x)))
        # END YOUR CODE


class BertAttention(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)  # the name Hugging Face's checkpoints use
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # BEGIN YOUR CODE
        return self.output(self.self(x, mask), x)
        # END YOUR CODE


class BertIntermediate(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)  # "BertOutput" in HF

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN YOUR CODE
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)
        # END YOUR CODE
