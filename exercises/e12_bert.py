"""Lesson 12: BERT -- embeddings, pooler and masked language modelling

The model
    input_ids, token_type_ids (B, T);  attention_mask (B, T): 1 = token, 0 = padding
    x = dropout(LayerNorm(word(input_ids) + position(0 .. T−1) + token_type(token_type_ids)))
    mask = attention_mask as booleans, shaped (B, 1, 1, T): True = attend; it broadcasts over
           the heads and the queries (no mask: every token sees every token)
    hidden = encoder(x, mask)             num_hidden_layers × BertLayer (lesson 11, given)
    pooled = tanh(W · hidden[:, 0] + b)   the pooler: a sentence vector from the first token
BERT returns (hidden (B, T, H), pooled (B, H)), pooled None when add_pooling_layer=False.
Three tables are summed: words, positions (learned, up to max_position_embeddings) and token
types (segment A = 0, B = 1 for sentence pairs; zeros when token_type_ids is None). The word
table's padding row (pad_token_id) starts at zero.
Every input starts with [CLS], whose final hidden state learns to sum up the sequence: that
is why the pooler reads position 0 (and tanh keeps the sentence vector in (−1, 1)).

Initialisation (init_bert_weights, run on every module with Module.apply)
Linear and Embedding weights ~ N(0, std²) with std = initializer_range (0.02), Linear biases 0,
and an Embedding's padding row set to zero again (the normal draw overwrote it) -- under
torch.no_grad(), since it writes into a Parameter in place. LayerNorms keep γ = 1, β = 0.

Masked language modelling, BERT's pretraining task (mask_tokens, in minimod/data/masking.py)
Choose mlm_probability (15%) of the positions that are not special tokens (padding, [CLS],
[SEP], ... in special_ids) and train the model to predict the original token there, from both
sides. Of the chosen positions:
    80% -> [MASK],   10% -> a random token from [0, vocab_size),   10% -> left unchanged
labels = the original id at every chosen position, −100 everywhere else (ignored by the loss).
Why not always [MASK]? [MASK] never appears when the model is later fine-tuned; with random and
unchanged tokens among the targets, the model must keep a good representation of EVERY input
token, since it cannot tell which ones were tampered with. One uniform draw per position
decides: < 0.8 mask, < 0.9 random, else keep. Draw everything with `generator` (torch.rand,
torch.randint), so masking is reproducible, and never change input_ids in place.

The MLM head: BertMLMHead, BERTForMaskedLM's lm_head
    logits = decoder(ln(gelu(dense(hidden))))     dense Linear(H, H), ln LayerNorm(H)
decoder is Linear(H, vocab_size) whose weight IS the word embedding matrix (tied, like GPT's
lm_head), with a bias of its own. BERTForMaskedLM returns the logits (B, T, vocab_size) and the
mean cross-entropy over the labelled positions (ignore_index=−100).
The names (bert.embeddings.ln, lm_head.dense, lm_head.ln, lm_head.decoder) are minimod's;
Hugging Face's checkpoints say embeddings.LayerNorm and cls.predictions.transform.dense,
.transform.LayerNorm, .decoder, and keep the bias under two names for one tensor
(cls.predictions.bias and cls.predictions.decoder.bias): minimod.models.weights.hf_bert_to_minimod
maps each key explicitly and merges the two biases into lm_head.decoder.bias.

What you write
BertEmbeddings.forward, BertPooler.forward, init_bert_weights, BERT.forward,
BertMLMHead.forward, the tying in BERTForMaskedLM.__init__ and its forward,
and mask_tokens (data preparation: minimod/data/masking.py). BERTConfig, the encoder, the
modules' layers and the argument checks are given.

Classic pitfalls
- attention_mask used as it is (1/0 added to the scores), or read as True = padding.
- token_type embeddings left out when token_type_ids is None, or positions counted from 1.
- Pooling the mean of all tokens instead of the first one, or forgetting the tanh.
- Labels only where [MASK] was put: the random and the unchanged 10% are predicted too.
- Choosing special tokens, or separate draws for "mask" and "random" that break 80/10/10.
- Tying with a copy of the embedding matrix.
- The head without its LayerNorm, or with the LayerNorm after the decoder.

Run it
Once `minimod exercises check 12` passes, a tiny BERT pretrains with your embeddings, tied
MLM head and 80/10/10 masking (--use-mine swaps in every lesson that passes and says which):
    minimod pretrain bert --use-mine --out runs/e12
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.48,
perplexity 32.5" on masked words of held-out reviews (about 20 s on 2 shared cores; every
run needs a new --out).
Next: lesson 13 (Convolution as matrix products, with a hand-written backward)

Check it: minimod exercises check 12
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod.models.bert import BERTConfig
    >>> from exercises.e12_bert import BERTForMaskedLM, mask_tokens
    >>> ids = torch.randint(5, 100, (64, 128), generator=torch.Generator().manual_seed(0))
    >>> inputs, labels = mask_tokens(ids, mask_token_id=4, vocab_size=100, special_ids=(0,))
    >>> chosen = labels != -100
    >>> 0.13 < chosen.float().mean().item() < 0.17, torch.equal(labels[chosen], ids[chosen])
    (True, True)
    >>> 0.75 < (inputs[chosen] == 4).float().mean().item() < 0.85
    True
    >>> sizes = dict(hidden_size=16, num_attention_heads=2, intermediate_size=32)
    >>> model = BERTForMaskedLM(BERTConfig(vocab_size=100, num_hidden_layers=1, **sizes))
    >>> model.lm_head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    True
    >>> logits, loss = model(inputs[:2], labels=labels[:2])
    >>> tuple(logits.shape), round(loss.item())  # ≈ log(100) = 4.6 at initialisation
    ((2, 128, 100), 5)
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 12`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import torch
from einops import rearrange

from minimod import nn
from minimod.models.bert import BERTConfig, BertEncoder
from minimod.nn import functional as F

# ---- from minimod/models/bert.py ----------------------------------------


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e12: BertEmbeddings.forward")
        # END YOUR CODE


class BertPooler(nn.Module):
    """The sentence vector: tanh(W · h_[CLS] + b), from the first token's hidden state."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e12: BertPooler.forward")
        # END YOUR CODE


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, std²) weights, zero biases, padding row zero."""
    # BEGIN YOUR CODE
    raise NotImplementedError("e12: init_bert_weights")
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e12: BERT.forward")
        # END YOUR CODE


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e12: BertMLMHead.forward")
        # END YOUR CODE


class BERTForMaskedLM(nn.Module):
    """BERT + the masked-language-model head. Labels: the original id at masked positions,
    −100 elsewhere (ignored by the loss)."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BERT(config, add_pooling_layer=False)
        self.lm_head = BertMLMHead(config)
        self.lm_head.apply(lambda m: init_bert_weights(m, config.initializer_range))
        # BEGIN YOUR CODE
        raise NotImplementedError("e12: BERTForMaskedLM.__init__")
        # END YOUR CODE

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ):
        """-> (logits (B, T, vocab_size), loss or None)."""
        # BEGIN YOUR CODE
        raise NotImplementedError("e12: BERTForMaskedLM.forward")
        # END YOUR CODE


# ---- from minimod/data/masking.py ----------------------------------------


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

    # BEGIN YOUR CODE
    raise NotImplementedError("e12: mask_tokens")
    # END YOUR CODE
