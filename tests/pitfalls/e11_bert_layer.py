"""Lesson 11's pitfalls: a BERT encoder layer."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant

T = "tests/test_encoder_layer.py::"
TWIN = (T + "test_bert_layer_matches_transformer_encoder_layer",)

MUTANTS = [
    Mutant(
        "Pre-LN by habit",
        "x = self.ln_1(x + self.dropout(self.attn(x, mask)))\n"
        "        return self.ln_2(x + self.dropout(self.mlp(x)))",
        "x = x + self.dropout(self.attn(self.ln_1(x), mask))\n"
        "        return x + self.dropout(self.mlp(self.ln_2(x)))",
        "BERT normalises after the addition",
        TWIN,
    ),
    Mutant(
        "The wrong residual",
        "x = self.ln_1(x + self.dropout(self.attn(x, mask)))\n"
        "        return self.ln_2(x + self.dropout(self.mlp(x)))",
        "a = self.ln_1(x + self.dropout(self.attn(x, mask)))\n"
        "        return self.ln_2(x + self.dropout(self.mlp(a)))",
        "not the layer's input x",
        TWIN,
    ),
    Mutant(
        "Normalising the sub-layer's output alone",
        "x = self.ln_1(x + self.dropout(self.attn(x, mask)))",
        "x = self.ln_1(self.dropout(self.attn(x, mask)))",
        "the residual included",
        TWIN,
    ),
    Mutant(
        "Forgetting out after merging the heads",
        'return self.out(rearrange(y, "b h t d -> b t (h d)"))',
        'return rearrange(y, "b h t d -> b t (h d)")',
        "output projection",
        TWIN,
    ),
    Mutant(
        "Dropout on the attention weights in eval mode",
        "dropout_p = self.dropout_p if self.training else 0.0",
        "dropout_p = self.dropout_p",
        "eval mode",
        (T + "test_dropout_is_off_in_eval_mode",),
    ),
    Mutant(
        "Hiding padded queries instead of padded keys",
        "y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)",
        "queries = None if mask is None else mask.transpose(-1, -2)\n"
        "        y = F.scaled_dot_product_attention(q, k, v, attn_mask=queries, dropout_p=dropout_p)",
        "padded keys",
        TWIN,
    ),
]
