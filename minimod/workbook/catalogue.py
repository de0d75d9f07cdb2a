"""The lesson catalogue: which minimod definitions each numbered lesson teaches.

A definition is named by where it lives in minimod ("minimod.nn.linear.Linear"); the generator
copies it into ``exercises/`` and ``solutions/`` and the tests find it there by the same name.
Every ``# BEGIN SOLUTION`` region in minimod must belong to one lesson's definitions.

To add a lesson: mark the bodies to write in minimod, write its text in ``lessons/eNN_name.py``,
add a ``Lesson`` here, run ``make workbook``, and commit the generated files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from minimod.workbook.lessons import (
    e01_module,
    e02_linear,
    e03_activations,
    e04_losses,
    e05_embedding_norm,
    e06_optimizers,
    e07_schedules_clipping,
    e08_attention,
    e09_positional,
    e10_gpt,
    e11_bert_layer,
    e12_bert,
    e13_conv,
    e14_pool,
    e15_batchnorm,
    e16_resnet,
    e17_bpe,
    e18_training_loop,
    e19_metrics,
    e20_heads,
    e21_freezing,
    e22_lora,
    e23_imbalance,
    e24_mixed_precision,
    e25_activation_checkpointing,
    e26_data_parallel,
    e27_recurrence,
    e28_ctc,
    e29_sound,
    e30_tts,
    e31_quantization,
    e32_llama_block,
    e33_chat_templates,
    e34_flash_attention,
    e35_detection,
    e36_depthwise,
)


@dataclass(frozen=True)
class Lesson:
    number: int
    name: str  # module name of the generated file, e.g. "e02_linear"
    title: str
    definitions: tuple[str, ...]  # qualified names in minimod, e.g. "minimod.nn.linear.Linear"
    tests: tuple[str, ...]  # test files (relative to the repository) that check this lesson
    text: str = ""  # the lesson: idea, formulas, shapes, pitfalls


def _names(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{module}.{name}" for name in names)


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        1,
        "e01_module",
        "Module and Parameter",
        _names("minimod.nn.module", "Parameter", "Module"),
        ("tests/test_module.py",),
        e01_module.TEXT,
    ),
    Lesson(
        2,
        "e02_linear",
        "Linear layers and initialisation",
        _names("minimod.nn.linear", "linear", "Linear")
        + _names(
            "minimod.nn.init",
            "calculate_gain",
            "uniform_",
            "normal_",
            "constant_",
            "zeros_",
            "ones_",
            "kaiming_uniform_",
            "kaiming_normal_",
            "xavier_uniform_",
            "xavier_normal_",
            "trunc_normal_",
        ),
        ("tests/test_linear.py", "tests/test_init.py"),
        e02_linear.TEXT,
    ),
    Lesson(
        3,
        "e03_activations",
        "Activations, softmax and log-softmax",
        _names(
            "minimod.nn.activation",
            "relu",
            "ReLUFunction",
            "gelu",
            "GELUFunction",
            "sigmoid",
            "tanh",
            "silu",
            "softmax",
            "log_softmax",
            "ReLU",
            "GELU",
            "Sigmoid",
            "Tanh",
            "SiLU",
            "Softmax",
            "LogSoftmax",
        ),
        ("tests/test_activation.py",),
        e03_activations.TEXT,
    ),
    Lesson(
        4,
        "e04_losses",
        "Losses: cross-entropy, MSE, BCE with logits",
        _names(
            "minimod.nn.loss",
            "cross_entropy",
            "CrossEntropy",
            "mse_loss",
            "binary_cross_entropy_with_logits",
            "CrossEntropyLoss",
            "MSELoss",
            "BCEWithLogitsLoss",
        ),
        ("tests/test_loss.py",),
        e04_losses.TEXT,
    ),
    Lesson(
        5,
        "e05_embedding_norm",
        "Embeddings, LayerNorm, RMSNorm and dropout",
        _names("minimod.nn.embedding", "embedding", "EmbeddingFunction", "Embedding")
        + _names(
            "minimod.nn.norm", "layer_norm", "LayerNormFunction", "rms_norm", "LayerNorm", "RMSNorm"
        )
        + _names("minimod.nn.dropout", "dropout", "Dropout"),
        ("tests/test_embedding.py", "tests/test_norm.py", "tests/test_dropout.py"),
        e05_embedding_norm.TEXT,
    ),
    Lesson(
        6,
        "e06_optimizers",
        "Optimizers: SGD with momentum and AdamW",
        _names("minimod.optim.optimizer", "Optimizer")
        + _names("minimod.optim.sgd", "SGD")
        + _names("minimod.optim.adamw", "AdamW"),
        ("tests/test_optim.py",),
        e06_optimizers.TEXT,
    ),
    Lesson(
        7,
        "e07_schedules_clipping",
        "Warmup, cosine schedules and gradient clipping",
        _names(
            "minimod.optim.lr_scheduler",
            "LRScheduler",
            "LambdaLR",
            "WarmupDecayLR",
            "WarmupCosineLR",
            "WarmupLinearLR",
            "ConstantWarmupLR",
            "LinearLR",
            "CosineAnnealingLR",
        )
        + _names("minimod.nn.utils", "clip_grad_norm_", "clip_grad_value_"),
        ("tests/test_lr_scheduler.py", "tests/test_clip_grad.py"),
        e07_schedules_clipping.TEXT,
    ),
    Lesson(
        8,
        "e08_attention",
        "Scaled dot-product attention, masks and multi-head attention",
        _names(
            "minimod.nn.attention",
            "causal_mask",
            "masked_softmax",
            "_additive_mask",
            "scaled_dot_product_attention",
            "Attention",
        )
        + _names("minimod.nn.multihead", "MultiheadAttention"),
        ("tests/test_attention.py",),
        e08_attention.TEXT,
    ),
    Lesson(
        9,
        "e09_positional",
        "Positional encodings: sinusoidal, learned and rotary (RoPE)",
        _names(
            "minimod.nn.positional",
            "sinusoidal_positions",
            "rotary_cos_sin",
            "apply_rotary",
            "SinusoidalPositional",
            "LearnedPositional",
            "RotaryEmbedding",
        ),
        ("tests/test_positional.py",),
        e09_positional.TEXT,
    ),
    Lesson(
        10,
        "e10_gpt",
        "GPT: the pre-LayerNorm block, weight tying, sampling and the KV cache",
        _names("minimod.models.gpt", "CausalSelfAttention", "MLP", "Block", "GPT")
        + _names("minimod.models.generation", "LayerCache", "sample", "generate"),
        ("tests/test_gpt.py",),
        e10_gpt.TEXT,
    ),
    Lesson(
        11,
        "e11_bert_layer",
        "BERT's post-LayerNorm encoder layer",
        _names(
            "minimod.models.bert",
            "BertSelfAttention",
            "BertMLP",
            "BertLayer",
        ),
        ("tests/test_encoder_layer.py",),
        e11_bert_layer.TEXT,
    ),
    Lesson(
        12,
        "e12_bert",
        "BERT: embeddings, pooler and masked language modelling",
        _names(
            "minimod.models.bert",
            "BertEmbeddings",
            "BertPooler",
            "init_bert_weights",
            "BERT",
            "BertMLMHead",
            "BERTForMaskedLM",
        )
        + _names("minimod.data.masking", "mask_tokens"),
        ("tests/test_bert.py",),
        e12_bert.TEXT,
    ),
    Lesson(
        13,
        "e13_conv",
        "Convolution as matrix products, with a hand-written backward",
        _names(
            "minimod.nn.conv",
            "output_size",
            "pad2d",
            "same_padding",
            "_compute_dtype",
            "_channel_major",
            "_images",
            "_stacked",
            "_taps",
            "_add_product",
            "_Conv2dFunction",
            "conv2d",
            "conv1d",
            "_ConvNd",
            "Conv2d",
            "Conv1d",
        ),
        ("tests/test_conv.py", "tests/test_conv_backward.py"),
        e13_conv.TEXT,
    ),
    Lesson(
        14,
        "e14_pool",
        "Pooling: max, average and adaptive",
        _names(
            "minimod.nn.pool",
            "pool_output_size",
            "_windows",
            "_arguments",
            "_input_indices",
            "max_pool2d",
            "avg_pool2d",
            "_adaptive_matrix",
            "adaptive_avg_pool2d",
            "max_pool1d",
            "avg_pool1d",
            "adaptive_avg_pool1d",
            "max_unpool2d",
            "max_unpool1d",
            "_Pool",
            "MaxPool2d",
            "MaxPool1d",
            "_AvgPool",
            "AvgPool2d",
            "AvgPool1d",
            "_MaxUnpool",
            "MaxUnpool2d",
            "MaxUnpool1d",
            "AdaptiveAvgPool2d",
            "AdaptiveAvgPool1d",
        ),
        ("tests/test_pool.py",),
        e14_pool.TEXT,
    ),
    Lesson(
        15,
        "e15_batchnorm",
        "Batch normalisation: batch statistics and running estimates",
        _names(
            "minimod.nn.batchnorm",
            "batch_norm",
            "_BatchNormFunction",
            "_BatchNorm",
            "BatchNorm1d",
            "BatchNorm2d",
        ),
        ("tests/test_batchnorm.py",),
        e15_batchnorm.TEXT,
    ),
    Lesson(
        16,
        "e16_resnet",
        "Residual networks: BasicBlock, ResNet and a 1-D audio CNN",
        _names("minimod.models.cnn", "conv_bn", "BasicBlock", "ResNet", "AudioCNN", "_init_conv"),
        ("tests/test_cnn.py",),
        e16_resnet.TEXT,
    ),
    Lesson(
        17,
        "e17_bpe",
        "Tokenization: byte-level BPE merges",
        _names(
            "minimod.data.bpe",
            "count_pairs",
            "merge_pair",
            "learn_merges",
            "apply_merges",
            "ByteBPETokenizer",
        ),
        ("tests/test_tokenizers.py",),
        e17_bpe.TEXT,
    ),
    Lesson(
        18,
        "e18_training_loop",
        "The training loop: accumulation, clipping, schedules, evaluation, checkpoints",
        _names("minimod.train.loop", "Trainer")
        + _names("minimod.train.checkpoint", "save_checkpoint", "load_checkpoint"),
        ("tests/test_train_loop.py", "tests/test_checkpoint.py"),
        e18_training_loop.TEXT,
    ),
    Lesson(
        19,
        "e19_metrics",
        "Classification metrics: confusion matrix, precision, recall, F1",
        _names("minimod.train.metrics", "confusion_matrix", "precision_recall_f1", "macro_f1"),
        ("tests/test_metrics.py",),
        e19_metrics.TEXT,
    ),
    Lesson(
        20,
        "e20_heads",
        "Heads and pooling: fine-tuning a pretrained body",
        _names(
            "minimod.models.heads",
            "pool",
            "_TextModel",
            "SequenceClassifier",
            "TokenClassifier",
            "FeatureClassifier",
        )
        + _names("minimod.models.boxes", "decode_boxes", "box_iou", "box_loss", "BoxRegressor"),
        ("tests/test_heads.py",),
        e20_heads.TEXT,
    ),
    Lesson(
        21,
        "e21_freezing",
        "Freezing and learning-rate groups: linear probes, layer decay, gradual unfreezing",
        _names(
            "minimod.train.freezing",
            "freeze",
            "unfreeze",
            "linear_probe",
            "param_groups",
            "GradualUnfreezer",
        ),
        ("tests/test_finetune.py",),
        e21_freezing.TEXT,
    ),
    Lesson(
        22,
        "e22_lora",
        "LoRA: low-rank adapters and merging",
        _names(
            "minimod.nn.lora",
            "LoRALinear",
            "lora_layers",
            "apply_lora",
            "merge_lora",
            "adapter_keys",
            "lora_state_dict",
            "load_lora",
        ),
        ("tests/test_lora.py",),
        e22_lora.TEXT,
    ),
    Lesson(
        23,
        "e23_imbalance",
        "Evaluating and imbalanced data: class weights, weighted sampling, focal loss",
        _names("minimod.nn.loss", "focal_loss", "FocalLoss")
        + _names("minimod.train.imbalance", "class_weights", "WeightedSampler"),
        ("tests/test_imbalance.py",),
        e23_imbalance.TEXT,
    ),
    Lesson(
        24,
        "e24_mixed_precision",
        "Mixed precision: autocast and loss scaling",
        _names("minimod.train.precision", "autocast", "GradScaler"),
        ("tests/test_precision.py",),
        e24_mixed_precision.TEXT,
    ),
    Lesson(
        25,
        "e25_activation_checkpointing",
        "Activation checkpointing: recompute instead of remember",
        _names(
            "minimod.nn.recompute",
            "Recompute",
            "checkpoint",
            "_Checkpointed",
            "enable_checkpointing",
        ),
        ("tests/test_recompute.py",),
        e25_activation_checkpointing.TEXT,
    ),
    Lesson(
        26,
        "e26_data_parallel",
        "Data parallelism: broadcast, bucketed gradient all-reduce, distributed sampling",
        _names(
            "minimod.train.distributed",
            "broadcast_module",
            "GradientAllReduce",
            "DistributedSampler",
            "shard_batch",
        ),
        ("tests/test_distributed.py",),
        e26_data_parallel.TEXT,
    ),
    Lesson(
        27,
        "e27_recurrence",
        "Recurrence: RNN, GRU and LSTM cells, the layer loop, backpropagation through time",
        _names(
            "minimod.nn.rnn",
            "rnn_step",
            "gru_step",
            "lstm_step",
            "_step_function",
            "run_direction",
            "_CellBase",
            "RNNCell",
            "GRUCell",
            "LSTMCell",
            "RNNBase",
            "RNN",
            "GRU",
            "LSTM",
        ),
        ("tests/test_rnn.py",),
        e27_recurrence.TEXT,
    ),
    Lesson(
        28,
        "e28_ctc",
        "CTC: the alignment lattice, the α and β recursions, greedy and prefix beam decoding",
        _names(
            "minimod.nn.ctc",
            "extend_targets",
            "_skips",
            "_reversal",
            "_read_backwards",
            "alpha_recursion",
            "CTCFunction",
            "ctc_loss",
            "CTCLoss",
            "ctc_greedy_decode",
            "ctc_beam_search",
        ),
        ("tests/test_ctc.py",),
        e28_ctc.TEXT,
    ),
    Lesson(
        29,
        "e29_sound",
        "Sound: the STFT, mel filterbanks, and the phase Griffin-Lim puts back",
        _names(
            "minimod.data.spectral",
            "stft",
            "istft",
            "hz_to_mel",
            "mel_to_hz",
            "mel_filterbank",
            "mel_spectrogram",
            "inverse_mel",
            "spectral_convergence",
            "griffin_lim",
        ),
        ("tests/test_spectral.py",),
        e29_sound.TEXT,
    ),
    Lesson(
        30,
        "e30_tts",
        "Text to speech: durations, the length regulator, and every frame at once",
        _names(
            "minimod.models.tts",
            "FFTBlock",
            "DurationPredictor",
            "regulate_length",
            "SpeechSynthesizer",
            "synthesis_loss",
        )
        + _names("minimod.data.tts", "frame_durations", "dtw_path", "mel_cepstral_distortion"),
        ("tests/test_tts.py",),
        e30_tts.TEXT,
    ),
    Lesson(
        31,
        "e31_quantization",
        "Quantization: block scales, 4-bit packing, and what the round trip costs",
        _names("minimod.models.quantize", "dequantize", "quantize_q4_1"),
        ("tests/test_gguf.py",),
        e31_quantization.TEXT,
    ),
    Lesson(
        32,
        "e32_llama_block",
        "The modern block: RMSNorm, RoPE, grouped-query attention and SwiGLU",
        _names(
            "minimod.models.llama",
            "LlamaAttention",
            "LlamaMLP",
            "LlamaDecoderLayer",
            "LlamaModel",
            "LlamaForCausalLM",
        ),
        ("tests/test_llama.py",),
        e32_llama_block.TEXT,
    ),
    Lesson(
        33,
        "e33_chat_templates",
        "Chat templates: roles, special tokens, and the exact text a model expects",
        _names("minimod.data.chat", "render_chat_template")
        + _names("minimod.data.bpe", "PretrainedBPETokenizer"),
        ("tests/test_chat_template.py",),
        e33_chat_templates.TEXT,
    ),
    Lesson(
        34,
        "e34_flash_attention",
        "FlashAttention: the online softmax, and attention in O(T) memory",
        _names("minimod.nn.flash_attention", "flash_attention", "_block_scores", "FlashAttention"),
        ("tests/test_flash_attention.py",),
        e34_flash_attention.TEXT,
    ),
    Lesson(
        35,
        "e35_detection",
        "One-stage detection: centres, assignment, NMS and average precision",
        _names(
            "minimod.models.detector",
            "encode_distances",
            "decode_distances",
            "assign_targets",
            "detection_loss",
        )
        + _names("minimod.models.boxes", "nms", "batched_nms", "_greedy_nms")
        + _names(
            "minimod.models.detection_metrics", "mean_average_precision", "_match", "_class_ap"
        ),
        ("tests/test_detector.py", "tests/test_detection.py"),
        e35_detection.TEXT,
    ),
    Lesson(
        36,
        "e36_depthwise",
        "Depthwise and grouped convolution, inverted residuals",
        _names("minimod.nn.conv", "_phases", "_phase_taps", "_DepthwiseConv2dFunction")
        + _names("minimod.models.mobilenet", "conv_bn_relu6", "InvertedResidual"),
        ("tests/test_depthwise.py",),
        e36_depthwise.TEXT,
    ),
)


@cache
def definition_index() -> dict[str, Lesson]:
    """Qualified name -> the lesson that teaches it."""
    return {name: lesson for lesson in LESSONS for name in lesson.definitions}


def lesson(number: int) -> Lesson:
    for candidate in LESSONS:
        if candidate.number == number:
            return candidate
    raise KeyError(f"no lesson {number}; lessons are {[x.number for x in LESSONS]}")
