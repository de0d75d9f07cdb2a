"""WordPiece, BERT's tokenizer, reading a real BERT ``vocab.txt`` (one token per line, id = line
number) and giving the same ids as the original BERT / Hugging Face tokenizer (uncased).

It works in two stages.

1. Basic tokenization cuts the text into words: drop control characters, turn every kind of
   whitespace into a space, put spaces around CJK ideographs (Chinese text has no spaces, so
   each character is a word), split on whitespace, lower-case, strip accents (decompose "é"
   into "e" + a combining accent, then drop the accent), and split off every punctuation
   character as a word of its own: ``"Héllo, WORLD!" -> ["hello", ",", "world", "!"]``.
2. WordPiece cuts each word into vocabulary pieces, greedily, longest match first: take the
   longest prefix of the word that is in the vocabulary, then the longest piece of the rest,
   and so on. A piece that continues a word is written with a ``##`` prefix -- ``"unaffable"
   -> ["un", "##aff", "##able"]`` -- so "##able" (inside a word) and "able" (a word of its
   own) are different tokens, and decoding knows where words start. A word that cannot be cut
   into pieces at all (or is longer than 100 characters) becomes the single token ``[UNK]``.

``encode`` wraps the ids in ``[CLS] ... [SEP]``, the frame BERT was pretrained with: the final
vector of [CLS] is what a classification head reads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minimod.data.tokenizers import Tokenizer, check_ids

SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}

# CJK Unified Ideographs and their extensions and compatibility blocks, as in BERT. (Hiragana,
# katakana and hangul are not in these ranges: they are written with spaces or split as words.)
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """Control and format characters (categories C*), except the whitespace \\t \\n \\r."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def is_punctuation(char: str) -> bool:
    """BERT's punctuation: Unicode's (categories P*) plus every ASCII symbol that is not a
    letter, digit or space -- "$", "+", "^", "`" count although Unicode calls them symbols."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in CJK_RANGES)


def basic_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Stage 1: text -> words and punctuation marks (see the module docstring)."""
    cleaned = []
    for char in text:
        if char in "\x00\ufffd" or is_control(char):
            continue
        if is_whitespace(char):
            cleaned.append(" ")
        elif is_cjk(char):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    words = []
    for word in "".join(cleaned).split():
        if lowercase:  # uncased BERT also strips accents: "É" -> "é" -> "e" + "\u0301" -> "e"
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        start = 0
        for i, char in enumerate(word):
            if is_punctuation(char):
                words += [word[start:i], char]
                start = i + 1
        words.append(word[start:])
    return [word for word in words if word]


class WordPieceTokenizer(Tokenizer):
    """BERT's WordPiece tokenizer over a fixed vocabulary (``vocab[i]`` is the token of id i).

    ``pad_token_id``, ``unk_token_id``, ``cls_token_id``, ``sep_token_id`` and ``mask_token_id``
    are the ids of [PAD], [UNK], [CLS], [SEP] and [MASK]; special tokens written in the text
    ("[MASK]") are kept whole, as in Hugging Face's tokenizer.
    """

    type = "wordpiece"

    def __init__(
        self, vocab: Iterable[str], lowercase: bool = True, max_input_chars_per_word: int = 100
    ) -> None:
        self.vocab = list(vocab)
        self.lowercase, self.max_input_chars_per_word = lowercase, max_input_chars_per_word
        self.token_to_id = {token: i for i, token in enumerate(self.vocab)}
        missing = [token for token in SPECIAL_TOKENS.values() if token not in self.token_to_id]
        if missing:
            raise ValueError(f"WordPieceTokenizer: the vocabulary lacks {', '.join(missing)}")
        self.pad_token_id = self.token_to_id["[PAD]"]  # fills batches up to one length
        self.unk_token_id = self.token_to_id["[UNK]"]  # a word the vocabulary cannot spell
        self.cls_token_id = self.token_to_id["[CLS]"]  # starts every sequence
        self.sep_token_id = self.token_to_id["[SEP]"]  # ends a sequence (or separates two)
        self.mask_token_id = self.token_to_id["[MASK]"]  # hides a word for masked-LM training
        self.special_ids = {self.token_to_id[token] for token in SPECIAL_TOKENS.values()}
        specials = sorted(SPECIAL_TOKENS.values(), key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(map(re.escape, specials)) + ")")
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_vocab_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """Read a BERT ``vocab.txt``: one token per line, the line number is the id."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no vocabulary file at {path}")
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: a vocab.txt must be UTF-8 ({error})") from error
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        try:
            return cls(lines, lowercase=lowercase)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def wordpiece(self, word: str) -> list[str]:
        """Stage 2: one word -> its pieces, greedy longest-match-first, or ``["[UNK]"]``."""
        if len(word) > self.max_input_chars_per_word:
            return [SPECIAL_TOKENS["unk"]]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):  # the longest candidate first
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.token_to_id:
                    break
            else:  # no prefix of the rest is in the vocabulary: the whole word is unknown
                return [SPECIAL_TOKENS["unk"]]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The tokens (strings) of ``text``, without [CLS] / [SEP]."""
        tokens = []
        for part in self._special_split.split(text):
            if part in SPECIAL_TOKENS.values():
                tokens.append(part)
                continue
            for word in basic_tokenize(part, self.lowercase):
                if word not in self._cache:
                    self._cache[word] = self.wordpiece(word)
                tokens += self._cache[word]
        return tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [self.token_to_id[token] for token in self.tokenize(text)]
        return [self.cls_token_id, *ids, self.sep_token_id] if add_special_tokens else ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Tokens joined by spaces, each ``##`` piece glued to the one before it:
        ``["[CLS]", "un", "##aff", "##able", "!", "[SEP]"] -> "[CLS] unaffable ! [SEP]"``.
        Lower-casing, accents and the original spacing are lost."""
        words: list[str] = []
        for i in check_ids(ids, self.vocab_size, "WordPieceTokenizer"):
            if skip_special_tokens and i in self.special_ids:
                continue
            token = self.vocab[i]
            if token.startswith("##") and words:
                words[-1] += token[2:]
            else:
                words.append(token)
        return " ".join(words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab,
            "lowercase": self.lowercase,
            "max_input_chars_per_word": self.max_input_chars_per_word,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordPieceTokenizer:
        return cls(data["vocab"], data["lowercase"], data["max_input_chars_per_word"])
