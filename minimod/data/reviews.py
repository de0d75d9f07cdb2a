"""Synthetic movie reviews whose sentiment is decided by composition. Made up by this code, not
written by people: a small, exactly labelled playground for pretraining and fine-tuning.

Grammar (lower case, one sentence per review, ending in "."):

    review := [opener] clause "."                    e.g. "the plot was good."
            | [opener] clause ", but " clause "."    e.g. "the music was dull, but the acting ..."
            | [opener] clause " and " clause "."
    clause := "the" ASPECT VERB ["not"] [INTENSIFIER] ADJECTIVE   (VERB: "was" or "is",
                                                                  the same in both clauses)
    opener := "honestly, " | "overall, " | "i thought " | "i think " | "in my opinion " | ...

Label rule, exactly:
1. A clause's polarity is its adjective's fixed polarity (``POSITIVE`` +1, ``NEGATIVE`` -1),
   flipped when the clause contains "not". Intensifiers never change the sign.
2. The deciding clause is the one after "but" when the review has "but"; otherwise the first
   clause ("and" only ever joins two clauses of the same polarity, and "but" two of opposite
   polarity). Openers and aspects carry no sentiment.
3. Binary label: 1 if the deciding clause is positive, else 0.
   Fine-grained label (``fine_grained=True``): the deciding clause is *strong* when it has an
   intensifier and no "not" ("not very good" is mildly negative, as in English); labels are
   0 strongly negative, 1 negative, 2 positive, 3 strongly positive.

Splits. "train" and "val" come from the same distribution (independent draws); "test" measures
compositional generalisation: a clause "not [INTENSIFIER] ADJ" with ADJ in ``HELD_OUT_NEGATED`` is
a held-out composition, which "train", "val" and ``review_corpus`` never contain and every
"test" review contains at least once (in the deciding clause or the other one, half and half in
two-clause reviews). Those adjectives do appear un-negated everywhere, so a model that learned
what "not" does can still get them right. Each split of each seed is its own random stream
(Python's ``random.Random`` seeded with a string), so the output is the same on every run.
"""

from __future__ import annotations

import random

ASPECTS = (
    "acting", "plot", "music", "dialogue", "ending", "script", "pacing", "soundtrack",
    "cast", "story", "cinematography", "humour", "direction", "editing", "film", "movie",
)  # fmt: skip
POSITIVE = (
    "good", "great", "excellent", "wonderful", "brilliant", "superb",
    "charming", "delightful", "moving", "clever", "gripping", "beautiful",
)  # fmt: skip
NEGATIVE = (
    "bad", "terrible", "awful", "boring", "dull", "weak",
    "clumsy", "bland", "tedious", "messy", "poor", "forgettable",
)  # fmt: skip
INTENSIFIERS = ("very", "extremely", "really", "incredibly", "truly", "remarkably")
VERBS = ("was", "is")
OPENERS = ("honestly, ", "overall, ", "i thought ", "i think ", "in my opinion ", "for me, ")
HELD_OUT_NEGATED = ("great", "charming", "gripping", "boring", "clumsy", "tedious")
SPLITS = ("train", "val", "test")

P_OPENER, P_NEGATION, P_INTENSIFIER = 0.3, 0.4, 0.5
FORMS, FORM_WEIGHTS = ("single", "but", "and"), (0.4, 0.35, 0.25)


def _clause(rng: random.Random, sign: int, verb: str, held_out: bool) -> tuple[str, bool]:
    """One clause of polarity ``sign`` (+1/-1) -> (text, strong). ``held_out``: it must be a
    negated held-out adjective; otherwise a negated adjective is never a held-out one."""
    negated = held_out or rng.random() < P_NEGATION
    pool = POSITIVE if (sign > 0) != negated else NEGATIVE
    if held_out:
        pool = tuple(a for a in pool if a in HELD_OUT_NEGATED)
    elif negated:
        pool = tuple(a for a in pool if a not in HELD_OUT_NEGATED)
    words = ["the", rng.choice(ASPECTS), verb] + ["not"] * negated
    intensified = rng.random() < P_INTENSIFIER
    if intensified:
        words.append(rng.choice(INTENSIFIERS))
    words.append(rng.choice(pool))
    return " ".join(words), intensified and not negated


def _review(rng: random.Random, held_out: bool) -> tuple[str, int, bool]:
    """-> (text, sign of the deciding clause, whether it is strong)."""
    sign = rng.choice((1, -1))
    form = rng.choices(FORMS, FORM_WEIGHTS)[0]
    signs = {"single": [sign], "but": [-sign, sign], "and": [sign, sign]}[form]
    hold = rng.randrange(len(signs)) if held_out else -1
    verb = rng.choice(VERBS)  # one tense per review
    clauses = [_clause(rng, s, verb, i == hold) for i, s in enumerate(signs)]
    opener = rng.choice(OPENERS) if rng.random() < P_OPENER else ""
    joiner = ", but " if form == "but" else " and "
    text = opener + joiner.join(text for text, _ in clauses) + "."
    deciding = clauses[-1] if form == "but" else clauses[0]
    return text, sign, deciding[1]


def make_reviews(
    n: int, seed: int = 0, split: str = "train", fine_grained: bool = False
) -> list[tuple[str, int]]:
    """``n`` labelled synthetic reviews ``(text, label)`` of ``split`` ("train", "val" or
    "test"; see the module docstring for the label rule and what "test" holds out). Labels are
    0/1 (negative/positive), or 0..3 with ``fine_grained``; the two signs are equally likely."""
    if split not in SPLITS:
        raise ValueError(f"make_reviews: split must be one of {SPLITS}, got {split!r}")
    if n < 0:
        raise ValueError(f"make_reviews: n must be ≥ 0, got {n}")
    rng = random.Random(f"minimod-reviews:{split}:{seed}")
    reviews = []
    for _ in range(n):
        text, sign, strong = _review(rng, held_out=split == "test")
        if fine_grained:
            label = (3 if strong else 2) if sign > 0 else (0 if strong else 1)
        else:
            label = int(sign > 0)
        reviews.append((text, label))
    return reviews


def review_corpus(n_sentences: int, seed: int = 0) -> str:
    """Unlabelled synthetic reviews for pretraining, one per line (each line ends in "\\n").
    Drawn like the "train" split (no held-out compositions) from a stream of its own."""
    if n_sentences < 0:
        raise ValueError(f"review_corpus: n_sentences must be ≥ 0, got {n_sentences}")
    rng = random.Random(f"minimod-reviews:corpus:{seed}")
    return "".join(_review(rng, held_out=False)[0] + "\n" for _ in range(n_sentences))
