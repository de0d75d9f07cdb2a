"""Module and Parameter (lesson e01) against the semantics of torch.nn.Module.

Every model here is built by the classes that ``make_classes(Module, Parameter)`` defines, once
with the implementation under test (``impl.nn.Module``, ``impl.nn.Parameter``) and once with
``torch.nn.Module`` / ``torch.nn.Parameter``. The same code thus builds a tree and its torch twin
from the same random numbers, and names, orders and values can be compared directly.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from strategies import shapes

# -- the test models, for any Module/Parameter pair -----------------------------------------------


def make_classes(Module, Parameter) -> SimpleNamespace:  # noqa: N803 (they are classes)
    """Small modules written against ``Module``/``Parameter``: impl's or torch.nn's."""

    class Affine(Module):
        def __init__(self, n_in, n_out, bias=True):
            super().__init__()
            self.n_in, self.n_out = n_in, n_out
            self.weight = Parameter(torch.randn(n_out, n_in))
            if bias:
                self.bias = Parameter(torch.randn(n_out))
            else:
                self.register_parameter("bias", None)

        def forward(self, x):
            y = x @ self.weight.T
            return y if self.bias is None else y + self.bias

        def extra_repr(self):
            return f"n_in={self.n_in}, n_out={self.n_out}, bias={self.bias is not None}"

    class Stats(Module):
        """Buffers of every kind: float and integer persistent ones, a non-persistent one."""

        def __init__(self, n):
            super().__init__()
            self.scale = Parameter(torch.ones(n) + 0.1 * torch.randn(n))
            self.register_buffer("running_mean", torch.randn(n))
            self.register_buffer("steps", torch.tensor(7))
            self.register_buffer("scratch", torch.randn(n), persistent=False)

        def forward(self, x):
            return (x - self.running_mean) * self.scale

    class Block(Module):
        def __init__(self, n, hidden):
            super().__init__()
            self.stats = Stats(n)
            self.up = Affine(n, hidden)
            self.down = Affine(hidden, n, bias=False)

        def forward(self, x):
            return x + self.down(torch.tanh(self.up(self.stats(x))))

    class Table(Module):
        def __init__(self, rows, n):
            super().__init__()
            self.weight = Parameter(torch.randn(rows, n))

        def forward(self, index):
            return self.weight[index]

    class TinyLM(Module):
        """Embedding table, two blocks, and an output head tied to the embedding table."""

        def __init__(self, vocab=5, n=3, hidden=4):
            super().__init__()
            self.embed = Table(vocab, n)
            self.block0 = Block(n, hidden)
            self.block1 = Block(n, hidden)
            self.head = Affine(n, vocab, bias=False)
            self.head.weight = self.embed.weight  # tied: one Parameter, two names

        def forward(self, index):
            return self.head(self.block1(self.block0(self.embed(index))))

    class Shared(Module):
        """The same child under two names."""

        def __init__(self):
            super().__init__()
            self.first = Affine(2, 2)
            self.own = Parameter(torch.randn(2))
            self.second = self.first

    class Node(Module):
        """A tree described by a spec (see ``specs``)."""

        def __init__(self, spec):
            super().__init__()
            for i, item in enumerate(spec):
                if item[0] == "param":
                    setattr(self, f"p{i}", Parameter(torch.randn(item[1]), item[2]))
                elif item[0] == "buffer":
                    self.register_buffer(f"b{i}", torch.randn(item[1]), persistent=item[2])
                else:
                    setattr(self, f"c{i}", Node(item[1]))

    return SimpleNamespace(
        Affine=Affine,
        Stats=Stats,
        Block=Block,
        Table=Table,
        TinyLM=TinyLM,
        Shared=Shared,
        Node=Node,
        Module=Module,
        Parameter=Parameter,
    )


def mine() -> SimpleNamespace:
    return make_classes(impl.nn.Module, impl.nn.Parameter)


def torch_twin() -> SimpleNamespace:
    return make_classes(torch.nn.Module, torch.nn.Parameter)


def build_pair(name: str, *args, seed: int = 0):
    """The same model built with impl's Module and with torch.nn.Module, from the same numbers."""
    torch.manual_seed(seed)
    ours = getattr(mine(), name)(*args)
    torch.manual_seed(seed)
    theirs = getattr(torch_twin(), name)(*args)
    return ours, theirs


def build(name: str, *args, seed: int = 0):
    torch.manual_seed(seed)
    return getattr(mine(), name)(*args)


# -- assertions that explain the classic mistakes -------------------------------------------------


def names_hint(got: list[str], expected: list[str], what: str) -> str:
    """A likely reason why ``got`` names differ from torch's ``expected`` (or "")."""
    if got == expected:
        return ""
    if not got and expected:
        return (
            "nothing was found: does __setattr__ put Parameters, buffers and Modules into "
            "their registries (and does the walk look in them)?"
        )
    shared = (
        "a shared parameter or module must not be listed more than once (torch skips "
        "what it has already seen, by identity), or an optimizer updates it twice"
    )
    if len(set(got)) < len(got):
        return shared
    if sorted(got) == sorted(expected):
        return (
            "same names, different order: keep registration order and walk depth first: a "
            "module's own parameters, then its buffers, then each child in assignment order"
        )
    leaves = {name.rsplit(".", 1)[-1] for name in expected}
    if any("." in name for name in expected) and not any("." in name for name in got):
        if set(got) <= leaves:
            return (
                "nested names need the dotted path of their submodule, e.g. "
                f"'{next(n for n in expected if '.' in n)}', not just the last part"
            )
        return "names of submodules' members are missing: did the walk recurse into children?"
    extra = [name for name in got if name not in expected]
    if extra and set(expected) < set(got):
        if what.startswith("state_dict"):
            return (
                f"extra keys {extra}: non-persistent buffers (persistent=False) and tensors "
                "assigned as plain attributes are not part of state_dict"
            )
        return f"extra names {extra}: " + shared
    return ""


def assert_same_names(got, expected, what: str, hint: str = "") -> None:
    got, expected = list(got), list(expected)
    if got == expected:
        return
    hint = names_hint(got, expected, what) if not hint or sorted(got) != sorted(expected) else hint
    raise AssertionError(
        f"{what} differ from torch.nn.Module's\n got:      {got}\n"
        f" expected: {expected}" + (f"\n hint: {hint}" if hint else "")
    )


def names(pairs) -> list[str]:
    return [name for name, _ in pairs]


class Raised:
    value: BaseException


@contextlib.contextmanager
def raises(expected: type[BaseException]):
    """Like pytest.raises, but an unfilled exercise's NotImplementedError (a RuntimeError!)
    is never mistaken for the expected error."""
    caught = Raised()
    try:
        yield caught
    except NotImplementedError:
        raise
    except expected as error:
        caught.value = error
    else:
        pytest.fail(f"expected {expected.__name__}, nothing was raised")


def holder(value_name: str, value):
    """A Module holding ``value`` as attribute ``value_name``."""
    module = mine().Module()
    setattr(module, value_name, value)
    return module


# -- registration by attribute assignment ---------------------------------------------------------


def test_assignment_registers_parameters_buffers_and_children():
    model = build("Block", 3, 4)
    assert_same_names(
        names(model.named_parameters()),
        ["stats.scale", "up.weight", "up.bias", "down.weight"],
        "parameter names",
    )
    assert_same_names(
        names(model.named_buffers()),
        ["stats.running_mean", "stats.steps", "stats.scratch"],
        "buffer names",
    )
    assert_same_names(names(model.named_children()), ["stats", "up", "down"], "children")
    assert isinstance(model.up.weight, impl.nn.Parameter)
    assert model.up.bias is dict(model.named_parameters())["up.bias"], (
        "attribute access must return the registered Parameter itself"
    )
    assert model.down.bias is None, "register_parameter('bias', None) makes model.bias None"
    assert model.stats.steps.dtype == torch.long
    plain = torch.randn(3)
    model.plain = plain  # a plain tensor is just an attribute: neither parameter nor buffer
    assert model.plain is plain
    assert "plain" not in names(model.named_parameters(recurse=False))
    assert "plain" not in names(model.named_buffers(recurse=False))
    assert "plain" not in model.state_dict(), "a plain tensor attribute is not saved"


def test_registration_matches_torch_twin():
    ours, theirs = build_pair("TinyLM")
    for walk in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert_same_names(names(getattr(ours, walk)()), names(getattr(theirs, walk)()), walk)


def test_reassignment_replaces_in_place_and_keeps_order():
    twin_classes = torch_twin()
    models = [mine(), twin_classes]
    results = []
    for classes in models:
        torch.manual_seed(0)
        model = classes.Block(3, 4)
        new_weight = classes.Parameter(torch.zeros(4, 3))
        model.up.weight = new_weight
        model.stats.running_mean = torch.full((3,), 5.0)  # a tensor into a buffer slot
        model.stats = classes.Stats(3)  # a new child under an old name
        assert model.up.weight is new_weight
        results.append(
            (
                list(model.state_dict()),
                names(model.named_parameters()),
                names(model.named_modules()),
            )
        )
        assert torch.equal(model.up.weight, torch.zeros(4, 3))
    for ours, theirs, what in zip(
        *results, ("state_dict keys", "parameters", "modules"), strict=True
    ):
        assert_same_names(
            ours,
            theirs,
            what + " after reassignment",
            hint=(
                "assigning to a name that is already registered replaces the value where it is "
                "(registry[name] = value): it must not move to the end"
            ),
        )


def test_reassigning_a_buffer_keeps_it_a_buffer():
    model = build("Stats", 3)
    model.running_mean = torch.zeros(3)
    model.scratch = torch.ones(3)
    assert torch.equal(dict(model.named_buffers())["running_mean"], torch.zeros(3))
    assert torch.equal(model.state_dict()["running_mean"], torch.zeros(3))
    assert "scratch" not in model.state_dict(), "a non-persistent buffer stays non-persistent"
    model.running_mean = None
    assert "running_mean" not in model.state_dict()


def test_a_parameter_replacing_a_buffer_or_child_moves_registry():
    model = build("Block", 3, 4)
    model.stats = impl.nn.Parameter(torch.ones(2))
    assert "stats" in names(model.named_parameters(recurse=False))
    assert "stats" not in names(model.named_children())
    assert "stats.scale" not in model.state_dict()
    stats = model.up
    stats.running = impl.nn.Parameter(torch.ones(1))
    stats.weight = mine().Affine(1, 1)
    assert "weight" in names(stats.named_children())
    assert "weight" not in names(stats.named_parameters(recurse=False))


@pytest.mark.parametrize("name", ["weight", "child", "buffer"])
def test_wrong_type_for_a_registered_name_raises_type_error(name):
    model = mine().Module()
    model.weight = impl.nn.Parameter(torch.ones(2))
    model.child = mine().Module()
    model.register_buffer("buffer", torch.ones(2))
    wrong = 3.0 if name == "buffer" else torch.ones(2)
    with raises(TypeError):
        setattr(model, name, wrong)
    assert len(list(model.parameters())) == 1 and len(list(model.children())) == 1


def test_assigning_a_plain_tensor_to_a_parameter_name_is_refused():
    model = build("Affine", 3, 2)
    with raises(TypeError) as caught:
        model.weight = torch.zeros(2, 3)
    assert isinstance(caught.value, TypeError)
    assert isinstance(model.weight, impl.nn.Parameter), (
        "a plain tensor must not replace a Parameter (wrap it: Parameter(tensor))"
    )


def test_none_empties_a_slot_without_unregistering_it():
    model = build("Block", 3, 4)
    model.up.bias = None
    model.stats = None
    assert model.up.bias is None and model.stats is None
    assert "up.bias" not in model.state_dict()
    assert_same_names(
        names(model.named_parameters()), ["up.weight", "down.weight"], "parameter names"
    )
    model.up.bias = impl.nn.Parameter(torch.ones(4))
    assert "up.bias" in model.state_dict()


def test_deleting_attributes_unregisters_them():
    model = build("Block", 3, 4)
    del model.up.bias
    del model.stats.running_mean
    del model.down
    assert_same_names(
        names(model.named_parameters()), ["stats.scale", "up.weight"], "parameter names"
    )
    assert_same_names(
        list(model.state_dict()), ["stats.scale", "stats.steps", "up.weight"], "state_dict keys"
    )
    for owner, name in ((model.up, "bias"), (model.stats, "running_mean"), (model, "down")):
        with raises(AttributeError):
            getattr(owner, name)
        assert not hasattr(owner, name)


def test_missing_attribute_raises_attribute_error():
    model = build("Affine", 2, 2)
    with raises(AttributeError) as caught:
        model.nonexistent  # noqa: B018
    assert "nonexistent" in str(caught.value)


def test_assigning_before_super_init_raises_attribute_error():
    classes = mine()

    class Early(classes.Module):
        def __init__(self, value):
            self.value = value
            super().__init__()

    for value in (classes.Parameter(torch.ones(1)), classes.Module()):
        with raises(AttributeError) as caught:
            Early(value)
        assert "__init__" in str(caught.value), "say that super().__init__() must come first"
    good = holder("value", classes.Parameter(torch.ones(1)))
    assert names(good.named_parameters()) == ["value"]


def test_plain_attribute_before_super_init_is_allowed_like_torch():
    # torch.nn.Module only refuses Parameters and Modules before __init__; plain values are fine.
    classes = mine()

    class Configured(classes.Module):
        def __init__(self):
            self.width = 3
            super().__init__()
            self.weight = classes.Parameter(torch.ones(self.width))

    model = Configured()
    assert model.width == 3 and names(model.named_parameters()) == ["weight"]


def test_register_methods_check_their_arguments():
    model = mine().Module()
    with raises(TypeError):
        model.register_parameter("w", torch.ones(1))
    with raises(TypeError):
        model.add_module("m", torch.ones(1))
    with raises(TypeError):
        model.register_buffer("b", [1.0])
    model.register_parameter("w", impl.nn.Parameter(torch.ones(1)))
    model.add_module("m", mine().Module())
    model.register_buffer("b", torch.ones(1))
    model.register_buffer("empty", None)
    assert names(model.named_parameters()) == ["w"]
    assert names(model.named_children()) == ["m"]
    assert names(model.named_buffers()) == ["b"], "a None buffer is skipped"


# -- walking the tree -----------------------------------------------------------------------------

TINY_LM_PARAMETERS = [
    "embed.weight",
    *[
        f"block{i}.{name}"
        for i in (0, 1)
        for name in ("stats.scale", "up.weight", "up.bias", "down.weight")
    ],
]


def test_named_parameters_dotted_in_registration_order():
    ours, theirs = build_pair("TinyLM")
    assert_same_names(names(ours.named_parameters()), TINY_LM_PARAMETERS, "named_parameters")
    assert_same_names(
        names(ours.named_parameters()), names(theirs.named_parameters()), "named_parameters"
    )
    got = dict(ours.named_parameters())
    assert got["block1.up.weight"] is ours.block1.up.weight
    assert [id(p) for p in ours.parameters()] == [id(p) for p in got.values()]


def test_named_parameters_recurse_and_prefix():
    ours, theirs = build_pair("Block", 3, 4)
    for kwargs in (dict(recurse=False), dict(prefix="model"), dict(prefix="m", recurse=False)):
        assert_same_names(
            names(ours.named_parameters(**kwargs)),
            names(theirs.named_parameters(**kwargs)),
            f"named_parameters({kwargs})",
        )
        assert_same_names(
            names(ours.stats.named_buffers(**kwargs)),
            names(theirs.stats.named_buffers(**kwargs)),
            f"named_buffers({kwargs})",
        )
    assert names(ours.up.named_parameters(prefix="up")) == ["up.weight", "up.bias"]
    assert list(ours.parameters(recurse=False)) == []
    assert [id(p) for p in ours.up.parameters(recurse=False)] == [
        id(ours.up.weight),
        id(ours.up.bias),
    ]


def test_tied_parameter_listed_once_but_saved_under_both_names():
    ours, theirs = build_pair("TinyLM")
    assert ours.head.weight is ours.embed.weight
    ids = [id(p) for p in ours.parameters()]
    assert len(ids) == len(set(ids)), (
        "a tied parameter must appear once in parameters(), or an optimizer updates it twice"
    )
    assert "head.weight" not in names(ours.named_parameters()), "the first name wins"
    assert_same_names(
        names(ours.named_parameters(remove_duplicate=False)),
        names(theirs.named_parameters(remove_duplicate=False)),
        "named_parameters(remove_duplicate=False)",
    )
    state = ours.state_dict()
    assert "head.weight" in state and "embed.weight" in state, (
        "state_dict lists a tied tensor under every name (as torch does)"
    )
    assert torch.equal(state["head.weight"], state["embed.weight"])


def test_buffers_children_and_modules():
    ours, theirs = build_pair("TinyLM")
    assert_same_names(names(ours.named_buffers()), names(theirs.named_buffers()), "named_buffers")
    assert len(list(ours.buffers())) == 6
    assert [id(b) for b in ours.buffers()] == [id(b) for _, b in ours.named_buffers()]
    assert [id(c) for c in ours.children()] == [
        id(ours.embed),
        id(ours.block0),
        id(ours.block1),
        id(ours.head),
    ]
    named = list(ours.named_modules())
    assert named[0] == ("", ours), "named_modules starts with the module itself, named ''"
    assert_same_names(names(named), names(theirs.named_modules()), "named_modules")
    assert [id(m) for m in ours.modules()] == [id(m) for _, m in named]


def test_shared_submodule_is_walked_once():
    ours, theirs = build_pair("Shared")
    assert_same_names(names(ours.named_modules()), names(theirs.named_modules()), "named_modules")
    assert_same_names(
        names(ours.named_children()), names(theirs.named_children()), "named_children"
    )
    assert_same_names(
        names(ours.named_parameters()), names(theirs.named_parameters()), "named_parameters"
    )
    assert_same_names(list(ours.state_dict()), list(theirs.state_dict()), "state_dict keys")
    assert len(list(ours.modules())) == 2


# -- state_dict and load_state_dict ---------------------------------------------------------------


def test_state_dict_keys_and_order_match_torch():
    ours, theirs = build_pair("TinyLM")
    assert_same_names(list(ours.state_dict()), list(theirs.state_dict()), "state_dict keys")
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), f"{key}: values differ"


def test_state_dict_holds_detached_tensors_or_the_variables_themselves():
    model = build("Block", 3, 4)
    state = model.state_dict()
    assert "stats.scratch" not in state, "non-persistent buffers are not saved"
    for key, value in state.items():
        assert type(value) is torch.Tensor and not value.requires_grad, (
            f"state_dict()['{key}'] must be a detached plain tensor (param.detach()); "
            "only keep_vars=True returns the Parameters themselves"
        )
    kept = model.state_dict(keep_vars=True)
    assert kept["up.weight"] is model.up.weight
    assert kept["stats.running_mean"] is model.stats.running_mean
    assert list(kept) == list(state)


def test_state_dict_values_share_memory_with_the_model():
    model = build("Affine", 3, 2)
    model.state_dict()["weight"].zero_()  # torch returns param.detach(): the same storage
    assert torch.equal(model.weight, torch.zeros(2, 3)), (
        "state_dict returns detached views, not copies (as torch)"
    )


def _broken_checkpoint(model):
    """Another model's state_dict with one key missing, one extra and one wrongly shaped."""
    state = build("Block", 3, 4, seed=1).state_dict()
    del state["up.bias"]
    state["up.extra"] = torch.ones(2)
    state["stats.scale"] = torch.ones(5)
    return state


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_strict_load_reports_every_problem_and_copies_nothing():
    model = build("Block", 3, 4)
    before = _snapshot(model)
    with raises(RuntimeError) as caught:
        model.load_state_dict(_broken_checkpoint(model))
    message = str(caught.value)
    for key, kind in (
        ("up.bias", "missing"),
        ("up.extra", "unexpected"),
        ("stats.scale", "shape mismatch"),
    ):
        assert key in message, f"the error must list every problem at once: {kind} '{key}'"
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), (
            f"'{key}' changed although the strict load failed: check all keys before copying"
        )


def test_strict_load_error_for_each_kind_alone():
    model = build("Affine", 3, 2)
    good = build("Affine", 3, 2, seed=1).state_dict()
    for bad in (
        {"weight": good["weight"]},
        {**good, "spare": torch.ones(1)},
        {**good, "bias": torch.ones(3)},
    ):
        with raises(RuntimeError):
            model.load_state_dict(bad)
    assert model.load_state_dict(good) is not None


def test_non_strict_load_still_refuses_a_wrong_shape_like_torch():
    """strict=False forgives missing and unexpected keys, not a wrongly shaped one: torch
    raises "size mismatch" there too. minimod checks before copying, so nothing changes."""
    ours, theirs = build_pair("Block", 3, 4)
    before = _snapshot(ours)
    with pytest.raises(RuntimeError, match="size mismatch"):
        theirs.load_state_dict(_broken_checkpoint(ours), strict=False)
    with raises(RuntimeError) as caught:
        ours.load_state_dict(_broken_checkpoint(ours), strict=False)
    message = str(caught.value)
    assert "size mismatch" in message and "stats.scale" in message and "(5,)" in message, (
        f"name the wrongly shaped key and its shapes, as torch: {message}"
    )
    assert "up.bias" not in message, "strict=False forgives the missing key: do not report it"
    for key, value in ours.state_dict().items():
        assert torch.equal(value, before[key]), f"'{key}' changed although the load failed"


def test_non_strict_load_copies_what_matches_and_returns_the_rest():
    """skip_mismatched=True (minimod's opt-in): wrongly shaped keys are skipped and reported."""
    model = build("Block", 3, 4)
    before = _snapshot(model)
    checkpoint = _broken_checkpoint(model)
    result = model.load_state_dict(checkpoint, strict=False, skip_mismatched=True)
    missing, unexpected, mismatched = result
    assert result.missing_keys == missing == ["up.bias"]
    assert result.unexpected_keys == unexpected == ["up.extra"]
    assert len(result.mismatched_keys) == 1 and "stats.scale" in result.mismatched_keys[0]
    after = model.state_dict()
    for key in ("up.weight", "down.weight", "stats.running_mean", "stats.steps"):
        assert torch.equal(after[key], checkpoint[key]), f"'{key}' matched but was not copied"
    for key in ("up.bias", "stats.scale"):
        assert torch.equal(after[key], before[key]), f"'{key}' should be left alone"


def test_load_keeps_parameter_objects_and_autograd_leaves():
    model = build("Block", 3, 4)
    params = {name: p for name, p in model.named_parameters()}
    source = build("Block", 3, 4, seed=1).double()
    result = model.load_state_dict(source.state_dict())
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    for name, param in model.named_parameters():
        assert param is params[name], (
            f"'{name}' was replaced: copy into the existing tensor (under torch.no_grad()) so "
            "optimizers holding it see the new values"
        )
        assert param.is_leaf and param.requires_grad and param.dtype == torch.float32
        expected = dict(source.named_parameters())[name].float()
        torch.testing.assert_close(param, expected, rtol=0, atol=0)


def test_non_persistent_buffer_in_checkpoint_is_unexpected():
    model = build("Stats", 3)
    state = dict(model.state_dict())
    state["scratch"] = torch.zeros(3)
    result = model.load_state_dict(state, strict=False)
    assert result.unexpected_keys == ["scratch"]


def test_weights_move_between_minimod_and_torch_twin():
    ours, theirs = build_pair("TinyLM", seed=3)
    _, other_twin = build_pair("TinyLM", seed=4)
    theirs.load_state_dict(other_twin.state_dict())
    ours.load_state_dict(theirs.state_dict())
    index = torch.tensor([[0, 4, 2], [1, 1, 3]])
    torch.testing.assert_close(ours(index), theirs(index), rtol=1e-5, atol=1e-6)
    fresh = build("TinyLM", seed=5)
    theirs.load_state_dict(fresh.state_dict())
    torch.testing.assert_close(theirs(index), fresh(index), rtol=1e-5, atol=1e-6)
    assert ours.head.weight is ours.embed.weight, "loading must not untie shared parameters"


# -- modes, gradients, conversion -----------------------------------------------------------------


def test_train_and_eval_reach_every_descendant():
    model = build("TinyLM")
    assert all(m.training for m in model.modules()), "a new module is in training mode"
    assert model.eval() is model, "eval() returns self, so you can write model = Net().eval()"
    stale = [name for name, m in model.named_modules() if m.training]
    assert not stale, f"eval() must reach every descendant; still training: {stale}"
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not any(m.training for m in model.modules())
    model.block0.train()
    assert [name for name, m in model.named_modules() if m.training] == [
        "block0",
        "block0.stats",
        "block0.up",
        "block0.down",
    ]


def _backward(model):
    model(torch.tensor([[0, 1, 4]])).square().sum().backward()


def test_zero_grad_sets_to_none_by_default():
    model = build("TinyLM")
    _backward(model)
    assert all(p.grad is not None for p in model.parameters())
    assert model.zero_grad() is None
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_in_place():
    model = build("TinyLM")
    _backward(model)
    grads = {name: p.grad for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=False)
    for name, param in model.named_parameters():
        assert param.grad is not None, "set_to_none=False keeps the gradient tensors"
        assert param.grad is grads[name], "zero the existing gradient in place (grad.zero_())"
        assert not param.grad.any()


def test_requires_grad_toggles_every_parameter():
    model = build("Block", 3, 4)
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(b.requires_grad for b in model.buffers()), "buffers are not touched"
    model.up.requires_grad_()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["up.weight", "up.bias"]


def test_apply_visits_children_first_and_returns_self():
    ours, theirs = build_pair("TinyLM")
    orders = []
    for model in (ours, theirs):
        name_of = {id(m): name for name, m in model.named_modules()}
        visited = []
        assert model.apply(lambda m, v=visited, n=name_of: v.append(n[id(m)])) is model
        orders.append(visited)
    assert orders[0] == orders[1], f"apply order {orders[0]} differs from torch's {orders[1]}" + (
        " (torch calls fn on the children first, then on the module itself)"
        if orders[0][:1] == [""]
        else ""
    )


def test_apply_can_initialise_weights():
    model = build("Block", 3, 4)

    def init(m):
        if type(m).__name__ == "Affine":
            with torch.no_grad():
                m.weight.fill_(0.5)

    model.apply(init)
    assert torch.equal(model.up.weight, torch.full((4, 3), 0.5))
    assert torch.equal(model.down.weight, torch.full((3, 4), 0.5))


@pytest.mark.parametrize("convert", ["double", "to", "to_kwarg", "to_tensor"])
def test_conversion_to_float64_keeps_parameters_and_integer_buffers(convert):
    model = build("TinyLM")
    model.block1.requires_grad_(False)
    _backward(model)
    params = dict(model.named_parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = {
        "double": lambda: model.double(),
        "to": lambda: model.to(torch.float64),
        "to_kwarg": lambda: model.to(dtype=torch.float64),
        "to_tensor": lambda: model.to(torch.zeros(1, dtype=torch.float64)),
    }[convert]()
    assert result is model
    for name, param in model.named_parameters():
        assert param is params[name], (
            f"'{name}' is a new object after conversion: change param.data instead, so an "
            "optimizer holding the Parameter sees the converted tensor"
        )
        assert isinstance(param, impl.nn.Parameter) and param.dtype == torch.float64
        assert param.requires_grad == (not name.startswith("block1"))
        if param.grad is not None:
            assert param.grad.dtype == torch.float64, f"the gradient of '{name}' was not converted"
    assert model.head.weight is model.embed.weight
    buffers = dict(model.named_buffers())
    assert buffers["block0.stats.running_mean"].dtype == torch.float64
    assert buffers["block0.stats.scratch"].dtype == torch.float64
    assert buffers["block0.stats.steps"].dtype == torch.long, "integer buffers keep their dtype"
    before = model.embed.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(model.embed.weight, before), "the optimizer no longer sees the model"
    model.float()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert buffers["block0.stats.steps"].dtype == torch.long


def test_conversion_matches_torch_twin_and_refuses_integer_dtypes():
    ours, theirs = build_pair("Block", 3, 4)
    ours.double()
    theirs.double()
    x = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
    with raises(TypeError):
        ours.to(torch.long)
    assert ours.to("cpu") is ours and ours.up.weight.dtype == torch.float64


def test_num_parameters_counts_tied_once_and_trainable_only():
    ours, theirs = build_pair("TinyLM")
    expected = sum(p.numel() for p in theirs.parameters())
    assert ours.num_parameters() == expected == 5 * 3 + 2 * (3 + 4 * 3 + 4 + 3 * 4)
    ours.embed.requires_grad_(False)
    assert ours.num_parameters(trainable_only=True) == expected - 15
    assert ours.num_parameters() == expected


def test_call_runs_forward_with_its_arguments():
    classes = mine()

    class Scaled(classes.Module):
        def __init__(self):
            super().__init__()
            self.weight = classes.Parameter(torch.tensor(2.0))

        def forward(self, x, *, shift=0.0):
            return x * self.weight + shift

    model = Scaled()
    out = model(torch.ones(2), shift=1.0)
    assert torch.equal(out, torch.full((2,), 3.0))
    out.sum().backward()
    assert model.weight.grad == 2.0


# -- Parameter ------------------------------------------------------------------------------------


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    data = torch.randn(2, 3)
    param = impl.nn.Parameter(data)
    assert isinstance(param, torch.Tensor) and isinstance(param, impl.nn.Parameter)
    assert param.requires_grad and param.is_leaf
    assert param.data_ptr() == data.data_ptr(), "Parameter(data) shares data's storage (as torch)"
    frozen = impl.nn.Parameter(torch.ones(2), requires_grad=False)
    assert not frozen.requires_grad
    source = torch.ones(2, requires_grad=True)
    from_graph = impl.nn.Parameter(source * 2)
    assert from_graph.is_leaf and from_graph.grad_fn is None
    model = holder("weight", param)
    model.frozen = frozen
    assert [id(p) for p in model.parameters()] == [id(param), id(frozen)]
    assert model.num_parameters(trainable_only=True) == 6


def test_operations_on_a_parameter_return_plain_tensors():
    param = impl.nn.Parameter(torch.randn(3))
    model = holder("weight", param)
    results = [param * 2, param + param, param.sum(), param[0], torch.tanh(param), param.view(3)]
    for result in results:
        assert type(result) is torch.Tensor, (
            f"{type(result).__name__} returned: results of operations on a Parameter are plain "
            "tensors, so only the leaf itself is ever registered"
        )
    model.derived = param * 2
    assert len(list(model.parameters())) == 1
    (param * 2).sum().backward()
    assert torch.equal(param.grad, torch.full((3,), 2.0))


def test_parameter_repr_matches_torch():
    data = torch.tensor([1.0, -2.5])
    ours, theirs = impl.nn.Parameter(data.clone()), torch.nn.Parameter(data.clone())
    assert repr(holder("p", ours).p) == repr(theirs)


def test_deepcopy_keeps_tying_and_copies_values():
    model = build("TinyLM")
    model.block1.up.weight.requires_grad_(False)
    clone = copy.deepcopy(model)
    assert clone.head.weight is clone.embed.weight, "deepcopy must keep tied parameters tied"
    assert clone.embed.weight is not model.embed.weight
    assert isinstance(clone.embed.weight, impl.nn.Parameter)
    assert not clone.block1.up.weight.requires_grad
    assert_same_names(list(clone.state_dict()), list(model.state_dict()), "state_dict keys")
    for key, value in model.state_dict().items():
        assert torch.equal(clone.state_dict()[key], value)
    with torch.no_grad():
        clone.embed.weight.zero_()
        clone.block0.stats.running_mean.zero_()
    assert model.embed.weight.abs().sum() > 0 and model.block0.stats.running_mean.abs().sum() > 0


# -- repr -----------------------------------------------------------------------------------------


def test_repr_nested_like_torch():
    ours, theirs = build_pair("TinyLM")
    ours.add_module("nothing", None)
    theirs.add_module("nothing", None)
    assert repr(ours) == repr(theirs)


def test_repr_with_multiline_extra_repr_like_torch():
    def classes(Module, Parameter):  # noqa: N803
        class Lines(Module):
            def __init__(self, child):
                super().__init__()
                if child:
                    self.child = Lines(False)

            def extra_repr(self):
                return "first\nsecond"

        return Lines

    ours = classes(impl.nn.Module, impl.nn.Parameter)(True)
    theirs = classes(torch.nn.Module, torch.nn.Parameter)(True)
    assert repr(ours) == repr(theirs)


@pytest.mark.reference_only
def test_repr_of_layers_matches_torch():
    ours = impl.nn.Sequential(
        impl.nn.Linear(4, 3), impl.nn.ReLU(), impl.nn.Sequential(impl.nn.Linear(3, 2, bias=False))
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 3),
        torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False)),
    )
    assert repr(ours) == repr(theirs)


# -- properties over random trees -----------------------------------------------------------------

items = st.one_of(
    st.tuples(st.just("param"), shapes(0, 2, 3), st.booleans()),  # shape, requires_grad
    st.tuples(st.just("buffer"), shapes(0, 2, 3), st.booleans()),  # shape, persistent
)
specs = st.recursive(
    st.lists(items, max_size=3),
    lambda inner: st.lists(st.one_of(items, st.tuples(st.just("child"), inner)), max_size=4),
    max_leaves=8,
)


def leaves(spec, kind):
    for item in spec:
        if item[0] == "child":
            yield from leaves(item[1], kind)
        elif item[0] == kind:
            yield item


@given(spec=specs)
def test_random_trees_walk_like_torch(spec):
    ours, theirs = build_pair("Node", spec)
    params = list(leaves(spec, "param"))
    assert len(list(ours.named_parameters())) == len(params)
    numels = [torch.Size(shape).numel() for _, shape, _ in params]
    assert ours.num_parameters() == sum(numels)
    assert ours.num_parameters(trainable_only=True) == sum(
        n for n, (_, _, trainable) in zip(numels, params, strict=True) if trainable
    )
    for walk in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert_same_names(names(getattr(ours, walk)()), names(getattr(theirs, walk)()), walk)
    assert_same_names(list(ours.state_dict()), list(theirs.state_dict()), "state_dict keys")
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value)


@given(spec=specs)
def test_random_trees_state_dict_round_trip(spec):
    source, target = build("Node", spec, seed=1), build("Node", spec, seed=2)
    scratch = {name: b.clone() for name, b in target.named_buffers()}
    result = target.load_state_dict(source.state_dict())
    assert list(result.missing_keys) == list(result.unexpected_keys) == []
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), f"'{key}' not restored exactly"
    persistent = set(target.state_dict())
    for name, buffer in target.named_buffers():
        if name not in persistent:
            assert torch.equal(buffer, scratch[name]), "non-persistent buffers are not loaded"
    _, twin = build_pair("Node", spec, seed=3)
    twin.load_state_dict(target.state_dict())
    back = build("Node", spec, seed=4)
    back.load_state_dict(twin.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)


# -- the hints themselves -------------------------------------------------------------------------


@pytest.mark.reference_only
def test_hints_recognise_classic_mistakes():
    expected = ["a.weight", "a.bias", "b.weight"]
    cases = {
        "more than once": ["a.weight", "a.bias", "b.weight", "b.weight"],
        "different order": ["b.weight", "a.weight", "a.bias"],
        "dotted path": ["weight", "bias"],
        "did the walk recurse": ["x"],
        "nothing was found": [],
    }
    for hint, got in cases.items():
        assert hint in names_hint(got, expected, "names"), (hint, got)
    assert "non-persistent" in names_hint(expected + ["a.scratch"], expected, "state_dict keys")
    assert names_hint(expected, expected, "names") == ""


@pytest.mark.reference_only
def test_hint_triggers_on_a_deliberately_wrong_module():
    from minimod.nn.module import Module

    class NoDedup(Module):
        def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
            return super().named_parameters(prefix, recurse, remove_duplicate=False)

    classes = make_classes(NoDedup, impl.nn.Parameter)
    torch.manual_seed(0)
    wrong = classes.TinyLM()
    _, theirs = build_pair("TinyLM")
    with pytest.raises(AssertionError, match="more than once"):
        assert_same_names(
            names(wrong.named_parameters()), names(theirs.named_parameters()), "named_parameters"
        )

    class SavesEverything(Module):
        def state_dict(self, destination=None, prefix="", keep_vars=False):
            state = super().state_dict(destination, prefix, keep_vars)
            for name, buffer in self._buffers.items():
                state[prefix + name] = buffer
            return state

    classes = make_classes(SavesEverything, impl.nn.Parameter)
    wrong = classes.Stats(3)
    _, theirs = build_pair("Stats", 3)
    with pytest.raises(AssertionError, match="non-persistent"):
        assert_same_names(list(wrong.state_dict()), list(theirs.state_dict()), "state_dict keys")


# -- drop-in: torch code calls layers with keywords --------------------------------------------

# (layer, constructor arguments, the inputs forward takes, in order)
_X, _TARGET = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
DROP_IN_LAYERS = [
    ("Linear", (3, 2), (_X,)),
    ("ReLU", (), (_X,)),
    ("GELU", (), (_X,)),
    ("SiLU", (), (_X,)),
    ("Tanh", (), (_X,)),
    ("Sigmoid", (), (_X,)),
    ("Softmax", (-1,), (_X,)),
    ("LogSoftmax", (0,), (_X,)),
    ("LayerNorm", (3,), (_X,)),
    ("RMSNorm", (3,), (_X,)),  # torch's RMSNorm.forward names its argument x
    ("Dropout", (0.5,), (_X,)),
    ("BatchNorm1d", (3,), (_X,)),
    ("BatchNorm2d", (4,), (torch.randn(2, 4, 3, 3),)),
    ("MaxPool1d", (2,), (torch.randn(2, 3, 4),)),
    ("MaxPool2d", (2,), (torch.randn(2, 3, 4, 4),)),
    ("AvgPool1d", (2,), (torch.randn(2, 3, 4),)),
    ("AvgPool2d", (2,), (torch.randn(2, 3, 4, 4),)),
    ("AdaptiveAvgPool1d", (2,), (torch.randn(2, 3, 4),)),
    ("AdaptiveAvgPool2d", (2,), (torch.randn(2, 3, 4, 4),)),
    ("CrossEntropyLoss", (), (_X, _TARGET)),
    ("MSELoss", (), (_X, torch.rand(4, 3))),
    ("BCEWithLogitsLoss", (), (_X, torch.rand(4, 3))),
    ("Conv1d", (3, 2, 3), (torch.randn(2, 3, 6),)),
    ("Conv2d", (3, 2, 3), (torch.randn(2, 3, 5, 5),)),
    ("Identity", (), (_X,)),
    ("Flatten", (), (torch.randn(2, 3, 4),)),
]


@pytest.mark.reference_only
@pytest.mark.parametrize("name, args, inputs", DROP_IN_LAYERS, ids=[c[0] for c in DROP_IN_LAYERS])
def test_forward_takes_torchs_argument_names(name, args, inputs):
    """forward's arguments have torch's names (``input`` for nearly every layer), so torch code
    calling ``layer(input=x)`` works, and gives torch's result."""
    torch.manual_seed(0)
    mine = getattr(impl.nn, name)(*args).eval()
    torch.manual_seed(0)
    twin = getattr(torch.nn, name)(*args).eval()
    twin.load_state_dict(mine.state_dict())
    names = list(inspect.signature(mine.forward).parameters)
    expected = list(inspect.signature(twin.forward).parameters)
    assert names == expected, f"{name}.forward takes {names}, torch's takes {expected}"
    keywords = dict(zip(names, inputs, strict=True))
    torch.testing.assert_close(mine(**keywords), twin(**keywords))
