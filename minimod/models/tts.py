"""A small non-autoregressive text-to-speech model, after FastSpeech (Ren et al. 2019): symbols
in, log-mel frames out, every frame at once.

    symbols (B, S) ids, speakers (B,)
      -> symbol embedding + speaker embedding + sinusoidal positions          (B, S, d)
      -> encoder: FFT blocks (self-attention, then a 1-D convolution MLP)     (B, S, d)
      -> duration predictor: two convolutions -> log(1 + frames) per symbol   (B, S)
      -> length regulator: symbol s repeated durations[s] times              (B, T, d)
         (training: the true durations; speaking: the predicted ones, rounded)
      -> + sinusoidal positions over frames, decoder: FFT blocks               (B, T, d)
      -> Linear to n_mels: log-mel frames                                     (B, T, n_mels)

Why not autoregressive: a decoder that feeds its own frames back must learn when to stop and
where to attend, and on a few minutes of speech and 2 CPU cores it babbles or stops early. Here
the durations are given by the data (eSpeak reports when each phoneme starts), so alignment is
solved before training, every frame is predicted in parallel (fast on a CPU) and the length of
the output is known in advance. The cost: one output per input -- the model averages over the
ways a phoneme can sound, so its frames are smoother than real speech.

Symbol 0 is padding. Loss: L1 on the frames inside each utterance, plus the mean squared error
of the predicted log durations. Lesson 30 teaches this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minimod import nn
from minimod.nn import functional as F


@dataclass
class SpeechSynthesizerConfig:
    n_symbols: int = 32  # symbol 0 is padding
    n_speakers: int = 1
    n_mels: int = 80
    d_model: int = 128
    n_heads: int = 2
    encoder_layers: int = 2
    decoder_layers: int = 2
    kernel_size: int = 3  # the convolutions of the FFT blocks and the duration predictor
    dropout: float = 0.1
    max_frames: int = 2048  # the longest utterance (positions table)
    symbols: tuple[str, ...] = ()  # the symbols' names by id ("<pad>" first), or () unnamed

    def __post_init__(self) -> None:
        if self.symbols and len(self.symbols) != self.n_symbols:
            raise ValueError(
                f"SpeechSynthesizerConfig: {len(self.symbols)} symbol names for n_symbols "
                f"{self.n_symbols}"
            )
        sizes = (self.n_symbols, self.n_speakers, self.n_mels, self.d_model, self.n_heads)
        if min(sizes) < 1 or self.n_symbols < 2 or self.d_model % self.n_heads:
            raise ValueError(
                "SpeechSynthesizerConfig: need n_symbols ≥ 2 (0 is padding), every size ≥ 1 and "
                f"d_model divisible by n_heads, got {self}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(
                f"SpeechSynthesizerConfig: kernel_size must be odd, got {self.kernel_size}"
            )


class FFTBlock(nn.Module):
    """FastSpeech's feed-forward Transformer block, pre-norm: x + attention(norm(x)), then
    x + conv MLP(norm(x)), where the MLP's two linear maps are 1-D convolutions over time
    (neighbouring frames sound alike). Padding positions are masked out of the attention and
    zeroed before each convolution and after the block, so a padded sequence computes what it
    would alone. x (B, L, d), padding (B, L) True = padding -> (B, L, d)."""

    def __init__(self, config: SpeechSynthesizerConfig) -> None:
        super().__init__()
        d, k = config.d_model, config.kernel_size
        self.norm_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, config.n_heads, config.dropout, batch_first=True)
        self.norm_2 = nn.LayerNorm(d)
        self.conv_1 = nn.Conv1d(d, 2 * d, k, padding=k // 2)
        self.conv_2 = nn.Conv1d(2 * d, d, k, padding=k // 2)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        keep = (~padding)[..., None].to(x.dtype)
        h = self.norm_1(x)
        x = x + self.dropout(self.attn(h, h, h, key_padding_mask=padding, need_weights=False)[0])
        h = (self.norm_2(x) * keep).transpose(1, 2)  # (B, d, L): time is the conv axis
        h = F.relu(self.conv_1(h)) * keep.transpose(1, 2)
        h = self.conv_2(h).transpose(1, 2)
        return (x + self.dropout(h)) * keep
        # END SOLUTION


class DurationPredictor(nn.Module):
    """(B, S, d) -> log(1 + frames) per symbol (B, S): conv, ReLU, LayerNorm, twice, then
    a linear map. Trained on the encoder's output detached (its loss must not reshape the
    encoder)."""

    def __init__(self, config: SpeechSynthesizerConfig) -> None:
        super().__init__()
        d, k = config.d_model, config.kernel_size
        self.conv_1 = nn.Conv1d(d, d, k, padding=k // 2)
        self.norm_1 = nn.LayerNorm(d)
        self.conv_2 = nn.Conv1d(d, d, k, padding=k // 2)
        self.norm_2 = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """x (B, S, d), padding (B, S) True = padding -> (B, S), 0 at padding."""
        # BEGIN SOLUTION
        keep = (~padding)[..., None].to(x.dtype)
        h = x * keep
        for conv, norm in ((self.conv_1, self.norm_1), (self.conv_2, self.norm_2)):
            h = conv(h.transpose(1, 2)).transpose(1, 2)
            h = self.dropout(norm(F.relu(h))) * keep
        return self.out(h)[..., 0] * keep[..., 0]
        # END SOLUTION


def regulate_length(x: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FastSpeech's length regulator: row s of each sequence repeated durations[b, s] times.

    x (B, S, d), durations (B, S) integers ≥ 0 (0 at padding) -> (frames (B, T, d) zero-padded
    to T = the longest total, frame lengths (B,)). Gradients flow back to x."""
    # BEGIN SOLUTION
    lengths = durations.sum(1)
    longest = max(int(lengths.max()) if len(lengths) else 0, 1)
    # Frame t of sequence b comes from symbol s = the number of symbols that end at or before t.
    ends = durations.cumsum(1)  # (B, S)
    frames = torch.arange(longest, device=x.device)
    source = (ends[:, None, :] <= frames[None, :, None]).sum(-1)  # (B, T)
    inside = frames[None, :] < lengths[:, None]
    source = source.clamp(max=x.shape[1] - 1)
    out = x.gather(1, source[..., None].expand(-1, -1, x.shape[-1]))
    return out * inside[..., None].to(x.dtype), lengths
    # END SOLUTION


class SpeechSynthesizer(nn.Module):
    """symbols (B, S), speakers (B,), durations (B, S) or None -> (log-mel (B, T, n_mels),
    frame lengths (B,), predicted log(1 + durations) (B, S))."""

    def __init__(self, config: SpeechSynthesizerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.symbols = nn.Embedding(config.n_symbols, d, padding_idx=0)
        self.speakers = nn.Embedding(config.n_speakers, d)
        self.positions = nn.SinusoidalPositional(d, config.max_frames)
        self.encoder = nn.ModuleList([FFTBlock(config) for _ in range(config.encoder_layers)])
        self.duration = DurationPredictor(config)
        self.decoder = nn.ModuleList([FFTBlock(config) for _ in range(config.decoder_layers)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.n_mels)

    def forward(
        self,
        symbols: torch.Tensor,
        speakers: torch.Tensor,
        durations: torch.Tensor | None = None,
        speed: float = 1.0,
    ):
        """durations None: the predicted ones (rounded, at least 1 frame per real symbol,
        divided by ``speed``)."""
        if symbols.dim() != 2 or speakers.shape != symbols.shape[:1]:
            raise ValueError(
                f"SpeechSynthesizer: expected symbols (B, S) and speakers (B,), got "
                f"{tuple(symbols.shape)} and {tuple(speakers.shape)}"
            )
        # BEGIN SOLUTION
        padding = symbols == 0
        keep = (~padding)[..., None].to(self.head.weight.dtype)
        x = (self.positions(self.symbols(symbols)) + self.speakers(speakers)[:, None]) * keep
        for block in self.encoder:
            x = block(x, padding)
        log_durations = self.duration(x.detach(), padding)
        if durations is None:
            frames = torch.round(torch.expm1(log_durations) / speed).clamp(min=1)
            durations = frames.long().masked_fill(padding, 0)
        y, lengths = regulate_length(x, durations)
        if y.shape[1] > self.config.max_frames:
            raise ValueError(
                f"SpeechSynthesizer: {y.shape[1]} frames exceed max_frames {self.config.max_frames}"
            )
        frame_padding = torch.arange(y.shape[1], device=y.device)[None] >= lengths[:, None]
        y = (self.positions(y) + self.speakers(speakers)[:, None]) * (~frame_padding)[..., None]
        for block in self.decoder:
            y = block(y, frame_padding)
        return self.head(self.norm(y)), lengths, log_durations
        # END SOLUTION


def synthesis_loss(
    model: SpeechSynthesizer,
    symbols: torch.Tensor,
    speakers: torch.Tensor,
    durations: torch.Tensor,
    features: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L1 of the log-mel frames, MSE of the log durations), each averaged over real frames or
    symbols. features (B, T, n_mels) zero-padded; durations (B, S) (0 at padding)."""
    # BEGIN SOLUTION
    predicted, lengths, log_durations = model(symbols, speakers, durations)
    frames = torch.arange(features.shape[1], device=features.device)[None] < lengths[:, None]
    mel_loss = ((predicted - features).abs().mean(-1) * frames).sum() / frames.sum()
    real = symbols != 0
    target = torch.log1p(durations.to(log_durations.dtype))
    duration_loss = (((log_durations - target) ** 2) * real).sum() / real.sum()
    return mel_loss, duration_loss
    # END SOLUTION
