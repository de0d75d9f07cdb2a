"""torch.nn twins of minimod's models: the same architecture under the same parameter names.

Each twin loads the minimod model's state_dict (``twin.load_state_dict(mine.state_dict())``),
so both start from the same weights, and uses what plain PyTorch offers: ``nn.Linear``,
``nn.LayerNorm``, ``F.scaled_dot_product_attention``, ``nn.Conv2d``, ``nn.BatchNorm2d``.
torch.nn is allowed here: it is the reference. The one copy: bench.py times these twins and the
tests check against them (tests/test_cnn.py imports ``benchmarks.twins``; conftest.py puts the
repository root on the path).
"""

from __future__ import annotations

import torch
import torch.nn as tnn
import torch.nn.functional as TF

from minimod.models.bert import BERTConfig
from minimod.models.cnn import ResNetConfig
from minimod.models.gpt import GPTConfig

# --------------------------------------------------------------------------------------------
# GPT (nanoGPT's model.py, with minimod's / GPT-2's module names)


class TwinCausalSelfAttention(tnn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = tnn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = tnn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class TwinMLP(tnn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = tnn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = tnn.GELU(approximate=config.gelu_approximate)
        self.c_proj = tnn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class TwinGPTBlock(tnn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = tnn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = TwinCausalSelfAttention(config)
        self.ln_2 = tnn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = TwinMLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TwinGPT(tnn.Module):
    """forward(idx, targets) -> (logits, loss), as minimod's GPT (dropout 0 only)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.dropout:
            raise ValueError("TwinGPT: the benchmark twins have no dropout (use dropout=0.0)")
        self.config = config
        self.transformer = tnn.ModuleDict(
            dict(
                wte=tnn.Embedding(config.vocab_size, config.n_embd),
                wpe=tnn.Embedding(config.block_size, config.n_embd),
                h=tnn.ModuleList([TwinGPTBlock(config) for _ in range(config.n_layer)]),
                ln_f=tnn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = tnn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = TF.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1
            )
        return logits, loss


# --------------------------------------------------------------------------------------------
# BERT (post-LayerNorm encoder + masked-LM head, with minimod's module names)


class TwinBertEmbeddings(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = tnn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        self.position_embeddings = tnn.Embedding(config.max_position_embeddings, H)
        self.token_type_embeddings = tnn.Embedding(config.type_vocab_size, H)
        self.ln = tnn.LayerNorm(H, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.ln(x)


class TwinBertSelfAttention(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = tnn.Linear(config.hidden_size, config.hidden_size)
        self.key = tnn.Linear(config.hidden_size, config.hidden_size)
        self.value = tnn.Linear(config.hidden_size, config.hidden_size)
        self.out = tnn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (
            layer(x).view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)
            for layer in (self.query, self.key, self.value)
        )
        y = TF.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class TwinBertMLP(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.up = tnn.Linear(config.hidden_size, config.intermediate_size)
        self.down = tnn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(TF.gelu(self.up(x)))


class TwinBertLayer(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.attn = TwinBertSelfAttention(config)
        self.ln_1 = tnn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = TwinBertMLP(config)
        self.ln_2 = tnn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.ln_1(x + self.attn(x, mask))
        return self.ln_2(x + self.mlp(x))


class TwinBertEncoder(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.layer = tnn.ModuleList(
            [TwinBertLayer(config) for _ in range(config.num_hidden_layers)]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class TwinBERT(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.embeddings = TwinBertEmbeddings(config)
        self.encoder = TwinBertEncoder(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = None
        if attention_mask is not None:
            mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): True = attend
        return self.encoder(self.embeddings(input_ids, token_type_ids), mask)


class TwinBertMLMHead(tnn.Module):
    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        self.dense = tnn.Linear(config.hidden_size, config.hidden_size)
        self.ln = tnn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = tnn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.ln(TF.gelu(self.dense(x))))


class TwinBERTForMaskedLM(tnn.Module):
    """forward(input_ids, attention_mask, token_type_ids, labels) -> (logits, loss), as
    minimod's BERTForMaskedLM (no dropout: the benchmarks use dropout 0)."""

    def __init__(self, config: BERTConfig) -> None:
        super().__init__()
        if config.hidden_dropout_prob or config.attention_probs_dropout_prob:
            raise ValueError("TwinBERTForMaskedLM: the benchmark twins have no dropout")
        self.config = config
        self.bert = TwinBERT(config)
        self.lm_head = TwinBertMLMHead(config)
        self.lm_head.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        logits = self.lm_head(self.bert(input_ids, attention_mask, token_type_ids))
        loss = None
        if labels is not None:
            loss = TF.cross_entropy(
                logits.view(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100
            )
        return logits, loss


# --------------------------------------------------------------------------------------------
# ResNet (CIFAR-style: 3x3 stem, BasicBlocks, global average pooling, linear head)


class TwinBlock(tnn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(out_channels)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(out_channels)
        self.shortcut = tnn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = tnn.Sequential(
                tnn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False),
                tnn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class TwinResNet(tnn.Module):
    """torch.nn layers, minimod's module names: loads a minimod ResNet's state_dict."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        widths = config.widths
        self.stem = tnn.Sequential(
            tnn.Conv2d(config.in_channels, widths[0], 3, padding=1, bias=False),
            tnn.BatchNorm2d(widths[0]),
            tnn.ReLU(),
        )
        stages, channels = [], widths[0]
        for index, (width, depth) in enumerate(zip(widths, config.depths, strict=True)):
            blocks = [TwinBlock(channels, width, 1 if index == 0 else 2)]
            blocks += [TwinBlock(width, width) for _ in range(depth - 1)]
            stages.append(tnn.Sequential(*blocks))
            channels = width
        self.stages = tnn.Sequential(*stages)
        self.pool = tnn.AdaptiveAvgPool2d(1)
        self.head = tnn.Linear(widths[-1], config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))


def twin_make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, ≥ 90% of value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class TwinConvNormActivation(tnn.Sequential):
    """torchvision's Conv2dNormActivation with ReLU6: conv (no bias), batch norm, ReLU6."""

    def __init__(self, inp: int, oup: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            tnn.Conv2d(inp, oup, kernel_size, stride, padding, groups=groups, bias=False),
            tnn.BatchNorm2d(oup),
            tnn.ReLU6(inplace=True),
        )


class TwinInvertedResidual(tnn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[tnn.Module] = []
        if expand_ratio != 1:
            layers.append(TwinConvNormActivation(inp, hidden_dim, kernel_size=1))
        layers += [
            TwinConvNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            tnn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            tnn.BatchNorm2d(oup),
        ]
        self.conv = tnn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TwinMobileNetV2(tnn.Module):
    """torchvision's MobileNetV2 (torchvision/models/mobilenetv2.py) rewritten with torch.nn:
    its module tree, so its state_dict keys (torchvision itself cannot be installed beside the
    pinned torch). Loads torchvision's ImageNet file and minimod's MobileNetV2 alike."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2]]
        setting += [[6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        input_channel = twin_make_divisible(32 * width_mult)
        self.last_channel = twin_make_divisible(1280 * max(1.0, width_mult))
        features: list[tnn.Module] = [TwinConvNormActivation(3, input_channel, stride=2)]
        for t, c, n, s in setting:
            output_channel = twin_make_divisible(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(TwinInvertedResidual(input_channel, output_channel, stride, t))
                input_channel = output_channel
        features.append(TwinConvNormActivation(input_channel, self.last_channel, kernel_size=1))
        self.features = tnn.Sequential(*features)
        self.classifier = tnn.Sequential(
            tnn.Dropout(p=dropout), tnn.Linear(self.last_channel, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = TF.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))
