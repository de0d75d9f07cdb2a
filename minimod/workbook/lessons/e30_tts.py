TEXT = """Lesson 30: Text to speech -- durations, the length regulator, and every frame at once

The idea
A text-to-speech model turns a sequence of S symbols (phonemes or letters) into T log-mel
frames (lesson 29: 80 bands every 256 samples, 11.6 ms at 22 050 Hz), T ≈ 7 S on eSpeak's
sentences; a vocoder (here Griffin-Lim) turns the frames into samples. The hard part is not the
frames but the ALIGNMENT: which frames belong to which symbol. In eSpeak's sentences a "t" lasts
about 5 frames, a stressed vowel 14, and the longest symbols 27.
SpeechSynthesizer is FastSpeech (Ren et al. 2019) in small: every symbol gets a DURATION in
frames, the symbol's vector is copied that many times (the length regulator), and a decoder
turns the copies into frames -- all frames at once, none fed back.

Two ways to solve alignment (the choice of this lesson)
- Autoregressive (Tacotron 2): a decoder predicts frame t from frames < t and attends over the
  symbols; a stop token says when to end. The attention has to DISCOVER the alignment while it
  learns to speak. With hours of speech and a GPU it does; with a few minutes of speech and two
  CPU cores it tends to skip words, repeat them, or never stop -- and it makes the frames one
  at a time.
- Non-autoregressive with a duration predictor (FastSpeech): the alignment is given BEFORE
  training, as one duration per symbol, and a small network learns to predict it for new text.
  Then the output length is known in advance, every frame is predicted in parallel (fast on a
  CPU, one forward pass to speak), and nothing can skip or babble.
minimod takes the second. Where do the durations come from? For human recordings, from a
forced aligner (a Viterbi alignment of an HMM or a CTC model, lesson 28, with the transcript).
Our speech is eSpeak NG's, and eSpeak REPORTS when each phoneme starts (data/espeak.py): the
durations are exact, free, and need no aligner. frame_durations turns those sample positions
into frames per symbol: frame j is centred on sample j · HOP (HOP = 256), and it belongs to the
last symbol starting at or before its centre, so the boundary of a symbol starting at sample s
is frame ceil(s / HOP); the first symbol owns any lead-in, and the durations sum to the
1 + samples // HOP frames of speech_features. Two starts inside the same hop give a duration 0
(5% of eSpeak's symbols, mostly its short pause markers).
    bounds = 0, ceil(s_1 / HOP), ..., ceil(s_{S-1} / HOP), frames   (each clipped to frames,
    made non-decreasing with cummax),   durations = the differences of neighbouring bounds
What it costs: one input, one output. Real speech says a phoneme in many ways (pitch, energy,
speed), and a model trained with L1 or L2 predicts their median or mean: blurred, OVER-SMOOTHED
frames, flat prosody, a muffled sound. FastSpeech 2 adds pitch and energy predictors; GAN,
flow and diffusion decoders model the spread. eSpeak says a text in a given voice almost the
same way every time, so here the mean is close to the truth; on human speech it is the main flaw.

The model, shapes
    symbols (B, S) ids, 0 = padding; speakers (B,); durations (B, S) ints or None
    padding = symbols == 0                                            (B, S)      True = padding
    x = (positions(symbols(symbols)) + speakers(speakers)) · keep     (B, S, d)
    encoder: x = block(x, padding) for each FFTBlock                  (B, S, d)
    log_durations = duration(x.detach(), padding)                     (B, S)      0 at padding
    y, lengths = regulate_length(x, durations)                        (B, T, d), (B,)
    frame_padding = t ≥ lengths[b]                                    (B, T)
    y = (positions(y) + speakers(speakers)) · (not frame_padding)     (B, T, d)
    decoder: y = block(y, frame_padding), then head(norm(y))          (B, T, n_mels)
SpeechSynthesizer.forward returns (log-mel (B, T, n_mels), lengths (B,), log_durations (B, S)),
and raises a ValueError (one sentence) when T exceeds config.max_frames, the positions' table.
self.positions(e) returns e plus the sinusoidal positions; they are added twice: over symbols in
the encoder, over frames in the decoder -- after the copy, the decoder must know where it is
inside each symbol. The speaker vectors (B, d) are added to every position, as (B, 1, d).
keep is (not padding) as a (B, S, 1) float in the model's dtype. symbols, speakers (the two
embeddings), positions, encoder, duration, decoder, norm and head are what __init__ sets.

The FFT block
FFTBlock is a pre-norm Transformer layer (lesson 10) whose MLP is two 1-D convolutions over time
(lesson 13) instead of two Linear maps: neighbouring frames sound alike, and a kernel of 3 sees
them. With keep = 1 at real positions, 0 at padding (B, L, 1):
    h = norm_1(x);   x = x + dropout(attn(h, h, h, key_padding_mask=padding))
    h = norm_2(x) · keep, as (B, d, L);   h = relu(conv_1(h)) · keep;   h = conv_2(h), as (B, L, d)
    return (x + dropout(h)) · keep
self.attn is nn.MultiheadAttention with batch_first=True; it returns (output, weights): pass
need_weights=False and take [0].
conv_1 maps d -> 2d channels and conv_2 back, both with padding k // 2 so L is kept. Conv1d reads
(B, channels, L): transpose before and after.

Why padding must be zeroed before EVERY convolution
A batch pads short utterances to the longest. A padded utterance must compute exactly what it
computes alone (the test checks it, to 1e-5). The attention is safe thanks to key_padding_mask
(no real position reads a padded key). A convolution is not: at the last real position a kernel
of 3 reads the next one, which alone would be the conv's own zero padding. And padding rows are
NOT zero after a LayerNorm (a zero row normalises to its bias β) or after the attention's
residual. So multiply by keep right before each convolution, and the block's output too, so the
next block starts clean. The duration predictor's convolutions need the same care. Masking
after a conv is too late: the real neighbour has already read the garbage.

The length regulator: a gather
regulate_length(x (B, S, d), durations (B, S)) -> (frames (B, T, d), lengths (B,)), T the
longest total (at least 1). Frame t of sequence b copies symbol
    source[b, t] = #{s : ends[b, s] ≤ t},     ends = durations.cumsum(1)
(the number of symbols that have ended by frame t). In tensors: compare ends (B, 1, S)
with arange(T) (1, T, 1), sum over S: (B, T); clamp to S - 1 (frames past the end would point
after the last symbol); x.gather(1, source expanded to (B, T, d)); multiply the frames with
t ≥ lengths[b] by 0. No Python loop, and gather is differentiable: the gradient of x[b, s] is
the sum of the gradients of its durations[b, s] copies (repeat_interleave does the same for one
sequence, but not for a batch with different totals). A symbol of duration 0 is skipped.

The duration predictor, and why it reads the encoder detached
DurationPredictor.forward: (B, S, d), padding (B, S) -> (B, S): h = x · keep, then twice
h = dropout(norm(relu(conv(h)))) · keep (conv_1, norm_1, then conv_2, norm_2; each conv over
the symbol axis), then out (Linear d -> 1), squeezed, times keep: 0 at padding. It predicts
log(1 + frames), and its loss is the mean squared error of that, over real symbols:
- durations are skewed: median 6 frames, 95% under 17, the longest 27. On raw frames the
  MSE would be ruled by the long ones; in logs an error is roughly RELATIVE (predicting twice
  the true duration costs about as much for 3 frames as for 30).
- the 1 + keeps a duration of 0 (two starts in one hop) finite: log(1 + 0) = 0.
The encoder output goes in DETACHED (x.detach()): the duration loss trains the predictor only.
Otherwise its gradient would also reshape the encoder, whose job is to serve the decoder: a
second, differently scaled loss pulling on the same features trades frame quality for duration
accuracy, and the duration is predictable from the features the decoder needs anyway.

Teacher-forced durations in training, predicted ones when speaking
Training passes the TRUE durations (teacher forcing): the regulated frames line up one to one
with the target frames, so the mel loss compares frame t with frame t. Speaking passes None:
    durations = max(1, round((exp(log_durations) - 1) / speed)),  0 at padding
at least one frame for every real symbol (a symbol that vanishes is a word lost); speed > 1
speaks faster. The error of the predicted durations is never seen by the decoder in training
-- the usual gap between teacher forcing and free running, much milder here than in an
autoregressive decoder, since a wrong duration stretches one symbol and does not derail the rest.

The loss
synthesis_loss(model, symbols, speakers, durations, features (B, T, n_mels) zero-padded)
returns (mel_loss, duration_loss):
    mel_loss      = Σ_{b, t < lengths[b]} mean_m |predicted - features| / Σ_b lengths[b]
    duration_loss = Σ_{real s} (log_durations - log(1 + durations))² / #real symbols
Each is a mean over REAL frames or symbols, never over the padded tensor: a batch with one long
utterance must not make the short ones' frames count for less. L1 rather than L2 on log-mels:
less blurring (the median, not the mean, of the ways to say it), and a few frames far off
(a misplaced boundary) do not dominate the loss.

Speaker embeddings
self.speakers is an Embedding(n_speakers, d): one learned vector per voice, added to every
symbol and again to every frame. The same text with another speaker id gives another voice
(eSpeak's voice variants: pitch, formants, rate); the rest of the network is shared, so a voice
with few utterances borrows what all the others taught.

Judging the output: DTW and mel-cepstral distortion
Generated frames and the reference rarely have the same length (predicted durations), so they
cannot be compared frame by frame. dtw_path(cost (T1, T2)) finds the monotonic alignment of
least total cost, from (0, 0) to (T1 - 1, T2 - 1), each step (1, 0), (0, 1) or (1, 1):
    D[0][0] = 0, D[i][0] = D[0][j] = inf otherwise     (D is (T1 + 1, T2 + 1))
    D[i][j] = cost[i - 1, j - 1] + min(D[i - 1][j - 1], D[i - 1][j], D[i][j - 1])
then walk back from (T1, T2), each time to the smallest of the three predecessors (ties: the
diagonal), collecting (i - 1, j - 1), and reverse the list. Python lists, not tensors: the
recursion goes cell by cell, and indexing a tensor costs far more per cell than a list does.
mel_cepstral_distortion(generated, reference) compares the two log-mel sequences on
mel_cepstra (the given helper: the DCT of half the log power, c_1 .. c_12, the loudness c_0
dropped), with cost = torch.cdist of the cepstra, along dtw_path:
    MCD = (10 / ln 10) · sqrt(2) · mean over the path of ‖c - c'‖     in dB, a float
0 for identical frames, and also for the same frames at half speed: DTW does not count speaking
rate as distortion.

What you write
FFTBlock.forward, DurationPredictor.forward, regulate_length, SpeechSynthesizer.forward after
its input check, synthesis_loss; frame_durations, dtw_path and mel_cepstral_distortion. Every
__init__ (the layers and their names), the config, mel_cepstra and centred_frames are given.

Classic pitfalls
- Zeroing padding after a convolution instead of before: the last real frame has already read
  its padded neighbour; padded and unpadded batches then disagree.
- Assuming a LayerNorm keeps padding rows at zero: a zero row comes out as the bias β.
- key_padding_mask with the wrong meaning: True = IGNORE this key (torch's convention).
- Averaging the losses over the padded tensor: short utterances count less, and the loss
  changes with the batch.
- The duration loss on raw frames, or on log(d) (-inf for d = 0).
- Rounding durations without the floor of 1: a short phoneme disappears.
- Predicted durations in training: the frames no longer line up with the targets.
- regulate_length with a Python loop over the batch: correct but slow (a small copy per
  sequence, then padding by hand), and the padding is easy to get wrong.
- Forgetting x.detach() before the duration predictor: it trains, but the frames get worse.

A worked example
x = (1, 2, 3) as a (1, 3, 1) tensor, durations (2, 0, 3): ends = (2, 2, 5), T = 5, and
source = (0, 0, 2, 2, 2) (at t = 2 two symbols have ended: the one of duration 0 is skipped),
so the frames are (1, 1, 3, 3, 3), lengths (5). The gradient of x is (2, 0, 3) -- the durations.
With a second sequence of durations (1, 1, 0): ends (1, 2, 2), its frames (1, 2, 0, 0, 0).
frame_durations([0, 300, 600], 1024): 1 + 1024 // 256 = 5 frames, bounds 0, ceil(300 / 256)
= 2, ceil(600 / 256) = 3, 5 -> durations (2, 1, 2).

Run it
Once `minimod exercises check 30` passes, your synthesiser -- FFT blocks, duration predictor,
length regulator, loss -- trains on eSpeak NG's digit strings (after `make real`; --use-mine
swaps in every lesson that passes and says which):
    minimod pretrain tts --use-mine --out runs/e30
prints which lessons are yours, the loss every 10 steps (about 7.7 at step 10, 5.3 at step 20),
then "done: step 40, held-out mel_l1 4.106, duration_mse 0.1737, length_error 12.4" (about
75 s on 2 busy shared cores). Then `minimod speak --from runs/e30 --text 'three one four'
--out speech.wav` prints the phonemes it said and "0.80 s of audio", and speech.png puts its
frames above eSpeak's: after 40 steps, a steady hum (the average spectrum) of about the right
length (70 frames for eSpeak's 83), not yet words; `--preset baby` (3000 steps) speaks
digits.
Next: lesson 31 (Quantization: block scales, 4-bit packing, and what the round trip costs)

Check it: minimod exercises check 30
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e30_tts import SpeechSynthesizer, dtw_path, frame_durations
    >>> from exercises.e30_tts import regulate_length
    >>> from minimod.models.tts import SpeechSynthesizerConfig
    >>> x = torch.tensor([[[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.0]]])
    >>> frames, lengths = regulate_length(x, torch.tensor([[2, 0, 3], [1, 1, 0]]))
    >>> frames[..., 0], lengths
    (tensor([[1., 1., 3., 3., 3.],
            [1., 2., 0., 0., 0.]]), tensor([5, 2]))
    >>> frame_durations([0, 300, 600], 1024)
    tensor([2, 1, 2])
    >>> dtw_path(torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    [(0, 0), (1, 1), (1, 2)]
    >>> config = SpeechSynthesizerConfig(n_symbols=6, n_speakers=2, n_mels=4, d_model=8)
    >>> model = SpeechSynthesizer(config).eval()
    >>> symbols, speakers = torch.tensor([[1, 2, 3, 0]]), torch.tensor([1])
    >>> mel, lengths, log_durations = model(symbols, speakers, torch.tensor([[2, 1, 3, 0]]))
    >>> mel.shape, lengths, log_durations.shape
    (torch.Size([1, 6, 4]), tensor([6]), torch.Size([1, 4]))
"""
