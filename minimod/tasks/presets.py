"""The settings of each task's presets: ``PRESETS[task][preset]`` -> a dict of settings.

gpt ``baby`` is exactly nanoGPT's CPU config for Shakespeare characters (its README's "baby
GPT": n_layer 4, n_head 4, n_embd 128, block 64, batch 12, 2000 iterations, lr 1e-3 decayed
to 1e-4 by a cosine after 100 warmup steps, dropout 0, no biases, AdamW betas (0.9, 0.99),
weight decay 0.1, gradients clipped to 1.0, 20 evaluation batches every 250 steps).
``tiny`` runs in seconds (tests, demos); ``small`` is nanoGPT's shakespeare_char GPU config.
"""

from __future__ import annotations

from typing import Any

# Shared by every preset unless it says otherwise.
COMMON: dict[str, Any] = {
    "betas": (0.9, 0.99),
    "weight_decay": 0.1,
    "min_lr_ratio": 0.1,  # the cosine ends at lr / 10
    "clip_grad_norm": 1.0,
    "log_every": 10,
    "grad_accum": 1,  # micro-batches per optimizer step (the batch is batch_size × grad_accum)
}

GPT = {
    "tiny": dict(
        model=dict(n_layer=1, n_head=2, n_embd=32, block_size=32, dropout=0.0, bias=False),
        batch_size=8, lr=3e-3, max_steps=60, warmup_steps=5,
        eval_every=30, eval_batches=4, final_eval_batches=8,
    ),
    "baby": dict(
        model=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False),
        batch_size=12, lr=1e-3, max_steps=2000, warmup_steps=100,
        eval_every=250, eval_batches=20, final_eval_batches=200,
    ),
    "small": dict(
        model=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False),
        batch_size=64, lr=1e-3, max_steps=5000, warmup_steps=100,
        eval_every=250, eval_batches=20, final_eval_batches=200,
    ),
}  # fmt: skip

BERT = {
    "tiny": dict(
        model=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=64, hidden_dropout_prob=0.0,
                   attention_probs_dropout_prob=0.0),
        block_size=32, max_words=300, batch_size=8, lr=3e-3, max_steps=60, warmup_steps=5,
        eval_every=30, eval_batches=4, final_eval_batches=8,
    ),
    "baby": dict(
        model=dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                   intermediate_size=512, hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1),
        block_size=64, max_words=2000, batch_size=16, lr=1e-3, max_steps=2000, warmup_steps=100,
        eval_every=250, eval_batches=20, final_eval_batches=100,
    ),
    "small": dict(
        model=dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
                   intermediate_size=1024, hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1),
        block_size=128, max_words=8000, batch_size=32, lr=5e-4, max_steps=5000,
        warmup_steps=200, eval_every=250, eval_batches=20, final_eval_batches=100,
    ),
}  # fmt: skip

CNN = {
    "tiny": dict(
        model=dict(widths=(8, 16), depths=(1, 1)), image_size=16, n_train=256, n_val=64,
        batch_size=32, lr=3e-3, max_steps=30, warmup_steps=3, weight_decay=0.01,
        eval_every=15, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(widths=(16, 32, 64), depths=(1, 1, 1)), image_size=32, n_train=4000,
        n_val=1000, batch_size=64, lr=3e-3, max_steps=1000, warmup_steps=50, weight_decay=0.01,
        eval_every=250, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(widths=(32, 64, 128), depths=(2, 2, 2)), image_size=32, n_train=10000,
        n_val=2000, batch_size=64, lr=2e-3, max_steps=3000, warmup_steps=100,
        weight_decay=0.01, eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip

AUDIO = {
    "tiny": dict(
        model=dict(widths=(16, 16), kernel_size=5), n_train=128, n_val=64,
        batch_size=32, lr=3e-3, max_steps=30, warmup_steps=3, weight_decay=0.01,
        eval_every=15, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(widths=(32, 64, 64), kernel_size=5), n_train=2000, n_val=500,
        batch_size=64, lr=3e-3, max_steps=1000, warmup_steps=50, weight_decay=0.01,
        eval_every=250, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(widths=(64, 128, 128), kernel_size=5), n_train=6000, n_val=1000,
        batch_size=64, lr=2e-3, max_steps=3000, warmup_steps=100, weight_decay=0.01,
        eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip

# Speech recognition with CTC (minimod pretrain audio --task asr / asr-digits): n_train synthetic
# clips (asr) or every FSDD training recording (asr-digits) strung into utterances of up to
# max_words words; n_val held-out utterances; spec_augment masks time and frequency bands.
ASR = {
    "tiny": dict(
        model=dict(conv_widths=(32,), hidden_size=32, num_layers=1), features="log_mel",
        n_train=256, n_val=32, max_words=3, spec_augment=False,
        batch_size=16, lr=1e-2, max_steps=40, warmup_steps=4, weight_decay=0.01,
        eval_every=20, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(conv_widths=(64, 64), hidden_size=96, num_layers=2), features="log_mel",
        n_train=2000, n_val=200, max_words=5, spec_augment=True,
        batch_size=32, lr=3e-3, max_steps=1000, warmup_steps=50, weight_decay=0.01,
        eval_every=250, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(conv_widths=(128, 128), hidden_size=192, num_layers=3), features="log_mel",
        n_train=6000, n_val=500, max_words=7, spec_augment=True,
        batch_size=32, lr=2e-3, max_steps=3000, warmup_steps=100, weight_decay=0.01,
        eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip
ASR_DIGITS = {
    "tiny": dict(
        model=dict(conv_widths=(32,), hidden_size=32, num_layers=1),
        n_val=32, max_words=7, spec_augment=False,
        batch_size=16, lr=1e-2, max_steps=40, warmup_steps=4, weight_decay=0.01,
        eval_every=20, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(conv_widths=(64, 64), hidden_size=96, num_layers=2),
        n_val=300, max_words=7, spec_augment=True,
        batch_size=32, lr=3e-3, max_steps=1000, warmup_steps=100, weight_decay=0.01,
        eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(conv_widths=(128, 128), hidden_size=192, num_layers=3),
        n_val=300, max_words=7, spec_augment=True,
        batch_size=32, lr=2e-3, max_steps=6000, warmup_steps=200, weight_decay=0.01,
        eval_every=1000, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip

# The judge of minimod speak's digits (pretrain audio --task asr-espeak): eSpeak NG's digit
# strings in eight voices (make real), as the 80 log-mel bands a synthesiser predicts.
ASR_ESPEAK = {
    "tiny": dict(
        model=dict(conv_widths=(32,), hidden_size=32, num_layers=1),
        n_train=200, n_val=32, max_words=7, spec_augment=False,
        batch_size=16, lr=1e-2, max_steps=40, warmup_steps=4, weight_decay=0.01,
        eval_every=20, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(conv_widths=(64, 64), hidden_size=96, num_layers=2),
        n_train=2000, n_val=200, max_words=7, spec_augment=True,
        batch_size=32, lr=3e-3, max_steps=800, warmup_steps=80, weight_decay=0.01,
        eval_every=200, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(conv_widths=(128, 128), hidden_size=192, num_layers=3),
        n_train=4000, n_val=300, max_words=7, spec_augment=True,
        batch_size=32, lr=2e-3, max_steps=3000, warmup_steps=200, weight_decay=0.01,
        eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip

# Text to speech (minimod pretrain tts): a FastSpeech-style synthesiser of log-mel frames from
# eSpeak NG's phonemes and their durations (corpus digits or sentences, after make real) or from
# the synthetic keywords' letters (corpus keywords, always available); n_train / n_val
# utterances; lambda_duration weighs the duration loss against the frames' L1.
TTS = {
    "tiny": dict(
        model=dict(d_model=64, n_heads=2, encoder_layers=1, decoder_layers=1, dropout=0.0),
        corpus="digits", n_train=200, n_val=20, lambda_duration=1.0,
        batch_size=8, lr=2e-3, max_steps=40, warmup_steps=4, weight_decay=0.01,
        eval_every=20, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(d_model=128, n_heads=2, encoder_layers=2, decoder_layers=2, dropout=0.1),
        corpus="digits", n_train=2000, n_val=100, lambda_duration=1.0,
        batch_size=16, lr=1e-3, max_steps=3000, warmup_steps=200, weight_decay=0.01,
        eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(d_model=192, n_heads=2, encoder_layers=4, decoder_layers=4, dropout=0.1),
        corpus="sentences", n_train=4000, n_val=200, lambda_duration=1.0,
        batch_size=16, lr=1e-3, max_steps=8000, warmup_steps=400, weight_decay=0.01,
        eval_every=1000, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip
TTS_CORPORA = ("digits", "sentences", "keywords")

# Multi-object detection (minimod pretrain cnn --task detect-shapes / detect-digits): a
# models.detector.Detector on a ResNet body (stride 2^(stages - 1): 16 × 16 cells for tiny and
# baby); n_train / n_val images of image_size² with 1..max_objects objects; gamma: the focal
# loss's; box_weight: the box loss's weight against the classes'. detect-digits: digit_sizes
# is the range of the digits' sides in pixels.
DETECT_SHAPES = {
    "tiny": dict(
        model=dict(widths=(8, 16), depths=(1, 1)), head_width=16, image_size=32,
        max_objects=3, n_train=64, n_val=16, gamma=2.0, box_weight=1.0,
        batch_size=8, lr=3e-3, max_steps=10, warmup_steps=2, weight_decay=0.01,
        eval_every=5, eval_batches=0, final_eval_batches=0,
    ),
    "baby": dict(
        model=dict(widths=(8, 16, 32), depths=(1, 1, 1)), head_width=32, image_size=64,
        max_objects=4, n_train=2000, n_val=200, gamma=2.0, box_weight=1.0,
        batch_size=16, lr=3e-3, max_steps=300, warmup_steps=20, weight_decay=0.01,
        eval_every=100, eval_batches=0, final_eval_batches=0,
    ),
    "small": dict(
        model=dict(widths=(16, 32, 64), depths=(2, 2, 2)), head_width=64, image_size=64,
        max_objects=4, n_train=5000, n_val=500, gamma=2.0, box_weight=1.0,
        batch_size=32, lr=2e-3, max_steps=2000, warmup_steps=100, weight_decay=0.01,
        eval_every=500, eval_batches=0, final_eval_batches=0,
    ),
}  # fmt: skip
DETECT_DIGITS = {
    "tiny": {**DETECT_SHAPES["tiny"], "digit_sizes": (10, 16)},
    "baby": {**DETECT_SHAPES["baby"], "max_objects": 5, "digit_sizes": (14, 32)},
    "small": {**DETECT_SHAPES["small"], "max_objects": 5, "digit_sizes": (14, 32)},
}

PRESETS = {
    "gpt": GPT, "bert": BERT, "cnn": CNN, "audio": AUDIO, "asr": ASR, "asr-digits": ASR_DIGITS,
    "asr-espeak": ASR_ESPEAK, "tts": TTS, "detect-shapes": DETECT_SHAPES,
    "detect-digits": DETECT_DIGITS,
}  # fmt: skip
# What `minimod pretrain MODEL` takes; the speech-recognition tasks are `pretrain audio --task`.
TASKS = ("gpt", "bert", "cnn", "audio", "tts")
AUDIO_TASKS = ("keywords", "asr", "asr-digits", "asr-espeak")
ASR_TASKS = ("asr", "asr-digits", "asr-espeak")  # speech recognition: SpeechRecognizer, CTC, WER
DETECT_TASKS = ("detect-shapes", "detect-digits")  # `pretrain cnn --task`: a Detector, mAP
# Fine-tuning tasks whose images are ImageNet-normalised: a MobileNetV2 (--from mobilenet_v2).
IMAGENET_TASKS = ("mnist", "faces")
PRESET_NAMES = ("tiny", "baby", "small")


def settings_for(task: str, preset: str) -> dict[str, Any]:
    """The full settings of ``task`` at ``preset`` (COMMON, then the preset's own)."""
    return {**COMMON, **PRESETS[task][preset]}


# -- fine-tuning ------------------------------------------------------------------------------
# Fine-tuning settings per model kind (the architecture comes from the --from run, or from
# the pretraining preset for --from scratch). n_train: labelled examples drawn for training
# (--labels overrides); n_val picks best.pt; n_test is the held-out set of the final report.
FINETUNE = {
    "bert": dict(
        batch_size=32, lr=1e-3, max_steps=600, warmup_steps=60, weight_decay=0.01,
        eval_every=100, n_train=1000, n_val=400, n_test=1000, dropout=0.1, pooling="cls",
    ),
    "gpt": dict(
        batch_size=32, lr=1e-3, max_steps=600, warmup_steps=60, weight_decay=0.01,
        eval_every=100, n_train=1000, n_val=400, n_test=1000, dropout=0.1, pooling="last",
    ),
    "cnn": dict(
        batch_size=32, lr=2e-3, max_steps=150, warmup_steps=15, weight_decay=0.01,
        eval_every=50, n_train=1000, n_val=300, n_test=600, dropout=0.0, pooling=None,
    ),
    "audio": dict(
        batch_size=32, lr=3e-3, max_steps=120, warmup_steps=12, weight_decay=0.01,
        eval_every=40, n_train=300, n_val=300, n_test=600, dropout=0.0, pooling=None,
    ),
}  # fmt: skip
FINETUNE_TASKS = {
    "bert": ("sentiment", "sentiment-real"),
    "gpt": ("sentiment",),
    "cnn": ("shapes", "detect", "digits", "mnist", "faces"),
    "audio": ("keywords", "spoken-digits", "asr-digits"),
}
# The real-data tasks (minimod/data/vader.py, digitsets.py) train on every labelled example by
# default (n_train None; --labels picks a seeded subset) and evaluate on the whole val/test
# splits.
# sentiment-real fine-tunes a real pretrained BERT (--from minilm): smaller steps, mean pooling
# (all-MiniLM-L6-v2 was trained to give mean-pooled sentence embeddings).
TASK_SETTINGS = {
    # domain: which of VADER's human-rated sets trains, validates and tests (minimod.data.vader
    # DOMAINS: movies, amazon, nyt, tweets); the other domains' test splits are reported too.
    "sentiment-real": dict(
        n_train=None, n_val=None, n_test=None, lr=5e-5, max_steps=300, warmup_steps=30,
        eval_every=100, pooling="mean", max_length=128, domain="movies",
    ),
    "digits": dict(
        n_train=None, n_val=None, n_test=None, batch_size=64, lr=3e-3, max_steps=300,
        warmup_steps=30, eval_every=100,
    ),
    "spoken-digits": dict(
        n_train=None, n_val=None, n_test=None, batch_size=64, lr=3e-3, max_steps=300,
        warmup_steps=30, eval_every=100,
    ),
    # Grey real images for a MobileNetV2 (--from mobilenet_v2, its ImageNet weights, or scratch):
    # upsampled to image_size² (ImageNet's 224 would cost 12× the time; at 64 the last feature
    # map is 2×2), grey in all three channels, ImageNet-normalised (minimod/data/imagesets.py).
    # mnist: 1,000 of the 4,000 training digits by default (--labels N: another seeded subset).
    # lr 1e-3: `minimod lr-find cnn --task mnist --labels 200` suggested 4.3e-4 (ImageNet
    # weights) and 5.4e-4 (scratch), with the lowest loss at 7.2e-3 and 5.7e-3: one lr for both.
    "mnist": dict(
        n_train=1000, n_val=None, n_test=None, image_size=64, batch_size=32, lr=1e-3,
        max_steps=100, warmup_steps=10, eval_every=50, dropout=0.2,
    ),
    "faces": dict(
        n_train=None, n_val=None, n_test=None, image_size=64, batch_size=32, lr=1e-3,
        max_steps=100, warmup_steps=10, eval_every=50, dropout=0.2,
    ),
    # Connected spoken digits with CTC, from a speech-recognition run (pretrain audio --task asr
    # --features mfcc) or scratch. n_train: training RECORDINGS (None: all of the train split);
    # n_val utterances from the val recordings pick best.pt, n_test from the test recordings
    # are the report (the held-out set of `pretrain audio --task asr-digits`).
    "asr-digits": dict(
        n_train=None, n_val=200, n_test=300, batch_size=32, lr=3e-3, max_steps=400,
        warmup_steps=40, eval_every=100, max_words=7, spec_augment=True,
    ),
}  # fmt: skip
