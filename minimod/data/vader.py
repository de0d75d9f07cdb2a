"""Real movie-review snippets, offline: 10,605 snippets rated by 15-29 people each on a scale
from -4 to +4 (Hutto & Gilbert, ICWSM 2014), shipped inside the ``vaderSentiment`` source
distribution (MIT). See data/README.md ("Real data") for the source, licence and counts.

- ``prepare_vader(sdist)`` (run by ``make real`` as ``python -m minimod.data.real prepare-vader
  SDIST``) extracts the one file needed into the minimod cache; nothing downloads at run time.
- ``movie_sentiment(split)``: binary labels; near-neutral snippets are dropped
  (``label_for_rating``); fixed splits by content hash (``splits.split_by_hash``).
- ``domain_sentiment(domain, split)``: the same for the dataset's other human-rated domains
  (Amazon product reviews, New York Times editorials, tweets), for cross-domain transfer.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from pathlib import Path
from typing import NamedTuple

from minimod.data.archive import read_member, write_atomic
from minimod.data.cache import cache_dir
from minimod.data.formats import tab_separated
from minimod.data.splits import PREPARE_HINT, MissingDataError, check_split, split_by_hash

# Where the movie-review ratings come from and go to.
VADER_VERSION = "3.3.2"
VADER_SDIST = f"vaderSentiment-{VADER_VERSION}.tar.gz"
VADER_INNER = ("additional_resources", "hutto_ICWSM_2014.tar.gz")  # inside <top>/ of the sdist
VADER_LICENSE = ("LICENSE.txt",)  # inside <top>/ of the sdist
VADER_MOVIES = "movieReviewSnippets_GroundTruth.txt"
VADER_README = "_README_.txt"
VADER_MANIFEST = "SOURCE.json"
# The four human-rated domains of the dataset, each a *_GroundTruth.txt inside
# hutto_ICWSM_2014.tar.gz: movie-review snippets, Amazon product-review snippets, New York Times
# editorial snippets and tweets (for cross-domain transfer).
DOMAINS = {
    "movies": VADER_MOVIES,
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
}
VADER_INNER_DIR = "hutto_ICWSM_2014"

NEUTRAL_BAND = 0.5  # |mean rating| < 0.5 counts as neutral and is dropped


class RatedSnippet(NamedTuple):
    """One line of a ``*_GroundTruth.txt`` file."""

    id: str  # the file's own id: "1" ... for movies and tweets, "1_1" ... for Amazon and NYT
    rating: float  # the mean human rating, in [-4, 4]
    text: str


def label_for_rating(rating: float) -> int | None:
    """1 (positive) if ``rating >= 0.5``, 0 (negative) if ``rating <= -0.5``, else None: the
    snippet is near-neutral and dropped. Ratings are means of 15-29 raters on [-4, 4]; within
    ±0.5 the mean is mostly within two standard errors of zero (see data/README.md)."""
    if rating >= NEUTRAL_BAND:
        return 1
    if rating <= -NEUTRAL_BAND:
        return 0
    return None


def vader_dir(cache: str | Path | None = None) -> Path:
    """The folder ``prepare_vader`` fills: ``<minimod cache>/real/vader``."""
    return Path(cache if cache is not None else cache_dir()) / "real" / "vader"


def parse_vader_ratings(data: bytes, source: str | Path) -> list[RatedSnippet]:
    """The rows of a VADER ``*_GroundTruth.txt`` file (UTF-8; lines ``id<TAB>rating<TAB>text``,
    CRLF or LF). A malformed line is a ValueError naming ``source`` and the line number."""
    rows = []
    for number, fields in tab_separated(data, str(source), "id<TAB>rating<TAB>text"):
        snippet_id = fields[0].strip()
        try:
            rating = float(fields[1])
        except ValueError:
            rating = math.nan
        if not snippet_id or math.isnan(rating):
            raise ValueError(
                f"{source} line {number}: expected an id and a numeric rating, got "
                f"{fields[0]!r} and {fields[1]!r}"
            )
        if not (math.isfinite(rating) and -4.0 <= rating <= 4.0):
            raise ValueError(f"{source} line {number}: rating {rating} is outside [-4, 4]")
        if not fields[2].strip():
            raise ValueError(f"{source} line {number}: the text is empty")
        rows.append(RatedSnippet(snippet_id, rating, fields[2].strip()))
    if not rows:
        raise ValueError(f"{source}: no rated snippets in the file")
    return rows


def prepare_vader(sdist_path: str | Path, cache: str | Path | None = None) -> Path:
    """Extract the human-rated snippets of the four domains (``DOMAINS``) from the
    ``vaderSentiment`` source distribution into ``<cache>/real/vader`` (``cache``: the minimod
    cache folder, default ``$MINIMOD_CACHE`` or ``~/.cache/minimod``) and return the path of the
    movie ratings file.

    Only six files are read, by exact name, from the sdist and the ``hutto_ICWSM_2014.tar.gz``
    inside it: the four ratings files, the dataset's ``_README_.txt`` and the package's
    ``LICENSE.txt``.
    Nothing is extracted by a member's own name (no path traversal, links are refused), the
    ratings are parsed before anything is written, and each file is written atomically, the
    manifest ``SOURCE.json`` last. Idempotent: a folder already prepared from the same sdist
    (same SHA-256) is left as it is.
    """
    sdist_path = Path(sdist_path)
    if not sdist_path.is_file():
        raise FileNotFoundError(
            f"prepare_vader: no file at {sdist_path}; download it with `pip download "
            f"--no-binary :all: --no-deps vaderSentiment=={VADER_VERSION}`"
        )
    sdist = sdist_path.read_bytes()
    sdist_sha = hashlib.sha256(sdist).hexdigest()
    target = vader_dir(cache)
    movies = target / VADER_MOVIES
    manifest_path = target / VADER_MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            hashes = manifest.get("files", {})
            if manifest.get("sdist_sha256") == sdist_sha and all(
                (target / name).is_file()
                and hashes.get(name) == hashlib.sha256((target / name).read_bytes()).hexdigest()
                for name in DOMAINS.values()
            ):
                return movies
        except (OSError, ValueError):
            pass  # unreadable manifest, or prepared before the other domains: prepare again
    try:
        with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as outer:
            inner_bytes = read_member(outer, VADER_INNER, True, str(sdist_path), VADER_SDIST)
            license_bytes = read_member(outer, VADER_LICENSE, True, str(sdist_path), VADER_SDIST)
        inner_source = f"{sdist_path}!{'/'.join(VADER_INNER)}"
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            ratings = {
                name: read_member(inner, (VADER_INNER_DIR, name), False, inner_source, VADER_SDIST)
                for name in DOMAINS.values()
            }
            readme_bytes = read_member(
                inner, (VADER_INNER_DIR, VADER_README), False, inner_source, VADER_SDIST
            )
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(
            f"prepare_vader: {sdist_path} is not a readable .tar.gz: {error}"
        ) from None
    for name, data in ratings.items():  # check every file before writing any
        parse_vader_ratings(data, f"{inner_source}/{name}")
    files = {VADER_LICENSE[-1]: license_bytes, VADER_README: readme_bytes, **ratings}
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(data, target / name)
    manifest = {
        "source": f"{sdist_path.name} (vaderSentiment {VADER_VERSION} sdist, MIT licence)",
        "sdist_sha256": sdist_sha,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    write_atomic((json.dumps(manifest, indent=2) + "\n").encode(), manifest_path)
    return movies


def domain_ratings(domain: str, cache: str | Path | None = None) -> list[RatedSnippet]:
    """Every row of a domain's prepared ratings file (``DOMAINS``), in file order."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown VADER domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    path = vader_dir(cache) / DOMAINS[domain]
    if not path.is_file():
        raise MissingDataError(
            f"the VADER {domain} ratings are not prepared (no {path}); run `{PREPARE_HINT}` "
            f"(or python -m minimod.data.real prepare-vader PATH/{VADER_SDIST})"
        )
    return parse_vader_ratings(path.read_bytes(), path)


def movie_ratings(cache: str | Path | None = None) -> list[RatedSnippet]:
    """Every row of the prepared movie ratings file, in file order (10,605 rows)."""
    return domain_ratings("movies", cache)


def movie_sentiment(split: str, cache: str | Path | None = None) -> list[tuple[str, int]]:
    """Real movie-review snippets of ``split`` as ``(text, label)``, label 1 positive, 0
    negative, in file order (the same shape as ``make_reviews``); see ``domain_sentiment``."""
    return domain_sentiment("movies", split, cache)


def domain_sentiment(
    domain: str, split: str, cache: str | Path | None = None
) -> list[tuple[str, int]]:
    """A domain's snippets of ``split`` as ``(text, label)``, label 1 positive, 0 negative, in
    file order.

    Rules: a text that occurs twice keeps its first row; ``label_for_rating`` labels the rest
    and drops near-neutral ones; ``split_by_hash`` on the UTF-8 text splits each label 80/10/10.
    Needs ``prepare_vader`` (``make real``) first: otherwise a ``MissingDataError`` says how.
    """
    check_split("domain_sentiment", split)
    seen: set[str] = set()
    texts, labels = [], []
    for row in domain_ratings(domain, cache):
        first, label = row.text not in seen, label_for_rating(row.rating)
        seen.add(row.text)
        if first and label is not None:
            texts.append(row.text)
            labels.append(label)
    keep = split_by_hash([t.encode("utf-8") for t in texts], labels, split)
    return [(texts[i], labels[i]) for i in keep]
