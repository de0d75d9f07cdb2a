"""A small CTC speech recogniser (in the spirit of Deep Speech 2, Amodei et al. 2016): strided
1-D convolutions over time, a bidirectional GRU, and a per-frame linear head over the words plus
the CTC blank.

    features (B, T, n_features)
      -> conv front end: Conv1d + BatchNorm1d + ReLU per width, the first with stride in time
         (B, T', width), T' = frames after the stride
      -> bidirectional GRU over the T' frames, each sequence to its own length  (B, T', 2H)
      -> Linear to vocab_size + 1 classes, log-softmax                          (B, T', C)
      -> transposed to (T', B, C), the layout ``nn.ctc_loss`` and the decoders take.

Class 0 is the blank; class k + 1 is word k of the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minimod import nn
from minimod.nn import functional as F

BLANK = 0


@dataclass
class SpeechRecognizerConfig:
    n_features: int = 13  # coefficients per frame (MFCCs or log-mel bands)
    vocab_size: int = 10  # words; the head has vocab_size + 1 classes (blank = 0)
    conv_widths: tuple[int, ...] = (64, 64)
    kernel_size: int = 5
    stride: int = 2  # the first convolution's stride in time: T' = ceil(T / stride)
    hidden_size: int = 128  # per direction
    num_layers: int = 2
    dropout: float = 0.0  # between GRU layers

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(
                f"SpeechRecognizerConfig: kernel_size must be odd and ≥ 1, got {self.kernel_size}"
            )
        sizes = (self.n_features, self.vocab_size, self.stride, self.hidden_size, self.num_layers)
        if not self.conv_widths or min(self.conv_widths) < 1 or min(sizes) < 1:
            raise ValueError(
                "SpeechRecognizerConfig: conv_widths, n_features, vocab_size, stride, "
                f"hidden_size and num_layers must be ≥ 1, got {self}"
            )


class SpeechRecognizer(nn.Module):
    """features (B, T, n_features) and lengths (B,) -> (log_probs (T', B, vocab_size + 1),
    output lengths (B,))."""

    def __init__(self, config: SpeechRecognizerConfig) -> None:
        super().__init__()
        self.config = config
        # Conv -> BatchNorm -> ReLU per width, "same" padding; only the first conv strides in
        # time, so the GRU reads T / stride frames.
        layers, channels, k = [], config.n_features, config.kernel_size
        for index, width in enumerate(config.conv_widths):
            stride = config.stride if index == 0 else 1
            conv = nn.Conv1d(channels, width, k, stride, padding=k // 2, bias=False)
            layers += [conv, nn.BatchNorm1d(width), nn.ReLU()]
            channels = width
        self.conv = nn.Sequential(*layers)
        self.rnn = nn.GRU(
            channels,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout,
            bidirectional=True,
        )
        self.head = nn.Linear(2 * config.hidden_size, config.vocab_size + 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames (B,) -> frames after the strided convolution (B,): (T + 2p - k) // s + 1."""
        k = self.config.kernel_size
        return (lengths + 2 * (k // 2) - k) // self.config.stride + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        """x (B, T, n_features), lengths (B,) (None: all T) -> (log_probs (T', B, C),
        output lengths (B,))."""
        if x.dim() != 3 or x.shape[-1] != self.config.n_features:
            raise ValueError(
                f"SpeechRecognizer: expected features of shape (B, T, "
                f"{self.config.n_features}), got {tuple(x.shape)}"
            )
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T', width): time is the conv axis
        out_lengths = self.output_lengths(lengths)
        h, _ = self.rnn(h, lengths=out_lengths)  # (B, T', 2H); past its length a row is ignored
        log_probs = F.log_softmax(self.head(h), dim=-1)  # (B, T', C)
        return log_probs.transpose(0, 1), out_lengths
