"""Lesson 20's pitfalls: pooling, heads and boxes."""

from pitfalls import Mutant

T = "tests/test_heads.py::"

MUTANTS = [
    Mutant(
        "Mean pooling that divides by T",
        "return total / mask.sum(dim=1, keepdim=True)",
        "return total / length",
        "divide by the number of REAL tokens",
        (T + "test_pool_matches_loops_and_padding_gets_no_gradient",),
    ),
    Mutant(
        '"last" pooling at position T - 1',
        "return hidden[torch.arange(batch, device=hidden.device), last]",
        "return hidden[:, -1]",
        "not position T - 1",
        (T + "test_pool_default_is_cls_and_padding_values_do_not_matter",),
    ),
    Mutant(
        '"cls" pooling on a GPT',
        "        return self.head(pool(hidden, attention_mask, self.pooling))  # (B, num_labels)",
        "        return self.head(pool(hidden, attention_mask, 'cls'))",
        "position 0 has seen only the first token",
        (T + "test_sequence_classifier_is_body_pool_head",),
    ),
    Mutant(
        "Forgetting BERT's attention_mask",
        "hidden = self.hidden(input_ids, attention_mask, token_type_ids)  # (B, T, H)",
        "hidden = self.hidden(input_ids, None, token_type_ids)",
        "the BERT body got no attention_mask",
        (T + "test_sequence_classifier_is_body_pool_head",),
    ),
    Mutant(
        "IoU without clamping the intersection's sides",
        "side = (high - low).clamp(min=0)",
        "side = high - low",
        "boxes that do not overlap must have IoU 0",
        (T + "test_box_iou_matches_plain_floats",),
    ),
    Mutant(
        "Union = area(a) + area(b)",
        "union = area(a) + area(b) - inter  # the overlap",
        "union = area(a) + area(b)  # the overlap",
        "twice",
        (T + "test_box_iou_matches_plain_floats",),
    ),
]
