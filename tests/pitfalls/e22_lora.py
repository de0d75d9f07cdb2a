"""Lesson 22's pitfalls: LoRA."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant

T = "tests/test_lora.py::"

MUTANTS = [
    Mutant(
        "B initialised randomly",
        "init.zeros_(self.lora_B)",
        "init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))",
        "initialise B to zeros",
        (T + "test_a_new_layer_starts_equal_to_its_base",),
    ),
    Mutant(
        "Scaling by α instead of α/r",
        "self.scaling = self.alpha / rank",
        "self.scaling = self.alpha",
        "rank times too large",
        (T + "test_a_new_layer_starts_equal_to_its_base",),
    ),
    Mutant(
        "Forgetting to freeze the base",
        "self.base = base.requires_grad_(False)  # the pretrained layer stays as it is",
        "self.base = base",
        "the base layer must be frozen",
        (T + "test_a_new_layer_starts_equal_to_its_base",),
    ),
    Mutant(
        "Forming B·A (out, in) inside forward",
        "update = self.lora_dropout(input) @ self.lora_A.T @ self.lora_B.T  # (*, r) -> (*, out)",
        "update = self.lora_dropout(input) @ self.lora_B.T @ self.lora_A.T",
        "shapes do not fit together",
        (T + "test_forward_and_gradients_match_the_formula",),
    ),
    Mutant(
        "merged() forgetting the scaling, or the bias",
        "weight = base.weight + self.scaling * (self.lora_B @ self.lora_A)",
        "weight = base.weight + self.lora_B @ self.lora_A",
        "alpha / rank",
        (T + "test_merged_is_a_linear_with_the_update_folded_in",),
    ),
    Mutant(
        "merged() forgetting the scaling, or the bias",
        "        if has_bias:\n"
        "            linear.bias = Parameter(base.bias.clone(), requires_grad=base.bias.requires_grad)\n",
        "",
        "AND the bias",
        (T + "test_merged_is_a_linear_with_the_update_folded_in",),
    ),
]
