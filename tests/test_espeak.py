"""Speech from eSpeak NG (minimod.data.espeak): deterministic renders, phoneme and word timings,
speakers that sound different, the corpus and its cache, held-out texts, and the error without
the package.

Not a lesson: these tests check minimod's own data tool, so they import it directly. Rendering
needs the espeakng-loader package that `make real` installs; those tests are marked ``real``
and skip with the hint "run `make real`" when it is absent.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from minimod.data import espeak
from minimod.data.splits import SPLITS, MissingDataError
from minimod.data.wav import read_wav, write_wav

# tests/conftest.py skips `real` tests when its REAL_PACKAGES are absent; this one too.
needs_espeak = pytest.mark.skipif(
    importlib.util.find_spec("espeakng_loader") is None,
    reason="needs espeakng-loader: run `make real`",
)

DIGITS = "three one four one five"


def f0(waveform: torch.Tensor, phonemes, sample_rate: int = espeak.SAMPLE_RATE) -> float:
    """The median pitch (Hz) over the stressed vowels, by YIN's cumulative mean normalised
    difference (de Cheveigné & Kawahara 2002): 1024-sample frames, lags up to 400 samples."""
    x = waveform.double()
    shortest = sample_rate // 500  # nothing above 500 Hz
    found = []
    for name, start, end in phonemes:
        if not name.startswith("'") or end - start < 1024:
            continue
        windows = x[start:end].unfold(0, 1024, 256).unfold(1, 512, 1)[:, :400]  # (F, 400, 512)
        difference = ((windows[:, :1] - windows[:, 1:]) ** 2).sum(-1)  # (F, 399): lags 1..399
        normalised = difference * torch.arange(1, 400) / difference.cumsum(-1)
        for curve in normalised.tolist():
            below = [lag for lag in range(shortest, 399) if curve[lag] < 0.2]
            if below:
                lag = below[0]
                while lag + 1 < 399 and curve[lag + 1] < curve[lag]:
                    lag += 1
                found.append(sample_rate / (lag + 1))
    return float(torch.tensor(found).median())


# ============================================================================ rendering


@pytest.mark.real
@needs_espeak
def test_render_is_deterministic_whatever_was_rendered_before():
    first = espeak.render(DIGITS, "en-us+f2")  # f2 breathes: eSpeak's noise generator runs
    espeak.render("the old farmer carries my box today", "en-us+klatt", rate=300, pitch=90)
    again = espeak.render(DIGITS, "en-us+f2")
    assert torch.equal(first.waveform, again.waveform)
    assert first.phonemes == again.phonemes and first.words == again.words


@pytest.mark.real
@needs_espeak
def test_waveform_sample_rate_and_phonemes_in_order_inside_the_waveform():
    rendered = espeak.render(DIGITS)
    wave = rendered.waveform
    assert rendered.sample_rate == espeak.SAMPLE_RATE == 22050
    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert 0.5 < len(wave) / 22050 < 3 and wave.abs().max() <= 1 and wave.abs().max() > 0.1
    starts = [start for _, start, _ in rendered.phonemes]
    ends = [end for _, _, end in rendered.phonemes]
    assert all(isinstance(name, str) and name for name, _, _ in rendered.phonemes)
    assert starts == sorted(starts) and 0 <= starts[0] and ends[-1] == len(wave)
    assert starts[1:] == ends[:-1], "each phoneme ends where the next starts"
    spoken = [name for name, start, end in rendered.phonemes if not name.startswith("_")]
    assert len(spoken) >= 12  # T r 'i: / w 'V n / f 'o@ r / ... at least 2 a word


@pytest.mark.real
@needs_espeak
def test_every_digit_word_has_its_own_phonemes():
    rendered = espeak.render(DIGITS)
    assert [word for word, _, _ in rendered.words] == DIGITS.split()
    per_word = []
    for word, start, end in rendered.words:
        inside = [name for name, s, e in rendered.phonemes if start <= s and e <= end]
        assert inside and start < end, f"{word!r} has no phonemes"
        per_word.append(inside)
    assert per_word[1] == per_word[3], "'one' is spoken with the same phonemes both times"
    assert [end for _, _, end in rendered.words] == sorted(end for _, _, end in rendered.words)


@pytest.mark.real
@needs_espeak
def test_speakers_differ_female_voices_are_higher():
    pitches = []
    renders = []
    for speaker in espeak.SPEAKERS:
        rendered = espeak.render("five nine", speaker.voice, speaker.rate, speaker.pitch)
        renders.append(rendered.waveform)
        pitches.append(f0(rendered.waveform, rendered.phonemes))
    for i in range(len(renders)):
        for j in range(i):
            assert not torch.equal(renders[i], renders[j]), f"speakers {j} and {i} sound alike"
    male = [p for p, s in zip(pitches, espeak.SPEAKERS, strict=True) if not s.female]
    female = [p for p, s in zip(pitches, espeak.SPEAKERS, strict=True) if s.female]
    assert 60 < min(male) and max(male) * 1.2 < min(female) and max(female) < 300, pitches


@pytest.mark.real
@needs_espeak
def test_a_render_saves_to_a_wav_file_exactly(tmp_path):
    rendered = espeak.render("seven", "en-us+f4")
    write_wav(tmp_path / "seven.wav", rendered.waveform, rendered.sample_rate)
    waveform, sample_rate = read_wav(tmp_path / "seven.wav")
    assert sample_rate == 22050 and torch.equal(waveform, rendered.waveform)


@pytest.mark.real
@needs_espeak
def test_an_unknown_voice_is_named():
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        espeak.render("one", "xx-nowhere")


# ============================================================================ the corpus


@pytest.mark.real
@needs_espeak
def test_corpus_round_trips_through_the_cache_and_matches_render(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMOD_CACHE", str(tmp_path))
    made = espeak.render_corpus(5, seed=3, kind="digits")
    files = list(tmp_path.glob("espeak-digits-v*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob(".*.tmp")), "one file, written atomically"
    loaded = espeak.render_corpus(5, seed=3, kind="digits")
    assert loaded.texts == made.texts and torch.equal(loaded.speakers, made.speakers)
    assert loaded.phonemes == made.phonemes and loaded.words == made.words
    assert all(torch.equal(a, b) for a, b in zip(loaded.waveforms, made.waveforms, strict=True))
    assert (made.texts, made.speakers.tolist()) == espeak.corpus_texts(5, 3, "digits")
    for text, speaker, wave, phonemes in zip(
        made.texts, made.speakers.tolist(), made.waveforms, made.phonemes, strict=True
    ):
        voice = espeak.SPEAKERS[speaker]
        alone = espeak.render(text, voice.voice, voice.rate, voice.pitch)
        assert torch.equal(wave, alone.waveform) and phonemes == alone.phonemes
    sentences = espeak.render_corpus(2, seed=0, kind="sentences", cache=False)
    vocabulary = {*espeak.DETERMINERS, *espeak.ADJECTIVES, *espeak.NOUNS, *espeak.VERBS}
    vocabulary |= set(espeak.ADVERBS)
    for text, words in zip(sentences.texts, sentences.words, strict=True):
        assert set(text.split()) <= vocabulary and [w for w, _, _ in words] == text.split()


# ---------------------------------------------------------- what needs no eSpeak NG at all


@pytest.mark.parametrize("kind", espeak.KINDS)
def test_held_out_texts_are_never_in_training(kind):
    texts = {split: set(espeak.corpus_texts(1500, 0, kind, split)[0]) for split in SPLITS}
    other_seed = set(espeak.corpus_texts(1500, 1, kind, "train")[0])
    assert not (texts["test"] | texts["val"]) & (texts["train"] | other_seed)
    assert not texts["test"] & texts["val"]
    assert all(espeak.split_of(t) == split for split in texts for t in texts[split])
    if kind == "digits":
        words = {w for text in texts["train"] for w in text.split()}
        lengths = {len(text.split()) for text in texts["train"]}
        assert words == set(espeak.DIGIT_WORDS) and lengths == set(range(1, 8))
    speakers = espeak.corpus_texts(400, 0, kind, "test", speakers=[2, 5])[1]
    assert set(speakers) == {2, 5}
    assert espeak.corpus_texts(20, 7, kind) == espeak.corpus_texts(20, 7, kind), "seeded"


def test_missing_package_names_make_real(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # the import fails
    with pytest.raises(MissingDataError, match=r"espeakng-loader .*run `make real`"):
        espeak.render("one")
    with pytest.raises(MissingDataError, match="make real"):
        espeak.render_corpus(1, cache=True)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: espeak.render(""), "something to say"),
        (lambda: espeak.render("one", rate=20), "rate must be an integer in 80..450"),
        (lambda: espeak.render("one", pitch=101), "pitch must be an integer in 0..100"),
        (lambda: espeak.render_corpus(-1), "n must be an integer"),
        (lambda: espeak.render_corpus(1, kind="words"), "kind must be one of"),
        (lambda: espeak.render_corpus(1, split="dev"), "split must be one of"),
        (lambda: espeak.render_corpus(1, speakers=[8]), r"speakers must be indices in 0..7"),
    ],
)
def test_bad_arguments_are_named_before_espeak_loads(call, message):
    with pytest.raises(ValueError, match=message):
        call()
