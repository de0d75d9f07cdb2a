"""BERT (Devlin et al. 2018): a bidirectional transformer encoder, built from minimod layers.

    input_ids, token_type_ids (B, T)
    -> word + position + token-type embeddings, LayerNorm, dropout     (B, T, H)
    -> num_hidden_layers × post-LayerNorm layer:
           x = LayerNorm(x + dropout(attention(x)))
           x = LayerNorm(x + dropout(W₂ gelu(W₁ x)))
    -> sequence output (B, T, H); pooler: tanh(W · x[:, 0]) (B, H) for sentence tasks

Every query sees every key except padding (no causal mask). Module and parameter names follow
Hugging Face's BERT (``embeddings.word_embeddings.weight``,
``encoder.layer.0.attention.self.query.weight``, …) so real checkpoints load by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from minimod import nn
from minimod.nn import functional as F
from minimod.nn.recompute import checkpoint


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
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
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
        return self.dropout(self.LayerNorm(x))
        # END SOLUTION


class BertSelfAttention(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        # BEGIN SOLUTION
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
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
        return rearrange(y, "b h t d -> b t (h d)")
        # END SOLUTION


class BertSelfOutput(nn.Module):
    """Project, dropout, add the residual, then LayerNorm (post-LN)."""

    def __init__(self, config: BERTConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.LayerNorm(residual + self.dropout(self.dense(x)))
        # END SOLUTION


class BertAttention(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)  # the name Hugging Face's checkpoints use
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.output(self.self(x, mask), x)
        # END SOLUTION


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
        # BEGIN SOLUTION
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)
        # END SOLUTION


class BertEncoder(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    # Activation checkpointing (--checkpoint-activations): keep only each layer's input during
    # the forward pass and recompute the layer's activations when the backward pass needs them.
    checkpoint_activations: bool = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        recompute = self.checkpoint_activations and self.training and torch.is_grad_enabled()
        for layer in self.layer:
            x = checkpoint(layer, x, mask) if recompute else layer(x, mask)
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


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = nn.GELU()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.LayerNorm(self.transform_act_fn(self.dense(x)))
        # END SOLUTION


class BertLMPredictionHead(nn.Module):
    """transform, then scores over the vocabulary with the word embedding matrix (tied)."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias  # one bias, under both of Hugging Face's names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictions(x)


class BERTForMaskedLM(nn.Module):
    """BERT + the masked-language-model head. Labels: the original id at masked positions,
    −100 elsewhere (ignored by the loss)."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BERT(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.cls.apply(lambda m: init_bert_weights(m, config.initializer_range))
        # BEGIN SOLUTION
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
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
        logits = self.cls(hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                rearrange(logits, "b t v -> (b t) v"),
                rearrange(labels, "b t -> (b t)"),
                ignore_index=-100,
            )
        return logits, loss
        # END SOLUTION


def mask_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_ids: tuple[int, ...] | list[int] = (),
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose mlm_probability of the positions that are not special tokens
    (padding, [CLS], [SEP], … given in special_ids); of those, 80% become [MASK], 10% a random
    token, 10% stay as they are. Returns (inputs, labels) with labels −100 where not chosen."""

    # BEGIN SOLUTION
    def uniform() -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=input_ids.device)

    maskable = ~torch.isin(
        input_ids, torch.tensor(list(special_ids), dtype=input_ids.dtype, device=input_ids.device)
    )
    chosen = (uniform() < mlm_probability) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = uniform()  # one draw decides: < 0.8 mask, < 0.9 random token, else keep
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(
        vocab_size, input_ids.shape, generator=generator, device=input_ids.device
    )
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels
    # END SOLUTION
