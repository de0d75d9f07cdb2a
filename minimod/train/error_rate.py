"""Error rates of recognised text: edit distance, character and word error rate.

The rates are corpus-level, as speech recognition reports them: the edits of all hypotheses
over the length of all references -- not the mean of per-utterance rates, which would let a
one-word utterance weigh as much as a long one. A rate can exceed 1 (many insertions).
"""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(a: Sequence, b: Sequence) -> int:
    """The Levenshtein distance: the fewest insertions, deletions and substitutions of single
    elements that turn ``a`` into ``b`` (any sequences: strings, word lists, label lists)."""
    if len(a) < len(b):
        a, b = b, a  # one row of length len(b) + 1 suffices; keep it the short one
    previous = list(range(len(b) + 1))  # from a[:0]: insert b[:j]
    for i, x in enumerate(a, start=1):
        current = [i]  # delete a[:i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _pairs(where: str, hyps, refs) -> tuple[list[str], list[str]]:
    """One string each, or equally long sequences of strings."""
    hyps = [hyps] if isinstance(hyps, str) else list(hyps)
    refs = [refs] if isinstance(refs, str) else list(refs)
    if len(hyps) != len(refs):
        raise ValueError(
            f"{where}: expected one hypothesis per reference, got {len(hyps)} hypotheses and "
            f"{len(refs)} references"
        )
    if not all(isinstance(text, str) for text in hyps + refs):
        raise TypeError(f"{where}: hypotheses and references must be strings")
    return hyps, refs


def _rate(where: str, pairs: list[tuple[Sequence, Sequence]]) -> float:
    edits = sum(edit_distance(hyp, ref) for hyp, ref in pairs)
    length = sum(len(ref) for _, ref in pairs)
    if length == 0:
        raise ValueError(f"{where}: the references are empty, so the rate is undefined")
    return edits / length


def cer(hyps: str | Sequence[str], refs: str | Sequence[str]) -> float:
    """Character error rate: Σ edit_distance(hyp, ref) over characters / Σ len(ref)."""
    hyps, refs = _pairs("cer", hyps, refs)
    return _rate("cer", list(zip(hyps, refs, strict=True)))


def wer(hyps: str | Sequence[str], refs: str | Sequence[str]) -> float:
    """Word error rate: Σ edit_distance over whitespace-separated words / Σ reference words."""
    hyps, refs = _pairs("wer", hyps, refs)
    return _rate("wer", [(h.split(), r.split()) for h, r in zip(hyps, refs, strict=True)])
