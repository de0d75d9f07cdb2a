"""Real synthetic speech, offline, from eSpeak NG: ``render(text)`` speaks one text and reports
which phoneme is heard when; ``render_corpus(n, seed, kind)`` speaks ``n`` seeded digit strings
or short sentences in several voices ("speakers") and caches them (see data/README.md).

eSpeak NG (GPL-3.0) is an optional data tool, not part of minimod: ``make real`` installs the
``espeakng-loader`` package, which ships eSpeak NG's shared library and its voice data, and this
module loads that library by path with ``ctypes``, only when a function here is called (the
package's own Python is imported then too, for the path). minimod's core (nn, models, train,
optim) never imports this module.

Every utterance is spoken by a freshly loaded library, unloaded afterwards. eSpeak
keeps synthesis state between utterances in C statics (a pitch-flutter phase and others, and
a noise generator seeded from the clock), so the same text would otherwise sound slightly
different after other texts; loaded afresh, with the noise seeded, a render depends only on its
arguments. Loading takes a few milliseconds; a lock keeps one render at a time per process.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import importlib.metadata
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch

from minimod.data.cache import cached
from minimod.data.splits import PREPARE_HINT, MissingDataError, check_split

LOADER_PACKAGE = "espeakng-loader"
LOADER_VERSION = "0.2.4"  # the version `make real` installs and the tests were written against
SAMPLE_RATE = 22050  # eSpeak NG always synthesises at 22,050 Hz

# From eSpeak NG's speak_lib.h.
AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns when the whole text is spoken
INITIALIZE_PHONEME_EVENTS = 0x0001  # report a PHONEME event at the start of each phoneme
INITIALIZE_DONT_EXIT = 0x8000  # return -1 instead of exiting the process when data is missing
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4
RATE_LIMITS = (80, 450)  # words per minute, espeakRATE_MINIMUM .. espeakRATE_MAXIMUM
NOISE_SEED = 0  # eSpeak's noise generator (breathy voices, the Klatt synthesiser)


class Speaker(NamedTuple):
    """One voice variant: an eSpeak voice name ("language+variant") and its settings."""

    voice: str
    rate: int  # words per minute, 80..450
    pitch: int  # base pitch, 0..100 (50: the voice's own)
    female: bool  # the variant is one of eSpeak's female ones (higher pitch)


# The "speakers" of render_corpus, indexed 0..7: American English with four male and four
# female variants of eSpeak's own, at different pitches and speeds.
SPEAKERS = (
    Speaker("en-us+m1", 160, 35, False),
    Speaker("en-us+m3", 175, 50, False),
    Speaker("en-us+m7", 190, 65, False),
    Speaker("en-us+klatt", 170, 45, False),
    Speaker("en-us+f1", 165, 40, True),
    Speaker("en-us+f2", 180, 55, True),
    Speaker("en-us+f4", 200, 50, True),
    Speaker("en-us+f5", 170, 65, True),
)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MAX_DIGITS = 7
# sentence := DETERMINER [ADJECTIVE] NOUN VERB DETERMINER [ADJECTIVE] NOUN [ADVERB]
DETERMINERS = ("the", "my", "this", "that", "every", "no")
ADJECTIVES = ("small", "big", "red", "green", "old", "young", "happy", "quiet", "bright", "heavy")
NOUNS = ("dog", "cat", "bird", "child", "farmer", "teacher", "robot", "horse", "ball", "box")
NOUNS += ("door", "book", "cup", "chair", "apple", "stone", "kite", "hat")
VERBS = ("sees", "finds", "likes", "carries", "follows", "paints", "opens", "holds", "wants")
ADVERBS = ("today", "again", "slowly", "quickly", "now", "later")
KINDS = ("digits", "sentences")
CACHE_VERSION = 1  # raise whenever the corpus for the same arguments changes

# A segment of an utterance: (phoneme or word, first sample, end sample (exclusive)).
Segment = tuple[str, int, int]


class Rendered(NamedTuple):
    """One spoken text. waveform (samples,) float32 in [-1, 1); phonemes: every phoneme eSpeak
    reports, in order, as (eSpeak's ASCII phoneme name, start, end) sample indices, each ending
    where the next starts and the last at the end of the waveform ("_" and "_:" are pauses; a
    leading "'" or "," marks primary or secondary stress); words: (word, start of its first
    phoneme, end of its last phoneme) for each word of the text."""

    waveform: torch.Tensor
    sample_rate: int
    phonemes: list[Segment]
    words: list[Segment]


class SpeechCorpus(NamedTuple):
    """``render_corpus``'s utterances: texts (N,); speakers (N,) int64 indices into
    ``SPEAKERS``; waveforms: N float32 tensors (samples,); phonemes and words per utterance as
    in ``Rendered``; sample_rate 22,050."""

    texts: list[str]
    speakers: torch.Tensor
    waveforms: list[torch.Tensor]
    phonemes: list[list[Segment]]
    words: list[list[Segment]]
    sample_rate: int


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """speak_lib.h's espeak_EVENT."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of the word
        ("length", ctypes.c_int),  # the word's length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # samples since the start of the text
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

# eSpeak's state is global to the process: one render at a time.
_LOCK = threading.Lock()


def _library_path() -> Path:
    """eSpeak NG's shared library in espeakng-loader, next to the espeak-ng-data folder."""
    try:
        import espeakng_loader  # a few lines of path helpers; loads nothing by itself
    except ImportError:
        raise MissingDataError(
            f"espeak: the {LOADER_PACKAGE} package (eSpeak NG's library and voices) is not "
            f"installed; run `{PREPARE_HINT}` (or pip install {LOADER_PACKAGE}=={LOADER_VERSION})"
        ) from None
    library = Path(espeakng_loader.get_library_path())
    if not library.is_file() or not (library.parent / "espeak-ng-data").is_dir():
        raise MissingDataError(
            f"espeak: the installed {LOADER_PACKAGE} lacks eSpeak NG's library or data; run "
            f"`{PREPARE_HINT}` to reinstall {LOADER_PACKAGE}=={LOADER_VERSION}"
        )
    return library


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of the functions used, as speak_lib.h declares them."""
    c_int, c_uint = ctypes.c_int, ctypes.c_uint
    lib.espeak_Initialize.argtypes = [c_int, c_int, ctypes.c_char_p, c_int]
    lib.espeak_Initialize.restype = c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = c_int
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    lib.espeak_SetParameter.restype = c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint,
        ctypes.POINTER(c_uint), ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_Synth.restype = c_int
    lib.espeak_Synchronize.restype = c_int
    lib.espeak_Terminate.restype = c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p


@contextmanager
def _engine() -> Iterator[ctypes.CDLL]:
    """eSpeak NG freshly loaded and initialised (synchronous, with phoneme events), unloaded
    on exit so that the next load starts from the library's initial state."""
    library = _library_path()
    with _LOCK:
        try:
            lib = ctypes.CDLL(str(library))
        except OSError as error:
            raise MissingDataError(
                f"espeak: cannot load {library} ({error}); run `{PREPARE_HINT}` to reinstall "
                f"{LOADER_PACKAGE}=={LOADER_VERSION}"
            ) from None
        try:
            _declare(lib)
            rate = lib.espeak_Initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                str(library.parent).encode(),  # the folder that holds espeak-ng-data
                INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT,
            )
            if rate != SAMPLE_RATE:
                raise MissingDataError(
                    f"espeak: eSpeak NG could not start from its data in {library.parent}; run "
                    f"`{PREPARE_HINT}` to reinstall {LOADER_PACKAGE}=={LOADER_VERSION}"
                )
            try:
                yield lib
            finally:
                lib.espeak_Terminate()
        finally:
            handle = lib._handle
            del lib
            (getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary)(handle)


def espeak_version() -> str:
    """eSpeak NG's version ("1.52.0" in espeakng-loader 0.2.4)."""
    with _engine() as lib:
        return lib.espeak_Info(None).decode()


def _check_settings(caller: str, text: str, voice: str, rate: int, pitch: int, pitch_range: int):
    if not isinstance(text, str) or not isinstance(voice, str):
        raise TypeError(f"{caller}: text and voice must be strings, got {text!r} and {voice!r}")
    if not text.strip() or "\0" in text:
        raise ValueError(f"{caller}: text must hold something to say and no NUL, got {text!r}")
    settings = {"rate": (rate, *RATE_LIMITS), "pitch": (pitch, 0, 100)}
    settings["pitch_range"] = (pitch_range, 0, 100)
    for name, (value, low, high) in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{caller}: {name} must be an integer in {low}..{high}, got {value!r}")


def _speak(
    lib: ctypes.CDLL, text: str, voice: str, rate: int, pitch: int, pitch_range: int
) -> tuple[torch.Tensor, list[Segment], list[Segment]]:
    """(int16 samples, phonemes, words) of ``text`` spoken by the freshly loaded ``lib``."""
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"render: eSpeak NG has no voice {voice!r} (try 'en-us' or 'en-us+f2')")
    for parameter, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range)):
        lib.espeak_SetParameter(parameter, value, 0)
    lib.espeak_ng_SetRandSeed(NOISE_SEED)
    chunks: list[bytes] = []
    events: list[tuple[int, int, int, int, bytes]] = []

    def collect(wav, n_samples, event_list) -> int:
        if wav and n_samples > 0:
            chunks.append(ctypes.string_at(wav, 2 * n_samples))
        i = 0
        while event_list[i].type != EVENT_LIST_TERMINATED:
            e = event_list[i]
            if e.type in (EVENT_WORD, EVENT_PHONEME):
                name = e.id.string if e.type == EVENT_PHONEME else b""
                events.append((e.type, e.sample, e.text_position, e.length, name))
            i += 1
        return 0  # go on

    callback = _SynthCallback(collect)  # referenced until synthesis is over
    lib.espeak_SetSynthCallback(callback)
    encoded = text.encode()
    status = lib.espeak_Synth(
        encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
    )
    if status != 0 or lib.espeak_Synchronize() != 0:
        raise RuntimeError(f"espeak: eSpeak NG failed to speak {text!r} (status {status})")
    raw = b"".join(chunks)
    audio = (
        torch.frombuffer(bytearray(raw), dtype=torch.int16)
        if raw
        else torch.zeros(0, dtype=torch.int16)
    )
    return audio, *_segments(text, events, len(audio))


def _segments(text: str, events, n_samples: int) -> tuple[list[Segment], list[Segment]]:
    """Phonemes and words from eSpeak's WORD and PHONEME events (see ``Rendered``)."""
    phoneme_events = [event for event in events if event[0] == EVENT_PHONEME]
    starts = [(name.decode(), sample, position) for _, sample, position, _, name in phoneme_events]
    ends = [sample for _, sample, _ in starts[1:]] + [n_samples]
    phonemes = [(name, start, end) for (name, start, _), end in zip(starts, ends, strict=True)]
    words = []
    for kind, sample, position, length, _ in events:
        if kind != EVENT_WORD:
            continue
        own = [(s, e) for (_, s, p), e in zip(starts, ends, strict=True) if p == position]
        start, end = (own[0][0], own[-1][1]) if own else (sample, sample)
        words.append((text[position - 1 : position - 1 + length], start, end))
    return phonemes, words


def render(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50
) -> Rendered:
    """``text`` spoken by eSpeak NG's ``voice`` ("language" or "language+variant", e.g.
    "en-us+f2") at ``rate`` words per minute (80..450), base ``pitch`` and ``pitch_range``
    (0..100, 50 the voice's own). The same arguments give the same samples, bit for bit, on
    every call (see the module docstring). With ``s = SPEAKERS[k]``, ``render(text, s.voice,
    s.rate, s.pitch)`` speaks as speaker ``k``. Raises MissingDataError without ``make real``."""
    _check_settings("render", text, voice, rate, pitch, pitch_range)
    with _engine() as lib:
        audio, phonemes, words = _speak(lib, text, voice, rate, pitch, pitch_range)
    return Rendered(audio.float() / 32768, SAMPLE_RATE, phonemes, words)


# ============================================================================ the corpus


def split_of(text: str) -> str:
    """The split a corpus text belongs to, for good: "test" if the first byte of the SHA-256 of
    its UTF-8 is 0 mod 10, "val" if 1, else "train" -- so no text is in two splits."""
    return ("test", "val", *["train"] * 8)[hashlib.sha256(text.encode()).digest()[0] % 10]


def _digit_string(rng: random.Random) -> str:
    return " ".join(rng.choice(DIGIT_WORDS) for _ in range(rng.randint(1, MAX_DIGITS)))


def _sentence(rng: random.Random) -> str:
    def phrase() -> list[str]:
        adjective = [rng.choice(ADJECTIVES)] if rng.random() < 0.5 else []
        return [rng.choice(DETERMINERS), *adjective, rng.choice(NOUNS)]

    adverb = [rng.choice(ADVERBS)] if rng.random() < 0.3 else []
    return " ".join([*phrase(), rng.choice(VERBS), *phrase(), *adverb])


def corpus_texts(
    n: int,
    seed: int = 0,
    kind: str = "digits",
    split: str = "train",
    speakers: Sequence[int] | None = None,
) -> tuple[list[str], list[int]]:
    """The ``(texts, speaker indices)`` ``render_corpus`` speaks, without speaking them (see
    there); fast, for inspecting a corpus or checking its splits."""
    if kind not in KINDS:
        raise ValueError(f"render_corpus: kind must be one of {KINDS}, got {kind!r}")
    check_split("render_corpus", split)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"render_corpus: n must be an integer ≥ 0, got {n!r}")
    pool = _speakers(speakers)
    rng = random.Random(f"minimod-espeak:{kind}:{split}:{seed}")
    draw = _digit_string if kind == "digits" else _sentence
    texts, chosen = [], []
    while len(texts) < n:
        text = draw(rng)
        if split_of(text) == split:
            texts.append(text)
            chosen.append(rng.choice(pool))
    return texts, chosen


def _speakers(speakers: Sequence[int] | None) -> list[int]:
    pool = list(range(len(SPEAKERS)) if speakers is None else speakers)
    if not pool or not all(isinstance(s, int) and 0 <= s < len(SPEAKERS) for s in pool):
        raise ValueError(
            f"render_corpus: speakers must be indices in 0..{len(SPEAKERS) - 1}, got {speakers!r}"
        )
    return pool


def render_corpus(
    n: int,
    seed: int = 0,
    kind: str = "digits",
    split: str = "train",
    speakers: Sequence[int] | None = None,
    cache: bool = True,
) -> SpeechCorpus:
    """``n`` utterances spoken by eSpeak NG, each exactly as ``render`` speaks it in
    its speaker's voice, rate and pitch.

    ``kind``: "digits" -- 1 to 7 digit words, e.g. "three one four" -- or "sentences" -- short
    sentences from a fixed word list, "DETERMINER [ADJECTIVE] NOUN VERB DETERMINER [ADJECTIVE]
    NOUN [ADVERB]", e.g. "the old farmer carries my box today". Texts and speakers (uniform over
    ``speakers``, default all of ``SPEAKERS``) are drawn from a stream seeded by (kind, split,
    seed); a text may repeat, usually in other voices.

    Held out: ``split_of(text)`` puts every text in one split for good (about 80 % train, 10 %
    val, 10 % test), and a split's utterances are the draws whose text belongs to it, so no
    text of "test" or "val" is ever spoken in "train", whatever the seeds. Every split has every
    speaker; to hold voices out, pass ``speakers`` a subset.

    ``cache``: save the corpus once under the minimod cache folder (``$MINIMOD_CACHE``), keyed by
    the arguments, the speaker table and the eSpeak NG and espeakng-loader versions, written
    atomically; samples are stored as eSpeak's int16 (about 44 KB per second of speech).
    """
    texts, chosen = corpus_texts(n, seed, kind, split, speakers)
    if not cache:
        return _unpack(_pack(texts, chosen))
    versions = {"espeak": espeak_version(), "loader": importlib.metadata.version(LOADER_PACKAGE)}
    params = {"kind": kind, "n": n, "seed": seed, "split": split, "speakers": _speakers(speakers)}
    params.update(versions, table=[list(s) for s in SPEAKERS])
    return _unpack(cached(f"espeak-{kind}", CACHE_VERSION, params, lambda: _pack(texts, chosen)))


def _pack(texts: list[str], speakers: list[int]) -> dict[str, Any]:
    """Speak every text; -> the cache's dict of tensors, ints and strings (what
    ``torch.load(weights_only=True)`` reads back)."""
    audio, phonemes, words = [], [], []
    for text, speaker in zip(texts, speakers, strict=True):
        with _engine() as lib:
            s = SPEAKERS[speaker]
            samples, text_phonemes, text_words = _speak(
                lib, text, s.voice, s.rate, s.pitch, pitch_range=50
            )
        audio.append(samples)
        phonemes.append(text_phonemes)
        words.append(text_words)
    return {
        "texts": texts,
        "speakers": torch.tensor(speakers, dtype=torch.int64),
        "audio": torch.cat(audio) if audio else torch.zeros(0, dtype=torch.int16),
        "lengths": torch.tensor([len(a) for a in audio], dtype=torch.int64),
        **_pack_segments("phonemes", phonemes),
        **_pack_segments("words", words),
    }


def _pack_segments(key: str, segments: list[list[Segment]]) -> dict[str, Any]:
    """One space-separated string of names per utterance and one (total, 2) tensor of bounds
    (names never hold spaces: eSpeak's phoneme names and the corpus words)."""
    bounds = [[start, end] for utterance in segments for _, start, end in utterance]
    return {
        f"{key}_names": [" ".join(name for name, _, _ in utterance) for utterance in segments],
        f"{key}_bounds": torch.tensor(bounds, dtype=torch.int64).reshape(-1, 2),
    }


def _unpack_segments(data: dict[str, Any], key: str) -> list[list[Segment]]:
    bounds = iter(data[f"{key}_bounds"].tolist())
    return [[(name, *next(bounds)) for name in names.split()] for names in data[f"{key}_names"]]


def _unpack(data: dict[str, Any]) -> SpeechCorpus:
    waveforms = [a.float() / 32768 for a in data["audio"].split(data["lengths"].tolist())]
    return SpeechCorpus(
        list(data["texts"]),
        data["speakers"],
        waveforms,
        _unpack_segments(data, "phonemes"),
        _unpack_segments(data, "words"),
        SAMPLE_RATE,
    )
