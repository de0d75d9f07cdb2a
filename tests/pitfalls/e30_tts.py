"""Lesson 30's pitfalls: the text-to-speech model, its length regulator and losses."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_tts.py::"
PADDED = (T + "test_a_padded_sequence_computes_what_it_computes_alone",)

MUTANTS = [
    Mutant(
        "Zeroing padding after a convolution instead of before",
        "h = (self.norm_2(x) * keep).transpose(1, 2)",
        "h = self.norm_2(x).transpose(1, 2)",
        "zero the padding before each convolution",
        PADDED,
    ),
    Mutant(
        "Assuming a LayerNorm keeps padding rows at zero",
        "h = self.dropout(norm(F.relu(h))) * keep",
        "h = self.dropout(norm(F.relu(h)))",
        "a LayerNorm turns a zero row into its bias",
        PADDED,
    ),
    Mutant(
        "key_padding_mask with the wrong meaning",
        "key_padding_mask=padding,",
        "key_padding_mask=~padding,",
        "True = IGNORE",
        PADDED,
    ),
    Mutant(
        "Averaging the losses over the padded tensor",
        "mel_loss = ((predicted - features).abs().mean(-1) * frames).sum() / frames.sum()",
        "mel_loss = (predicted - features).abs().mean()",
        "over the real frames and symbols only",
        PADDED,
    ),
    Mutant(
        "Averaging the losses over the padded tensor",
        "duration_loss = (((log_durations - target) ** 2) * real).sum() / real.sum()",
        "duration_loss = ((log_durations - target) ** 2).mean()",
        "over the real frames and symbols only",
        PADDED,
    ),
    Mutant(
        "The duration loss on raw frames, or on log(d)",
        "target = torch.log1p(durations.to(log_durations.dtype))",
        "target = durations.to(log_durations.dtype)",
        "log(1 + frames)",
        (T + "test_losses_by_their_formulas",),
    ),
    Mutant(
        "The duration loss on raw frames, or on log(d)",
        "target = torch.log1p(durations.to(log_durations.dtype))",
        "target = torch.log(durations.to(log_durations.dtype))",
        "log(1 + frames)",
        (T + "test_losses_by_their_formulas",),
    ),
    Mutant(
        "Rounding durations without the floor of 1",
        "frames = torch.round(torch.expm1(log_durations) / speed).clamp(min=1)",
        "frames = torch.round(torch.expm1(log_durations) / speed)",
        "at least 1 frame",
        (T + "test_every_real_symbol_keeps_at_least_one_predicted_frame",),
    ),
    Mutant(
        "Predicted durations in training",
        "predicted, lengths, log_durations = model(symbols, speakers, durations)",
        "predicted, lengths, log_durations = model(symbols, speakers)",
        "the given durations",
        (T + "test_losses_by_their_formulas",),
    ),
    Mutant(
        "Forgetting x.detach() before the duration predictor",
        "log_durations = self.duration(x.detach(), padding)",
        "log_durations = self.duration(x, padding)",
        "x.detach()",
        (T + "test_duration_loss_does_not_reach_the_encoder",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "regulate_length with a Python loop over the batch",
        "a loop is correct, only slow: it gives the same frames and gradients, and the tests "
        "time nothing",
    ),
]
