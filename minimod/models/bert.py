"""BERT (Devlin et al. 2018): a bidirectional transformer encoder, built from minimod layers.

    input_ids, token_type_ids (B, T)
    -> word + position + token-type embeddings, LayerNorm, dropout     (B, T, H)
    -> num_hidden_layers × post-LayerNorm BertLayer:
           x = ln_1(x + dropout(attn(x)))
           x = ln_2(x + dropout(mlp(x)))          mlp: down(gelu(up(x)))
    -> sequence output (B, T, H); pooler: tanh(W · x[:, 0]) (B, H) for sentence tasks

Every query sees every key except padding (no causal mask). The modules are named for the
reader, as GPT's are: ``encoder.layer.0.attn.query.weight``, ``encoder.layer.0.ln_1.weight``,
``encoder.layer.0.mlp.up.weight``, ``lm_head.decoder.weight``. Hugging Face checkpoints, whose
names mirror the original TensorFlow code (``encoder.layer.0.attention.self.query.weight``),
load through the explicit key map ``minimod.models.weights.hf_bert_to_minimod``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from minimod import nn
from minimod.nn import functional as F


@dataclass
class BERTConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BERTConfig: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )


class BertEmbeddings(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None):
        length = input_ids.shape[1]
        if length > self.max_positions:
            raise ValueError(
                f"BERT: sequence of length {length} is longer than "
                f"max_position_embeddings {self.max_positions}"
            )
        # BEGIN SOLUTION
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(length, device=input_ids.device)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.ln(x))
        # END SOLUTION


class BertSelfAttention(nn.Module):
    """Multi-head self-attention over every position: x (B, T, H), mask None or boolean
    (B, 1, 1, T) with True = attend -> (B, T, H), the heads' outputs projected by ``out``."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        # BEGIN SOLUTION
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        # END SOLUTION
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # BEGIN SOLUTION
        q, k, v = (
            rearrange(layer(x), "b t (h d) -> b h t d", h=self.num_heads)
            for layer in (self.query, self.key, self.value)
        )
        dropout_p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return self.out(rearrange(y, "b h t d -> b t (h d)"))
        # END SOLUTION


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
        # BEGIN SOLUTION
        x = self.ln_1(x + self.dropout(self.attn(x, mask)))
        return self.ln_2(x + self.dropout(self.mlp(x)))
        # END SOLUTION


class BertEncoder(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    """The sentence vector: tanh(W · h_[CLS] + b), from the first token's hidden state."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.activation(self.dense(hidden[:, 0]))
        # END SOLUTION


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, std²) weights, zero biases, padding row zero."""
    # BEGIN SOLUTION
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    # END SOLUTION


class BERT(nn.Module):
    """forward(input_ids (B, T), attention_mask (B, T) 1 = token / 0 = padding, token_type_ids)
    -> (sequence_output (B, T, H), pooled_output (B, H) or None without a pooler)."""

    def __init__(self, config: BERTConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ):
        if input_ids.dim() != 2:
            raise ValueError(
                f"BERT: expected input_ids of shape (B, T), got {tuple(input_ids.shape)}"
            )
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"BERT: attention_mask must have the shape of input_ids "
                f"{tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}"
            )
        # BEGIN SOLUTION
        mask = None
        if attention_mask is not None:
            mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): True = attend
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), mask)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return hidden, pooled
        # END SOLUTION


class BertMLMHead(nn.Module):
    """hidden (B, T, H) -> scores over the vocabulary (B, T, vocab_size): dense, GELU,
    LayerNorm, then ``decoder``, whose weight BERTForMaskedLM ties to the word embeddings."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = nn.GELU()
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.decoder(self.ln(self.act(self.dense(x))))
        # END SOLUTION


class BERTForMaskedLM(nn.Module):
    """BERT + the masked-language-model head. Labels: the original id at masked positions,
    −100 elsewhere (ignored by the loss)."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BERT(config, add_pooling_layer=False)
        self.lm_head = BertMLMHead(config)
        self.lm_head.apply(lambda m: init_bert_weights(m, config.initializer_range))
        # BEGIN SOLUTION
        self.lm_head.decoder.weight = self.bert.embeddings.word_embeddings.weight
        # END SOLUTION

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ):
        """-> (logits (B, T, vocab_size), loss or None)."""
        # BEGIN SOLUTION
        hidden, _ = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                rearrange(logits, "b t v -> (b t) v"),
                rearrange(labels, "b t -> (b t)"),
                ignore_index=-100,
            )
        return logits, loss
        # END SOLUTION
