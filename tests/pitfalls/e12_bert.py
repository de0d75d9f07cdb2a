"""Lesson 12's pitfalls: BERT, its pooler, the masked-LM head and 80/10/10 masking."""

from pitfalls import Mutant

T = "tests/test_bert.py::"
TWIN = (T + "test_masked_lm_matches_the_torch_twin",)

MUTANTS = [
    Mutant(
        "attention_mask used as it is",
        "mask = attention_mask.bool()[:, None, None, :]",
        "mask = attention_mask[:, None, None, :].double()",
        "keys where attention_mask is 0 must get no attention weight",
        (T + "test_real_tokens_do_not_see_padding",),
    ),
    Mutant(
        "attention_mask used as it is",
        "mask = attention_mask.bool()[:, None, None, :]",
        "mask = ~attention_mask.bool()[:, None, None, :]",
        "keys where attention_mask is 0 must get no attention weight",
        (T + "test_real_tokens_do_not_see_padding",),
    ),
    Mutant(
        "token_type embeddings left out when token_type_ids is None",
        "        if token_type_ids is None:\n"
        "            token_type_ids = torch.zeros_like(input_ids)\n"
        "        positions = torch.arange(length, device=input_ids.device)\n"
        "        x = (\n"
        "            self.word_embeddings(input_ids)\n"
        "            + self.position_embeddings(positions)\n"
        "            + self.token_type_embeddings(token_type_ids)\n"
        "        )",
        "        positions = torch.arange(length, device=input_ids.device)\n"
        "        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)\n"
        "        if token_type_ids is not None:\n"
        "            x = x + self.token_type_embeddings(token_type_ids)",
        "type 0 when token_type_ids is None",
        TWIN,
    ),
    Mutant(
        "token_type embeddings left out when token_type_ids is None",
        "positions = torch.arange(length, device=input_ids.device)",
        "positions = torch.arange(1, length + 1, device=input_ids.device)",
        "count from 0",
        (T + "test_real_tokens_do_not_see_padding",),
    ),
    Mutant(
        "Pooling the mean of all tokens instead of the first one",
        "return self.activation(self.dense(hidden[:, 0]))",
        "return self.activation(self.dense(hidden.mean(1)))",
        "not the mean",
        (T + "test_pooler_is_tanh_of_a_linear_map_of_the_first_token",),
    ),
    Mutant(
        "Pooling the mean of all tokens instead of the first one",
        "return self.activation(self.dense(hidden[:, 0]))",
        "return self.dense(hidden[:, 0])",
        "and the tanh",
        (T + "test_pooler_is_tanh_of_a_linear_map_of_the_first_token",),
    ),
    Mutant(
        "Labels only where [MASK] was put",
        "labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))",
        "labels = torch.where(\n"
        "        chosen & (uniform() < 0.8), input_ids, torch.full_like(input_ids, -100)\n"
        "    )",
        "every chosen position needs its label",
        (T + "test_mask_tokens_proportions",),
    ),
    Mutant(
        "Choosing special tokens",
        "chosen = (uniform() < mlm_probability) & maskable",
        "chosen = uniform() < mlm_probability",
        "special and padding tokens must never be chosen",
        (T + "test_mask_tokens_proportions",),
    ),
    Mutant(
        "Choosing special tokens",
        "to_random = chosen & (action >= 0.8) & (action < 0.9)",
        "to_random = chosen & (uniform() < 0.1)",
        "replaced by [MASK]",
        (T + "test_mask_tokens_proportions",),
    ),
    Mutant(
        "Tying with a copy of the embedding matrix",
        "self.lm_head.decoder.weight = self.bert.embeddings.word_embeddings.weight",
        "self.lm_head.decoder.weight = nn.Parameter(\n"
        "            self.bert.embeddings.word_embeddings.weight.detach().clone()\n"
        "        )",
        "must BE the word embedding matrix",
        (T + "test_key_names",),
    ),
    Mutant(
        "The head without its LayerNorm",
        "return self.decoder(self.ln(self.act(self.dense(x))))",
        "return self.decoder(self.act(self.dense(x)))",
        "decoder(ln(gelu(dense(x))))",
        TWIN,
    ),
    Mutant(
        "The head without its LayerNorm",
        "return self.decoder(self.ln(self.act(self.dense(x))))",
        "return self.ln(self.decoder(self.act(self.dense(x))))",
        "expected input with last dimension",
        TWIN,
    ),
]
