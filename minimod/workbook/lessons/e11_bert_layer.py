TEXT = """Lesson 11: BERT's post-LayerNorm encoder layer

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
