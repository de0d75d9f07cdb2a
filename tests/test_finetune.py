"""Fine-tuning tools (minimod.train.freezing): freeze / unfreeze by pattern, linear probing with
batch norm kept in eval mode, optimizer parameter groups with layer-wise learning-rate decay,
and gradual unfreezing.

Lesson 21's tests reach the tools through ``impl.freezing``. The models they fine-tune (a tiny
GPT, BERT and ResNet wrapped as ``body`` + ``head``) and the optimizer come from minimod itself:
they are earlier lessons' code, which must not stand between a learner's stub and its
NotImplementedError. The references are independent: fnmatch over the names, an explicit table
of layer ids per architecture, and the formula lr · decay ** (L + 1 − id) written out here.
"""

from __future__ import annotations

import copy
import io
from fnmatch import fnmatchcase

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from minimod import nn, optim
from minimod.models.bert import BERT, BERTConfig
from minimod.models.cnn import ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig

STALE_GRAD_HINT = (
    "a frozen parameter still moved: freezing must also drop its gradient (param.grad = None), "
    "because AdamW steps -- and decays -- every parameter that has a .grad"
)
REQUIRES_GRAD_HINT = "a frozen parameter still has requires_grad=True"
BIAS_DECAY_HINT = (
    "weight decay was put on a parameter with fewer than 2 dimensions (a bias or a norm gain); "
    "decay only matrices and embeddings (dim >= 2)"
)
REVERSED_DECAY_HINT = (
    "the learning rates grow towards the input: the head gets the full lr and each layer below "
    "layer_decay times the rate of the one above, lr * layer_decay ** (num_layers + 1 - id)"
)
EXPONENT_HINT = (
    "the layer-decay exponent is off by one: it is num_layers + 1 - id, so the head "
    "(id num_layers + 1) gets exactly lr and the embeddings (id 0) lr * decay ** (num_layers + 1)"
)
FIRST_STAGE_HINT = (
    "at step s the first 1 + s // every stages train: the first stage (the head) trains from step 0"
)
PURE_HINT = (
    "apply(step) must set exactly the trainable set of that step (freeze what later stages had "
    "unfrozen too), so a resumed run matches the uninterrupted one whatever ran before"
)


# -- tiny models: a pretrained body and a new head ---------------------------------------------


class Classifier(nn.Module):
    """body + head, as the fine-tuning models are built: features -> head -> class scores."""

    def __init__(self, kind: str, classes: int = 3) -> None:
        super().__init__()
        self.kind = kind
        if kind == "gpt":
            config = GPTConfig(vocab_size=13, block_size=6, n_layer=3, n_head=2, n_embd=8)
            self.body, width = GPT(config), 8
        elif kind == "bert":
            config = BERTConfig(
                vocab_size=13,
                hidden_size=8,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=16,
                max_position_embeddings=6,
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
            )
            self.body, width = BERT(config), 8
        else:
            self.body = ResNet(
                ResNetConfig(in_channels=1, num_classes=2, widths=(4, 6), depths=(1, 1))
            )
            self.body.head = nn.Identity()  # the new head replaces the pretrained one
            width = 6
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "gpt":
            return self.head(self.body.hidden_states(x)[:, -1])
        if self.kind == "bert":
            return self.head(self.body(x)[1])  # the pooled [CLS] vector
        return self.head(self.body.features(x))


NUM_LAYERS = {"gpt": 3, "bert": 2, "resnet": 2}
KINDS = tuple(NUM_LAYERS)


def make(kind: str, seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(kind)


def batch(kind: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    if kind == "resnet":
        x = torch.randn(4, 1, 6, 6, generator=generator)
    else:
        x = torch.randint(0, 13, (4, 5), generator=generator)
    return x, torch.randint(0, 3, (4,), generator=generator)


def train_steps(model, optimizer, kind: str, steps: int = 3) -> None:
    for step in range(steps):
        x, y = batch(kind, step)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def names(model) -> list[str]:
    return [name for name, _ in model.named_parameters()]


def trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def expected_layer(kind: str, name: str) -> int:
    """The layer id of each parameter, written out per architecture (the reference)."""
    top = NUM_LAYERS[kind]
    parts = name.split(".")
    if parts[0] == "head":
        return top + 1
    inner = parts[1:]  # below "body."
    if kind == "gpt":
        if inner[1] in ("wte", "wpe"):
            return 0
        if inner[1] == "h":
            return int(inner[2]) + 1
        assert inner[1] == "ln_f", name
        return top
    if kind == "bert":
        if inner[0] == "embeddings":
            return 0
        if inner[0] == "encoder":
            return int(inner[2]) + 1
        assert inner[0] == "pooler", name
        return top
    if inner[0] == "stem":
        return 0
    assert inner[0] == "stages", name
    return int(inner[1]) + 1


# -- freeze and unfreeze ---------------------------------------------------------------------


def assert_frozen_stay_put(freeze, kind: str) -> None:
    """Freeze the body after a backward pass (so every parameter holds a gradient), then train
    with AdamW and weight decay: the body must not change at all, the head must."""
    model = make(kind)
    x, y = batch(kind)
    torch.nn.functional.cross_entropy(model(x), y).backward()  # stale gradients everywhere
    frozen = freeze(model, "body.*")
    assert sorted(frozen) == sorted(n for n in names(model) if n.startswith("body.")), (
        "freeze returns the names it froze"
    )
    still = [n for n, p in model.named_parameters() if n in frozen and p.requires_grad]
    assert not still, f"{REQUIRES_GRAD_HINT}: {still[:3]}"
    optimizer = optim.AdamW(impl.freezing.param_groups(model, lr=0.05, weight_decay=0.5))
    before = snapshot(model)
    optimizer.step()  # before any zero_grad: a stale .grad would move the body here
    train_steps(model, optimizer, kind)
    after = snapshot(model)
    moved = [n for n in frozen if not torch.equal(before[n], after[n])]
    assert not moved, f"{STALE_GRAD_HINT}: {moved[:3]}"
    assert not torch.equal(before["head.weight"], after["head.weight"]), "the head must train"


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_parameters_do_not_change_under_adamw_with_weight_decay(kind):
    assert_frozen_stay_put(impl.freezing.freeze, kind)


GLOBS = (
    "body.*",
    "head.*",
    "*.bias",
    "*.h.0.*",
    "body.transformer.h.[12].*",
    "*ln_?.weight",
    "body.transformer.w?e.weight",
    "*mlp*",
)


@given(
    first=st.lists(st.sampled_from(GLOBS), max_size=3),
    second=st.lists(st.sampled_from(GLOBS), max_size=3),
)
@example(first=[], second=["head.*"])
def test_freeze_and_unfreeze_change_exactly_the_matching_parameters(first, second):
    model = make("gpt")
    all_names = names(model)

    def matching(patterns):
        if not patterns:
            return set(all_names)
        return {n for n in all_names if any(fnmatchcase(n, p) for p in patterns)}

    frozen = impl.freezing.freeze(model, *first)
    assert frozen == [n for n in all_names if n in matching(first)], "in model order"
    assert trainable(model) == set(all_names) - matching(first)
    assert impl.freezing.freeze(model, *first) == [], "freezing again changes nothing"

    unfrozen = impl.freezing.unfreeze(model, *second)
    assert unfrozen == [n for n in all_names if n in matching(second) & matching(first)]
    assert trainable(model) == (set(all_names) - matching(first)) | matching(second)
    assert impl.freezing.unfreeze(model, *second) == []
    grads = [n for n, p in model.named_parameters() if not p.requires_grad and p.grad is not None]
    assert not grads, STALE_GRAD_HINT


def test_modules_are_patterns_too():
    model = make("bert")
    layer = model.body.encoder.layer[1]
    ids = {id(p) for p in layer.parameters()}
    expected = [n for n, p in model.named_parameters() if id(p) in ids]
    assert impl.freezing.freeze(model, layer, "head.bias") == [
        n for n in names(model) if n in {*expected, "head.bias"}
    ]
    assert impl.freezing.unfreeze(model, layer) == expected
    assert trainable(model) == set(names(model)) - {"head.bias"}


def test_trainable_names_and_counts_follow_freezing():
    model = make("resnet")
    impl.freezing.freeze(model)
    impl.freezing.unfreeze(model, model.head)
    head_size = sum(p.numel() for p in model.head.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert impl.freezing.trainable_names(model) == ["head.weight", "head.bias"]
    assert impl.freezing.count_parameters(model) == (head_size, total)


# -- linear probing and batch norm -------------------------------------------------------------


def test_linear_probe_trains_the_head_and_keeps_batch_norm_statistics():
    model = make("resnet")
    model.head = nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 3))  # a head with its own BN
    x, y = batch("resnet")
    model.train()
    model(x)  # some running statistics that are not the initial ones
    trained = impl.freezing.linear_probe(model)
    assert trained == [n for n in names(model) if n.startswith("head.")]
    assert trainable(model) == set(trained)

    body_buffers = {n: b.clone() for n, b in model.body.named_buffers()}
    model.eval()
    expected_features = model.body.features(x)
    model.train()  # linear probing: the body must still behave as in eval mode
    features = model.body.features(x)
    head_before = model.head[0].running_mean.clone()
    optimizer = optim.AdamW(impl.freezing.param_groups(model, lr=0.05, weight_decay=0.1))
    train_steps(model, optimizer, "resnet")
    changed = [n for n, b in model.body.named_buffers() if not torch.equal(b, body_buffers[n])]
    assert not changed, (
        f"batch norm in the frozen body updated its running statistics {changed[:3]}; with "
        "batchnorm_eval it must use and keep them, as in eval mode"
    )
    torch.testing.assert_close(features, expected_features, rtol=0, atol=0)
    assert not torch.equal(model.head[0].running_mean, head_before), "the head's BN still trains"

    impl.freezing.linear_probe(model, batchnorm_eval=False)  # undoes the frozen statistics
    model.train()
    model(x)
    assert not torch.equal(model.body.stem[1].running_mean, body_buffers["stem.1.running_mean"])


def test_linear_probe_takes_a_module_or_a_dotted_name():
    model = make("gpt")
    assert impl.freezing.linear_probe(model, model.body.transformer.ln_f) == [
        "body.transformer.ln_f.weight",
        "body.transformer.ln_f.bias",
    ]
    assert impl.freezing.linear_probe(model, "body.transformer.h.2") == [
        n for n in names(model) if n.startswith("body.transformer.h.2.")
    ]
    assert trainable(model) == {n for n in names(model) if n.startswith("body.transformer.h.2.")}


# -- parameter groups --------------------------------------------------------------------------


def lr_of(groups) -> dict[int, tuple[float, float]]:
    """id(param) -> (lr, weight_decay), checking each parameter is in exactly one group."""
    found: dict[int, tuple[float, float]] = {}
    for group in groups:
        for param in group["params"]:
            assert id(param) not in found, "a parameter is in two groups"
            found[id(param)] = (group["lr"], group["weight_decay"])
    return found


def assert_weight_decay_on_matrices_only(param_groups, kind: str) -> None:
    model = make(kind)
    impl.freezing.freeze(model, "body.*")  # frozen parameters are grouped too
    groups = param_groups(model, lr=0.01, weight_decay=0.1)
    found = lr_of(groups)
    assert set(found) == {id(p) for p in model.parameters()}, (
        "every parameter, frozen or not, belongs to a group: an optimizer built over the "
        "trainable ones only never trains what is unfrozen later"
    )
    for name, param in model.named_parameters():
        lr, decay = found[id(param)]
        assert lr == 0.01, f"{name}: without layer decay every group has lr"
        if param.dim() < 2:
            assert decay == 0.0, f"{BIAS_DECAY_HINT}: {name}"
        else:
            assert decay == 0.1, f"{name} ({param.dim()}-D) must be decayed"
    assert all({"name", "layer"} <= group.keys() for group in groups), "groups carry name, layer"
    assert len({group["name"] for group in groups}) == len(groups), "group names are distinct"


@pytest.mark.parametrize("kind", KINDS)
def test_weight_decay_only_on_matrices_and_every_parameter_grouped(kind):
    assert_weight_decay_on_matrices_only(impl.freezing.param_groups, kind)


def test_no_decay_patterns_exempt_matrices_too():
    model = make("gpt")
    groups = impl.freezing.param_groups(
        model, lr=0.01, weight_decay=0.1, no_decay=["*.wte.weight", "*.wpe.weight"]
    )
    found = lr_of(groups)
    for name, param in model.named_parameters():
        exempt = name.endswith((".wte.weight", ".wpe.weight")) or param.dim() < 2
        assert found[id(param)][1] == (0.0 if exempt else 0.1), name


@pytest.mark.reference_only
def test_decay_groups_split_the_trainable_parameters_by_the_same_rule():
    from minimod.train import freezing

    model = make("bert")
    freezing.freeze(model, "body.embeddings.*")
    decayed, plain = freezing.decay_groups(model, 0.1)
    trained = [p for p in model.parameters() if p.requires_grad]
    assert decayed["params"] == [p for p in trained if p.dim() >= 2]
    assert plain["params"] == [p for p in trained if p.dim() < 2]
    assert (decayed["weight_decay"], plain["weight_decay"]) == (0.1, 0.0)
    # param_groups applies the same rule (to the frozen parameters too).
    groups = freezing.param_groups(model, 1.0, 0.1)
    in_decayed = {id(p) for group in groups if group["weight_decay"] for p in group["params"]}
    assert {id(p) for p in decayed["params"]} == {id(p) for p in trained if id(p) in in_decayed}
    only_vectors = nn.LayerNorm(4)
    assert freezing.decay_groups(only_vectors, 0.1) == [
        {"params": list(only_vectors.parameters()), "weight_decay": 0.0}
    ], "an empty group is left out"


def assert_layer_decay_lrs(param_groups, kind: str, lr: float, decay: float) -> None:
    model = make(kind)
    top = NUM_LAYERS[kind]
    groups = param_groups(model, lr=lr, weight_decay=0.01, layer_decay=decay)
    found = lr_of(groups)
    by_name = {name: found[id(p)][0] for name, p in model.named_parameters()}
    expected = {n: lr * decay ** (top + 1 - expected_layer(kind, n)) for n in by_name}
    if by_name != pytest.approx(expected, rel=1e-12):
        if decay < 1 and by_name["head.weight"] < by_name[names(model)[0]]:
            raise AssertionError(REVERSED_DECAY_HINT)
        if all(by_name[n] == pytest.approx(v / decay, rel=1e-9) for n, v in expected.items()):
            raise AssertionError(EXPONENT_HINT)
        if all(by_name[n] == pytest.approx(v * decay, rel=1e-9) for n, v in expected.items()):
            raise AssertionError(EXPONENT_HINT)
        wrong = [n for n in by_name if by_name[n] != pytest.approx(expected[n], rel=1e-12)]
        raise AssertionError(
            f"lr per layer: {wrong[0]} has {by_name[wrong[0]]}, expected {expected[wrong[0]]} "
            f"(layer id {expected_layer(kind, wrong[0])} of {top} blocks)"
        )
    layer_of = {id(p): expected_layer(kind, n) for n, p in model.named_parameters()}
    for group in groups:
        layers = {layer_of[id(p)] for p in group["params"]}
        assert layers == {group["layer"]}, f"group {group['name']} holds layers {layers}"


@given(
    kind=st.sampled_from(KINDS),
    lr=st.floats(1e-5, 1.0),
    decay=st.floats(0.05, 1.0),
)
@example(kind="gpt", lr=1e-3, decay=0.5)
@example(kind="resnet", lr=1.0, decay=1.0)
def test_layer_decay_matches_the_formula(kind, lr, decay):
    assert_layer_decay_lrs(impl.freezing.param_groups, kind, lr, decay)


def test_head_lr_overrides_the_head_only():
    model = make("bert")
    groups = impl.freezing.param_groups(model, lr=1e-3, layer_decay=0.5, head_lr=0.1)
    found = lr_of(groups)
    for name, param in model.named_parameters():
        layer = expected_layer("bert", name)
        expected = 0.1 if name.startswith("head.") else 1e-3 * 0.5 ** (3 - layer)
        assert found[id(param)][0] == pytest.approx(expected, rel=1e-12), name


def test_groups_work_with_both_optimizers_and_survive_unfreezing():
    model = make("gpt")
    twin = copy.deepcopy(model)
    impl.freezing.freeze(model, "body.*")
    impl.freezing.freeze(twin, "body.*")
    mine = optim.AdamW(
        impl.freezing.param_groups(model, lr=0.01, weight_decay=0.1, layer_decay=0.7)
    )
    theirs = torch.optim.AdamW(
        impl.freezing.param_groups(twin, lr=0.01, weight_decay=0.1, layer_decay=0.7)
    )
    assert [g["lr"] for g in mine.param_groups] == [g["lr"] for g in theirs.param_groups]
    train_steps(model, mine, "gpt", 2)
    train_steps(twin, theirs, "gpt", 2)
    impl.freezing.unfreeze(model)  # the body joins in: already in the optimizer's groups
    impl.freezing.unfreeze(twin)
    body = snapshot(model)
    train_steps(model, mine, "gpt", 2)
    train_steps(twin, theirs, "gpt", 2)
    for name, value in snapshot(model).items():
        torch.testing.assert_close(value, snapshot(twin)[name], rtol=1e-5, atol=1e-6)
    assert not torch.equal(
        body["body.transformer.h.0.attn.c_attn.weight"],
        snapshot(model)["body.transformer.h.0.attn.c_attn.weight"],
    ), "unfrozen parameters train with the optimizer built before"
    saved = mine.state_dict()["param_groups"]
    assert [g["name"] for g in saved] == [g["name"] for g in theirs.state_dict()["param_groups"]]


# -- gradual unfreezing ------------------------------------------------------------------------


def stage_names(model, stages, count: int) -> set[str]:
    return {n for n in names(model) if any(fnmatchcase(n, p) for s in stages[:count] for p in s)}


def assert_schedule(unfreezer_class, steps: list[int], every: int) -> None:
    model = make("gpt")
    stages = [
        ["head.*"],
        ["body.transformer.ln_f.*", "body.transformer.h.2.*"],
        ["body.transformer.h.1.*"],
        ["body.transformer.h.0.*", "body.transformer.w?e.*"],
    ]
    unfreezer = unfreezer_class(model, stages, every)
    before = trainable(model)
    for step in steps:
        count = min(len(stages), 1 + step // every)
        expected = stage_names(model, stages, count)
        newly = unfreezer.apply(step)
        got = trainable(model)
        if got != expected:
            if step < every and not got:
                raise AssertionError(f"{FIRST_STAGE_HINT} (nothing trains at step {step})")
            if got > expected:
                raise AssertionError(f"{PURE_HINT} (step {step} after {steps})")
            raise AssertionError(
                f"step {step}, every {every}: {len(got)} trainable tensors, expected the "
                f"{count} first stages' {len(expected)}"
            )
        assert sorted(newly) == sorted(expected - before), "apply returns the names it unfroze"
        assert unfreezer.apply(step) == [], "apply(step) again changes nothing"
        before = got


@given(
    steps=st.lists(st.integers(0, 12), min_size=1, max_size=6),
    every=st.integers(1, 4),
)
@example(steps=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], every=2)
@example(steps=[9, 0], every=3)
def test_gradual_unfreezing_is_a_pure_function_of_the_step(steps, every):
    assert_schedule(impl.freezing.GradualUnfreezer, steps, every)


def test_layer_stages_unfreeze_from_the_top():
    model = make("bert")
    impl.freezing.freeze(model)  # so that step 0 newly unfreezes the head
    stages = impl.freezing.layer_stages(model)
    unfreezer = impl.freezing.GradualUnfreezer(model, stages, every=2)
    layers_seen = []
    for step in range(0, 10, 2):
        newly = unfreezer.apply(step)
        layers_seen.append({expected_layer("bert", n) for n in newly})
    assert layers_seen == [{3}, {2}, {1}, {0}, set()], "one layer per stage, head first"
    assert trainable(model) == set(names(model))


def test_unfreezer_state_round_trip_resumes_the_same_trainable_set():
    model = make("gpt")
    unfreezer = impl.freezing.GradualUnfreezer(model, impl.freezing.layer_stages(model), 3)
    unfreezer.apply(7)
    state = unfreezer.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # plain data: no pickled code
    assert loaded == state

    resumed_model = make("gpt")
    resumed = impl.freezing.GradualUnfreezer(resumed_model, [["head.*"]], every=100)
    resumed.load_state_dict(loaded)
    assert trainable(resumed_model) == trainable(model), "loading applies the saved step"
    assert resumed.state_dict() == state
    for step in (7, 8, 9, 12):
        assert unfreezer.apply(step) == resumed.apply(step)
        assert trainable(resumed_model) == trainable(model)


# -- minimod's own behaviour: errors, summaries, the hints -------------------------------------


@pytest.mark.reference_only
def test_errors_name_the_function_and_show_real_names():
    from minimod.train import freezing

    model = make("gpt")
    matches_nothing = r"freeze: pattern 'encoder\.\*' matches no parameter.*transformer\.wte"
    with pytest.raises(ValueError, match=matches_nothing):
        freezing.freeze(model, "encoder.*")
    with pytest.raises(TypeError, match="unfreeze: patterns must be fnmatch globs"):
        freezing.unfreeze(model, 3)
    with pytest.raises(ValueError, match="the Linear given matches no parameter"):
        freezing.freeze(model, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="trainable_names: expected a minimod Module"):
        freezing.trainable_names(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="linear_probe: the model has no submodule 'classifier'"):
        freezing.linear_probe(model, "classifier")
    with pytest.raises(ValueError, match="layer_decay must be in"):
        freezing.param_groups(model, 1e-3, layer_decay=0.0)
    with pytest.raises(ValueError, match="layer_id: cannot tell which layer 'adapter.scale'"):
        freezing.layer_id("adapter.scale", 2)
    with pytest.raises(ValueError, match="GradualUnfreezer: every must be an int >= 1"):
        freezing.GradualUnfreezer(model, [["head.*"]], 0)
    with pytest.raises(ValueError, match="each stage must be a non-empty list"):
        freezing.GradualUnfreezer(model, ["head.*"], 1)
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        freezing.GradualUnfreezer(model, [["head.*"]], 1).apply(-1)


@pytest.mark.reference_only
def test_summary_and_layer_ids_of_bare_models():
    from minimod.train import freezing

    model = make("resnet")
    freezing.linear_probe(model)
    trained, total = freezing.count_parameters(model)
    assert freezing.trainable_summary(model) == (
        f"trainable: {trained:,} of {total:,} parameters ({100 * trained / total:.1f}%) "
        f"in 2 of {len(names(model))} tensors"
    )
    assert freezing.count_layers(model) == 2
    assert freezing.layer_id("transformer.h.3.mlp.c_fc.weight", 4) == 4
    assert freezing.layer_id("encoder.layer.0.output.dense.bias", 4) == 1
    assert freezing.layer_id("body.body.2.weight", 4) == 3  # an AudioCNN inside a wrapper
    assert freezing.layer_id("cls.predictions.bias", 4) == 5
    groups = freezing.param_groups(model, 1e-3, 0.1, layer_decay=0.5)
    assert [g["name"] for g in groups] == [
        "embeddings/decay",
        "embeddings/no_decay",
        "layer1/decay",
        "layer1/no_decay",
        "layer2/decay",
        "layer2/no_decay",
        "head/decay",
        "head/no_decay",
    ]


@pytest.mark.reference_only
def test_batch_norm_freeze_stats_keeps_the_requested_mode():
    bn = nn.BatchNorm2d(3)
    bn.freeze_stats = True
    assert not bn.train().training, "frozen statistics: training reads False"
    bn.freeze_stats = False
    assert bn.training, "train() was remembered"
    bn.eval()
    bn.freeze_stats = True
    bn.freeze_stats = False
    assert not bn.training
    assert "freeze_stats" not in bn.state_dict() and "_training" not in bn.state_dict()

    from minimod.train.freezing import freeze_batchnorm_stats

    model = make("resnet").train()
    frozen = freeze_batchnorm_stats(model.body)
    assert frozen == [n for n, m in model.body.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(frozen) == 6 and not model.body.stem[1].training and model.training
    assert freeze_batchnorm_stats(model, frozen=False) == [f"body.{n}" for n in frozen]
    assert model.body.stem[1].training


# The hints fire on deliberately wrong implementations.


def _freeze_keeping_grads(model, *patterns):
    from minimod.train.freezing import match_parameters

    chosen = match_parameters(model, *patterns)
    for name, param in model.named_parameters():
        if name in chosen:
            param.requires_grad_(False)
    return chosen


def _param_groups_decaying_everything(model, lr, weight_decay=0.0, **_):
    return [{"params": list(model.parameters()), "lr": lr, "weight_decay": weight_decay}]


def _param_groups_with(exponent):
    from minimod.train.freezing import count_layers, layer_id

    def wrong(model, lr, weight_decay=0.0, layer_decay=None, **_):
        top = count_layers(model)
        groups = []
        for name, param in model.named_parameters():
            layer = layer_id(name, top)
            lr_here = lr * layer_decay ** exponent(top, layer)
            groups.append(
                {
                    "params": [param],
                    "lr": lr_here,
                    "weight_decay": 0.0,
                    "layer": layer,
                    "name": name,
                }
            )
        return groups

    return wrong


class _UnfreezerFrom:
    """A gradual unfreezer with one classic mistake ("none": a correct one)."""

    def __init__(self, mistake):
        self.mistake = mistake

    def __call__(self, model, stages, every):
        from minimod.train.freezing import freeze, match_parameters, unfreeze

        mistake = self.mistake
        freeze(model)

        class Wrong:
            def apply(self, step):
                count = min(len(stages), step // every + (mistake != "no first stage"))
                keep = match_parameters(model, *[p for stage in stages[:count] for p in stage])
                keep = keep if count else []
                rest = [n for n, _ in model.named_parameters() if n not in keep]
                if rest and mistake != "never refreezes":
                    freeze(model, *rest)
                return unfreeze(model, *keep) if keep else []

        return Wrong()


@pytest.mark.reference_only
def test_hints_fire_on_wrong_implementations():
    with pytest.raises(AssertionError, match="drop its gradient"):
        assert_frozen_stay_put(_freeze_keeping_grads, "gpt")
    with pytest.raises(AssertionError, match="fewer than 2 dimensions"):
        assert_weight_decay_on_matrices_only(_param_groups_decaying_everything, "bert")
    reversed_ = _param_groups_with(lambda top, layer: layer)
    with pytest.raises(AssertionError, match="grow towards the input"):
        assert_layer_decay_lrs(reversed_, "gpt", 1e-3, 0.5)
    for off_by_one in (lambda top, layer: top - layer, lambda top, layer: top + 2 - layer):
        with pytest.raises(AssertionError, match="off by one"):
            assert_layer_decay_lrs(_param_groups_with(off_by_one), "resnet", 1e-3, 0.5)
    with pytest.raises(AssertionError, match="the first stage \\(the head\\) trains from"):
        assert_schedule(_UnfreezerFrom("no first stage"), [0, 3], 2)
    with pytest.raises(AssertionError, match="exactly the trainable set of that step"):
        assert_schedule(_UnfreezerFrom("never refreezes"), [9, 0], 3)


@pytest.mark.reference_only
def test_hints_accept_a_correct_implementation():
    from minimod.train import freezing

    assert_frozen_stay_put(freezing.freeze, "resnet")
    assert_layer_decay_lrs(_param_groups_with(lambda top, layer: top + 1 - layer), "gpt", 0.1, 0.5)
    assert_schedule(_UnfreezerFrom("none"), [9, 0, 4], 3)
