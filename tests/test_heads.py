"""Heads and pooling (minimod.models.heads) and boxes (minimod.models.boxes) against references
written here with Python loops and plain floats.

Lesson 20's tests: pool, SequenceClassifier, TokenClassifier, FeatureClassifier (alias
ImageClassifier / KeywordClassifier) come from ``impl.heads``; decode_boxes, box_iou, box_loss
and BoxRegressor from ``impl.boxes``. The pretrained bodies (GPT, BERT, ResNet, AudioCNN) and the
optimizer are minimod's own, as in the lesson file, so a test here can only fail on lesson 20's
code.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import tolerance
from minimod.models import boxes as reference_boxes
from minimod.models import heads as reference_heads
from minimod.models.bert import BERT, BERTConfig, BERTForMaskedLM
from minimod.models.cnn import AudioCNN, AudioCNNConfig, ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig
from minimod.optim import AdamW
from strategies import dtypes, seeds

FACTOR = 10.0
MEAN_COUNTS_PADDING_HINT = (
    "looks like your mean counts the padding positions: the sum is masked but divided by T; "
    "divide by the number of REAL tokens of each row, attention_mask.sum(dim=1)"
)
MEAN_OVER_ALL_HINT = (
    "looks like a plain mean over all T positions: the padding vectors must not enter the "
    "mean; sum hidden · mask over T and divide by the number of real tokens"
)
LAST_IGNORES_PADDING_HINT = (
    'looks like "last" took position T-1 in every row: with padding on the right that is a '
    "pad; take each row's last REAL token (for a row of n real tokens, position n-1)"
)
PADDING_GRAD_HINT = (
    "padding positions received gradient: the pooled vector must not depend on them at all"
)
IOU_NO_CLAMP_HINT = (
    "boxes that do not overlap must have IoU 0: clamp the intersection's width and height at "
    "0 (max(0, ·)) before multiplying -- two negative sides make a positive 'area'"
)
IOU_UNION_HINT = (
    "looks like the union is area(a) + area(b): the overlap is counted twice, subtract the "
    "intersection once"
)
IOU_CORNERS_HINT = (
    "looks like you measured the box enclosing both: the intersection runs from the LARGER "
    "of the two x_min (y_min) to the SMALLER of the two x_max (y_max)"
)
BERT_MASK_HINT = (
    "the BERT body got no attention_mask: its real tokens attended to the padding; pass the "
    "mask on, self.hidden(input_ids, attention_mask, token_type_ids)"
)
BOX_VALID_HINT = (
    "boxes must be valid for every raw input, 0 ≤ x_min ≤ x_max ≤ 1 (and for y): take the "
    "size first, w = σ(raw_w), then place the box in the room it leaves, x_min = (1-w)·σ(raw_x)"
)

# -- tiny pretrained bodies (minimod's own) -------------------------------------------------

VOCAB = 13


def tiny_gpt() -> GPT:
    return GPT(GPTConfig(vocab_size=VOCAB, block_size=12, n_layer=1, n_head=2, n_embd=16))


def tiny_bert_config() -> BERTConfig:
    return BERTConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=12,
    )


def tiny_bert() -> BERT:
    return BERT(tiny_bert_config(), add_pooling_layer=False)


def tiny_resnet() -> ResNet:
    return ResNet(ResNetConfig(in_channels=1, num_classes=3, widths=(4, 6), depths=(1, 1)))


def tiny_audio_cnn() -> AudioCNN:
    return AudioCNN(AudioCNNConfig(n_features=5, num_classes=3, widths=(4, 6), kernel_size=3))


def padding_mask(lengths: list[int], length: int) -> torch.Tensor:
    return torch.tensor([[1] * n + [0] * (length - n) for n in lengths])


def randn(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _matches(out: torch.Tensor, candidate: torch.Tensor) -> bool:
    return out.shape == candidate.shape and torch.allclose(
        out.double(), candidate.double(), **tolerance(out.dtype, FACTOR)
    )


# -- pool --------------------------------------------------------------------------------------


def reference_pool(hidden: torch.Tensor, lengths: list[int], how: str) -> torch.Tensor:
    """Row by row with Python floats: position 0, the mean of the first n, or position n-1."""
    rows = []
    for row, n in zip(hidden.tolist(), lengths, strict=True):
        if how == "cls":
            rows.append(row[0])
        elif how == "last":
            rows.append(row[n - 1])
        else:
            rows.append([sum(row[t][h] for t in range(n)) / n for h in range(len(row[0]))])
    return torch.tensor(rows, dtype=torch.float64)


def reference_pool_grad(weights: torch.Tensor, lengths: list[int], length: int, how: str):
    """d(sum(pooled · weights)) / d hidden, (B, T, H), by hand."""
    grad = []
    for w, n in zip(weights.tolist(), lengths, strict=True):
        row = [[0.0] * len(w) for _ in range(length)]
        if how == "cls":
            row[0] = list(w)
        elif how == "last":
            row[n - 1] = list(w)
        else:
            for t in range(n):
                row[t] = [value / n for value in w]
        grad.append(row)
    return torch.tensor(grad, dtype=torch.float64)


def pool_hint(hidden, lengths, how, out) -> str | None:
    """Name the classic pooling mistake that ``out`` equals, if it is wrong."""
    with torch.no_grad():
        if _matches(out, reference_pool(hidden, lengths, how)):
            return None
        mask = padding_mask(lengths, hidden.shape[1]).to(hidden.dtype)[:, :, None]
        if how == "mean":
            if _matches(out, (hidden * mask).sum(dim=1) / hidden.shape[1]):
                return MEAN_COUNTS_PADDING_HINT
            if _matches(out, hidden.mean(dim=1)):
                return MEAN_OVER_ALL_HINT
        if how == "last" and _matches(out, hidden[:, -1]):
            return LAST_IGNORES_PADDING_HINT
    return None


def assert_pooled(out, hidden, lengths, how) -> None:
    hint = pool_hint(hidden, lengths, how, out)
    assert hint is None, hint
    expected = reference_pool(hidden, lengths, how)
    assert out.shape == expected.shape, f"pool({how!r}): (B, H) = {tuple(expected.shape)}"
    assert out.dtype == hidden.dtype, "pool keeps the hidden states' dtype"
    torch.testing.assert_close(out.double(), expected, **tolerance(hidden.dtype, FACTOR))


@st.composite
def padded_batches(draw):
    """(B, T, H, lengths, dtype, seed, mask_kind): each row has 1 to T real tokens."""
    batch, length, width = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, length), min_size=batch, max_size=batch))
    mask_kind = draw(st.sampled_from(["long", "bool", "float", "none"]))
    if mask_kind == "none":
        lengths = [length] * batch
    return batch, length, width, lengths, draw(dtypes), draw(seeds), mask_kind


def make_mask(lengths, length, kind):
    mask = padding_mask(lengths, length)
    return {"long": mask, "bool": mask.bool(), "float": mask.float(), "none": None}[kind]


@pytest.mark.parametrize("how", ["cls", "mean", "last"])
@given(padded_batches())
@example((1, 1, 1, [1], torch.float64, 0, "long"))  # one token
@example((3, 4, 2, [4, 1, 2], torch.float32, 1, "long"))  # full, single-token and half rows
@example((2, 5, 3, [5, 5], torch.float64, 2, "none"))  # no mask: nothing is padding
def test_pool_matches_loops_and_padding_gets_no_gradient(how, case):
    batch, length, width, lengths, dtype, seed, mask_kind = case
    hidden = randn((batch, length, width), dtype, seed).requires_grad_()
    out = impl.heads.pool(hidden, make_mask(lengths, length, mask_kind), how)
    assert_pooled(out, hidden.detach(), lengths, how)
    weights = randn((batch, width), dtype, seed + 1)
    (out * weights).sum().backward()
    expected = reference_pool_grad(weights, lengths, length, how)
    pad = ~padding_mask(lengths, length).bool()
    assert not hidden.grad[pad].any(), PADDING_GRAD_HINT
    torch.testing.assert_close(hidden.grad.double(), expected, **tolerance(dtype, FACTOR))


def test_pool_default_is_cls_and_padding_values_do_not_matter():
    hidden = randn((3, 5, 4))
    lengths = [2, 5, 3]
    mask = padding_mask(lengths, 5)
    junk = hidden.clone()
    junk[mask == 0] = 1e4  # anything at the padding positions
    assert_pooled(impl.heads.pool(hidden, mask), hidden, lengths, "cls")
    for how in ("mean", "last"):
        torch.testing.assert_close(
            impl.heads.pool(junk, mask, how),
            impl.heads.pool(hidden, mask, how),
            msg=lambda m, how=how: (
                f'pool(..., "{how}") read the padding: "last" takes each '
                'row\'s last REAL token (position length - 1), not position T - 1; "mean" only the '
                f"real tokens\n{m}"
            ),
        )


# -- sequence and token classification --------------------------------------------------------


def body_hidden(body, ids, mask):
    """The body's last hidden states, computed here directly."""
    if isinstance(body, GPT):
        return body.hidden_states(ids)
    return body(ids, mask)[0]


def text_batch(lengths: list[int], length: int, seed: int = 0):
    ids = torch.randint(
        1, VOCAB, (len(lengths), length), generator=torch.Generator().manual_seed(seed)
    )
    mask = padding_mask(lengths, length)
    return ids.masked_fill(mask == 0, 0), mask


def expected_logits(model, ids, mask, lengths, pooling, use_mask=True):
    """head(pool(body's hidden states)), pooled by the loops above, in float64."""
    with torch.no_grad():
        hidden = body_hidden(model.body, ids, mask if use_mask else None)
        pooled = reference_pool(hidden, lengths, pooling)
        weight, bias = model.head.linear.weight.double(), model.head.linear.bias.double()
        return pooled @ weight.T + bias


def classifier_hint(model, ids, mask, lengths, pooling, logits) -> str | None:
    """Name the classic mistake of a SequenceClassifier on a BERT body, if ``logits`` show it."""
    if isinstance(model.body, GPT) or _matches(
        logits, expected_logits(model, ids, mask, lengths, pooling)
    ):
        return None
    if _matches(logits, expected_logits(model, ids, mask, lengths, pooling, use_mask=False)):
        return BERT_MASK_HINT
    return None


def pooling_hint(model, ids, mask, lengths, pooling, logits) -> str | None:
    """The classifier pooled another way than its ``pooling`` (e.g. "cls" on a GPT)."""
    if _matches(logits, expected_logits(model, ids, mask, lengths, pooling)):
        return None
    for other in {"cls", "mean", "last"} - {pooling}:
        if _matches(logits, expected_logits(model, ids, mask, lengths, other)):
            return (
                f'the classifier pooled with "{other}", not its pooling="{pooling}": on a GPT '
                'position 0 has seen only the first token, so "cls" pooling tells it nothing'
            )
    return None


@pytest.mark.parametrize("make_body", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
@pytest.mark.parametrize("pooling", ["cls", "mean", "last"])
def test_sequence_classifier_is_body_pool_head(make_body, pooling):
    model = impl.heads.SequenceClassifier(make_body(), num_labels=3, pooling=pooling).eval()
    lengths = [4, 1, 6]
    ids, mask = text_batch(lengths, 6)
    logits = model(ids, mask)
    assert logits.shape == (3, 3), "logits (B, num_labels)"
    hint = classifier_hint(model, ids, mask, lengths, pooling, logits.detach())
    assert hint is None, hint
    hint = pooling_hint(model, ids, mask, lengths, pooling, logits.detach())
    assert hint is None, hint
    expected = expected_logits(model, ids, mask, lengths, pooling)
    torch.testing.assert_close(logits.double(), expected, **tolerance(torch.float32, FACTOR))


@pytest.mark.parametrize("make_body", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
def test_sequence_classifier_default_pooling_suits_the_body(make_body):
    model = impl.heads.SequenceClassifier(make_body(), num_labels=2).eval()
    assert model.pooling == ("last" if isinstance(model.body, GPT) else "cls")
    ids, mask = text_batch([3, 2], 3)
    assert model(ids, mask).shape == (2, 2)
    assert set(model.state_dict()) >= {"head.linear.weight", "head.linear.bias"}
    assert all(key.startswith(("body.", "head.")) for key in model.state_dict())


@pytest.mark.parametrize(
    "make_body, pooling",
    [
        (tiny_gpt, "last"),
        (tiny_gpt, "mean"),
        (tiny_bert, "cls"),
        (tiny_bert, "mean"),
        (tiny_bert, "last"),
    ],
    ids=["gpt-last", "gpt-mean", "bert-cls", "bert-mean", "bert-last"],
)
def test_padding_does_not_change_the_logits(make_body, pooling):
    """Each row alone (no padding, no mask) gives the logits it gets inside a padded batch,
    whatever token ids sit at the padding positions."""
    model = impl.heads.SequenceClassifier(make_body(), num_labels=4, pooling=pooling).eval()
    lengths = [3, 5, 1]
    ids, mask = text_batch(lengths, 8, seed=3)
    ids = torch.where(mask.bool(), ids, torch.randint(0, VOCAB, ids.shape))  # junk padding
    batched = model(ids, mask)
    for row, n in enumerate(lengths):
        alone = model(ids[row : row + 1, :n])
        torch.testing.assert_close(
            batched[row : row + 1],
            alone,
            **tolerance(torch.float32, FACTOR),
            msg=lambda m, row=row: f"padding changed the logits of row {row} ({pooling}): {m}",
        )


@pytest.mark.parametrize("make_body", [tiny_gpt, tiny_bert], ids=["gpt", "bert"])
def test_token_classifier_scores_every_token(make_body):
    body = make_body()
    model = impl.heads.TokenClassifier(body, num_labels=5).eval()
    lengths = [2, 4]
    ids, mask = text_batch(lengths, 4)
    logits = model(ids, mask)
    assert logits.shape == (2, 4, 5), "logits (B, T, num_labels)"
    with torch.no_grad():
        hidden = body_hidden(body, ids, mask).double()
        expected = hidden @ model.head.linear.weight.double().T + model.head.linear.bias.double()
    torch.testing.assert_close(logits.double(), expected, **tolerance(torch.float32, FACTOR))
    alone = model(ids[:1, :2])  # the real tokens do not see the padding
    torch.testing.assert_close(logits[:1, :2], alone, **tolerance(torch.float32, FACTOR))


def test_sequence_classifier_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = impl.heads.SequenceClassifier(tiny_gpt(), num_labels=2, pooling="mean")
    ids, mask = text_batch([6, 4, 5, 2], 6, seed=1)
    labels = torch.tensor([0, 1, 1, 0])
    optimizer = AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(ids, mask), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"the loss should fall on one fixed batch: {losses}"


# -- image and audio classification -----------------------------------------------------------


@pytest.mark.parametrize(
    "make_body, name, shape",
    [
        (tiny_resnet, "ImageClassifier", (3, 1, 8, 8)),
        (tiny_audio_cnn, "KeywordClassifier", (3, 7, 5)),
    ],
    ids=["resnet", "audio"],
)
def test_feature_classifier_replaces_the_old_head(make_body, name, shape):
    body = make_body()
    old_head = list(body.head.parameters())
    model = getattr(impl.heads, name)(body, num_classes=4, dropout=0.5).eval()
    assert model.body is body
    assert list(body.head.parameters()) == [], "the body's old head becomes nn.Identity()"
    ids = {id(p) for p in model.parameters()}
    assert not any(id(p) in ids for p in old_head), "the old head's parameters left the model"
    keys = set(model.state_dict())
    assert not [k for k in keys if k.startswith("body.head.")], "no body.head.* keys"
    assert {k for k in keys if k.startswith("head.")} == {"head.linear.weight", "head.linear.bias"}
    x = randn(shape, seed=4)
    logits = model(x)
    assert logits.shape == (3, 4), "logits (N, num_classes)"
    with torch.no_grad():
        features = body.features(x).double()
        expected = features @ model.head.linear.weight.double().T + model.head.linear.bias.double()
    torch.testing.assert_close(logits.double(), expected, **tolerance(torch.float32, FACTOR))


# -- boxes --------------------------------------------------------------------------------------


def reference_iou(a: list[float], b: list[float]) -> float:
    def area(x0, y0, x1, y1):
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = area(*a) + area(*b) - inter
    return inter / union if union > 0 else 0.0


def _iou_variant(a, b, low, high, clamp=True, subtract=True):
    side = high - low
    side = side.clamp(min=0) if clamp else side
    inter = side[..., 0] * side[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - (inter if subtract else 0))


def iou_hint(a, b, out) -> str | None:
    """Name the classic IoU mistake that ``out`` equals, if it is wrong (valid, non-empty boxes)."""
    expected = torch.tensor(
        [reference_iou(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)],
        dtype=torch.float64,
    )
    with torch.no_grad():
        if _matches(out, expected):
            return None
        low, high = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
        if _matches(out, _iou_variant(a, b, low, high, clamp=False)):
            return IOU_NO_CLAMP_HINT
        if _matches(out, _iou_variant(a, b, low, high, subtract=False)):
            return IOU_UNION_HINT
        enclosing = torch.minimum(a[..., :2], b[..., :2]), torch.maximum(a[..., 2:], b[..., 2:])
        if _matches(out, _iou_variant(a, b, *enclosing)):
            return IOU_CORNERS_HINT
    return None


unit = st.integers(0, 100).map(lambda k: k / 100)  # a grid: ties (empty boxes) happen often


@st.composite
def valid_box(draw) -> list[float]:
    x0, x1 = sorted((draw(unit), draw(unit)))
    y0, y1 = sorted((draw(unit), draw(unit)))
    return [x0, y0, x1, y1]


box_pairs = st.integers(1, 5).flatmap(
    lambda n: st.tuples(
        st.lists(valid_box(), min_size=n, max_size=n), st.lists(valid_box(), min_size=n, max_size=n)
    )
)

SQUARE = [0.2, 0.2, 0.6, 0.6]
EXAMPLE_PAIRS = [
    ([SQUARE], [SQUARE]),  # identical: 1
    ([SQUARE], [[0.7, 0.7, 0.9, 0.9]]),  # disjoint on both axes: 0
    ([SQUARE], [[0.7, 0.3, 0.9, 0.5]]),  # disjoint on x only: 0
    ([SQUARE], [[0.6, 0.2, 0.9, 0.6]]),  # touching edges: 0
    ([SQUARE], [[0.3, 0.3, 0.4, 0.4]]),  # one inside the other: area ratio
    ([[0.5, 0.5, 0.5, 0.5]], [[0.5, 0.5, 0.5, 0.5]]),  # zero area: 0, no NaN
    ([[0.1, 0.1, 0.1, 0.9]], [[0.0, 0.0, 1.0, 1.0]]),  # a line inside a box: 0
]


@given(box_pairs, dtypes)
@example(EXAMPLE_PAIRS[0], torch.float64)
@example(EXAMPLE_PAIRS[1], torch.float64)
@example(EXAMPLE_PAIRS[2], torch.float32)
@example(EXAMPLE_PAIRS[3], torch.float64)
@example(EXAMPLE_PAIRS[4], torch.float64)
@example(EXAMPLE_PAIRS[5], torch.float32)
@example(EXAMPLE_PAIRS[6], torch.float64)
def test_box_iou_matches_plain_floats(pair, dtype):
    a_list, b_list = pair
    a = torch.tensor(a_list, dtype=dtype, requires_grad=True)
    b = torch.tensor(b_list, dtype=dtype, requires_grad=True)
    iou = impl.boxes.box_iou(a, b)
    a_list, b_list = a.tolist(), b.tolist()  # as the dtype holds them
    if all(x[2] > x[0] and x[3] > x[1] for x in a_list + b_list):
        hint = iou_hint(a.detach(), b.detach(), iou.detach())
        assert hint is None, hint
    expected = [reference_iou(x, y) for x, y in zip(a_list, b_list, strict=True)]
    assert iou.shape == (len(a_list),), "one IoU per pair of boxes: (N,)"
    torch.testing.assert_close(
        iou.double(), torch.tensor(expected, dtype=torch.float64), **tolerance(dtype, FACTOR)
    )
    assert ((iou >= 0) & (iou <= 1)).all(), "IoU lies in [0, 1]"
    torch.testing.assert_close(impl.boxes.box_iou(b, a), iou, msg="IoU is symmetric")
    same = impl.boxes.box_iou(a, a)
    for value, box in zip(same.tolist(), a_list, strict=True):
        positive = box[2] > box[0] and box[3] > box[1]
        assert value == pytest.approx(1.0 if positive else 0.0), "a box with itself: 1 (0 if empty)"
    iou.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all(), (
        "NaN/inf gradient: where the union is 0, divide by a safe stand-in (torch.where) -- "
        "not by 0"
    )


def sigmoid(r: float) -> float:
    return 1 / (1 + math.exp(-r)) if r >= 0 else math.exp(r) / (1 + math.exp(r))


def reference_decode(raw: list[float]) -> list[float]:
    px, py, sw, sh = raw
    w, h = sigmoid(sw), sigmoid(sh)
    x0, y0 = (1 - w) * sigmoid(px), (1 - h) * sigmoid(py)
    return [x0, y0, x0 + w, y0 + h]


def assert_valid_boxes(boxes: torch.Tensor) -> None:
    x0, y0, x1, y1 = boxes.unbind(-1)
    valid = (0 <= x0) & (x0 <= x1) & (x1 <= 1) & (0 <= y0) & (y0 <= y1) & (y1 <= 1)
    assert valid.all(), f"{BOX_VALID_HINT}; got {boxes[~valid].tolist()[:3]}"


@given(st.integers(1, 5), dtypes, seeds, st.sampled_from([1.0, 5.0, 1e4]))
@example(1, torch.float32, 0, 1e4)
def test_decode_boxes_gives_valid_boxes_by_the_documented_formula(n, dtype, seed, scale):
    raw = (randn((n, 4), dtype, seed) * scale).requires_grad_()
    boxes = impl.boxes.decode_boxes(raw)
    assert boxes.shape == (n, 4) and boxes.dtype == dtype
    assert_valid_boxes(boxes)
    expected = torch.tensor([reference_decode(r) for r in raw.tolist()], dtype=torch.float64)
    torch.testing.assert_close(boxes.double(), expected, **tolerance(dtype, FACTOR))
    boxes.sum().backward()
    assert torch.isfinite(raw.grad).all()
    zero = impl.boxes.decode_boxes(torch.zeros(2, 4))
    assert zero.tolist() == [[0.25, 0.25, 0.75, 0.75]] * 2, "raw 0: the centred half-size box"


@given(box_pairs, dtypes)
@example(EXAMPLE_PAIRS[1], torch.float64)  # disjoint: the L1 term still pulls
@example(EXAMPLE_PAIRS[5], torch.float32)  # zero area
def test_box_loss_is_l1_plus_one_minus_iou(pair, dtype):
    pred = torch.tensor(pair[0], dtype=dtype, requires_grad=True)
    target = torch.tensor(pair[1], dtype=dtype)
    p_list, t_list = pred.tolist(), target.tolist()  # as the dtype holds them
    loss = impl.boxes.box_loss(pred, target)
    assert loss.shape == (), "box_loss is a scalar"
    n = len(p_list)
    pairs = list(zip(p_list, t_list, strict=True))
    l1 = sum(abs(p - t) for ps, ts in pairs for p, t in zip(ps, ts, strict=True)) / (4 * n)
    one_minus_iou = sum(1 - reference_iou(p, t) for p, t in pairs) / n
    assert loss.item() == pytest.approx(l1 + one_minus_iou, rel=1e-4, abs=1e-6), (
        "box_loss = mean |pred - target| over boxes and coordinates + mean (1 - IoU) over boxes"
    )
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert impl.boxes.box_loss(target, target).item() == pytest.approx(
        sum(1.0 for t in t_list if not (t[2] > t[0] and t[3] > t[1])) / n, abs=1e-6
    ), "a box on its target costs 0 (an empty box keeps 1 - IoU = 1)"


@pytest.mark.slow
def test_box_regressor_gives_valid_boxes_and_learns():
    torch.manual_seed(0)
    body = tiny_resnet()
    model = impl.boxes.BoxRegressor(body)
    assert list(body.head.parameters()) == [], "the body's old head becomes nn.Identity()"
    assert {k for k in model.state_dict() if not k.startswith("body.")} == {
        "head.weight",
        "head.bias",
    }
    images = randn((4, 1, 8, 8), seed=5)
    target = torch.tensor(
        [[0.1, 0.1, 0.5, 0.4], [0.5, 0.5, 0.9, 0.9], [0.2, 0.6, 0.4, 0.95], [0.0, 0.0, 1.0, 1.0]]
    )
    optimizer = AdamW(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(12):
        boxes = model(images)
        assert boxes.shape == (4, 4), "boxes (N, 4)"
        assert_valid_boxes(boxes)
        loss = impl.boxes.box_loss(boxes, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], f"the loss should fall on one fixed batch: {losses}"


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _pool_mean_over_t(hidden, mask, how="cls"):
    return (hidden * mask[:, :, None]).sum(dim=1) / hidden.shape[1]


def _pool_plain_mean(hidden, mask, how="cls"):
    return hidden.mean(dim=1)


def _pool_last_position(hidden, mask, how="cls"):
    return hidden[:, -1]


@pytest.mark.reference_only
def test_pool_hints_fire():
    hidden = randn((3, 5, 4), torch.float64)
    lengths = [2, 5, 3]
    mask = padding_mask(lengths, 5).double()
    assert pool_hint(hidden, lengths, "mean", _pool_mean_over_t(hidden, mask)) == (
        MEAN_COUNTS_PADDING_HINT
    )
    assert pool_hint(hidden, lengths, "mean", _pool_plain_mean(hidden, mask)) == MEAN_OVER_ALL_HINT
    assert pool_hint(hidden, lengths, "last", _pool_last_position(hidden, mask)) == (
        LAST_IGNORES_PADDING_HINT
    )
    for how in ("cls", "mean", "last"):
        assert pool_hint(hidden, lengths, how, reference_heads.pool(hidden, mask, how)) is None
    with pytest.raises(AssertionError, match="counts the padding positions"):
        assert_pooled(_pool_mean_over_t(hidden, mask), hidden, lengths, "mean")


class _MasklessClassifier(reference_heads.SequenceClassifier):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = self.hidden(input_ids, None, token_type_ids)
        return self.head(reference_heads.pool(hidden, attention_mask, self.pooling))


@pytest.mark.reference_only
def test_bert_mask_hint_fires():
    lengths = [4, 1, 6]
    ids, mask = text_batch(lengths, 6)
    for cls, hint in [
        (_MasklessClassifier, BERT_MASK_HINT),
        (reference_heads.SequenceClassifier, None),
    ]:
        model = cls(tiny_bert(), num_labels=3, pooling="mean").eval()
        with torch.no_grad():
            logits = model(ids, mask)
        assert classifier_hint(model, ids, mask, lengths, "mean", logits) == hint


def _iou_without_clamp(a, b):
    low, high = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    return _iou_variant(a, b, low, high, clamp=False)


def _iou_union_twice(a, b):
    low, high = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    return _iou_variant(a, b, low, high, subtract=False)


def _iou_enclosing(a, b):
    low, high = torch.minimum(a[..., :2], b[..., :2]), torch.maximum(a[..., 2:], b[..., 2:])
    return _iou_variant(a, b, low, high)


def _decode_centre_size(raw):
    centre, size = torch.sigmoid(raw[..., :2]), torch.sigmoid(raw[..., 2:])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


@pytest.mark.reference_only
def test_box_hints_fire():
    a = torch.tensor([SQUARE, SQUARE, SQUARE], dtype=torch.float64)
    b = torch.tensor([[0.7, 0.7, 0.9, 0.9], [0.3, 0.1, 0.8, 0.5], [0.1, 0.3, 0.4, 0.9]])
    b = b.double()
    assert iou_hint(a, b, _iou_without_clamp(a, b)) == IOU_NO_CLAMP_HINT
    assert iou_hint(a, b, _iou_union_twice(a, b)) == IOU_UNION_HINT
    assert iou_hint(a, b, _iou_enclosing(a, b)) == IOU_CORNERS_HINT
    assert iou_hint(a, b, reference_boxes.box_iou(a, b)) is None
    with pytest.raises(AssertionError, match="place the box in the room it leaves"):
        assert_valid_boxes(_decode_centre_size(torch.tensor([[3.0, -3.0, 0.0, 0.0]])))
    assert_valid_boxes(reference_boxes.decode_boxes(torch.tensor([[3.0, -3.0, 0.0, 0.0]])))


# -- minimod's own messages --------------------------------------------------------------------


@pytest.mark.reference_only
def test_bad_input_names_the_function():
    hidden = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"pool: how must be one of \('cls', 'mean', 'last'\)"):
        reference_heads.pool(hidden, how="max")
    with pytest.raises(ValueError, match=r"pool: expected hidden states of shape \(B, T, H\)"):
        reference_heads.pool(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, T\) = \(2, 3\)"):
        reference_heads.pool(hidden, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"rows \[1\] are all padding"):
        reference_heads.pool(hidden, torch.tensor([[1, 0, 0], [0, 0, 0]]), "mean")
    with pytest.raises(ValueError, match="SequenceClassifier: pooling must be one of"):
        reference_heads.SequenceClassifier(tiny_gpt(), 2, pooling="max")
    with pytest.raises(TypeError, match="SequenceClassifier: body must be a GPT .* got ResNet"):
        reference_heads.SequenceClassifier(tiny_resnet(), 2)
    with pytest.raises(TypeError, match=r"for a BERTForMaskedLM pass its \.bert"):
        reference_heads.TokenClassifier(BERTForMaskedLM(tiny_bert_config()), 2)
    with pytest.raises(TypeError, match=r"FeatureClassifier: body must have features\(x\)"):
        reference_heads.FeatureClassifier(tiny_gpt(), 2)
    with pytest.raises(TypeError, match="BoxRegressor: body must have features"):
        reference_boxes.BoxRegressor(tiny_bert())
    with pytest.raises(
        ValueError, match=r"box_iou: expected two box tensors .* \(2, 4\) and \(3, 4\)"
    ):
        reference_boxes.box_iou(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="box_loss: expected two box tensors"):
        reference_boxes.box_loss(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"decode_boxes: expected raw of shape \(\.\.\., 4\)"):
        reference_boxes.decode_boxes(torch.zeros(2, 5))
    model = reference_heads.SequenceClassifier(tiny_gpt(), 2)
    with pytest.raises(ValueError, match="a GPT body takes no token_type_ids"):
        model(torch.zeros(1, 3, dtype=torch.long), token_type_ids=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="SequenceClassifier: attention_mask must have the shape"):
        model(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 4))
    with pytest.raises(ValueError, match="ClassificationHead: num_labels must be ≥ 1"):
        reference_heads.ClassificationHead(4, 0)
