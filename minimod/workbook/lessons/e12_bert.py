TEXT = """Lesson 12: BERT -- embeddings, pooler and masked language modelling

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
