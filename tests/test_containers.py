"""Sequential, ModuleList and ModuleDict against torch.nn's containers.

Each test builds the same container twice, from minimod layers and from torch.nn layers, and
compares names, state_dict keys and outputs. Containers are not a lesson: reference only.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from compare import assert_same_state_dict_layout

pytestmark = pytest.mark.reference_only


def keys(module) -> list[str]:
    return list(module.state_dict())


def assert_same_keys(ours, theirs) -> None:
    assert keys(ours) == keys(theirs), (
        f"state_dict keys\n ours:  {keys(ours)}\n torch: {keys(theirs)}"
    )
    assert_same_state_dict_layout(ours, theirs)


def layers(nn, widths=(4, 3, 2)):
    """Linear, ReLU, Linear, … through ``widths``, from ``nn`` (impl.nn or torch.nn)."""
    out = []
    for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
        out.append(nn.Linear(a, b, bias=i % 2 == 0))
        out.append(nn.ReLU())
    return out[:-1]


# -- Sequential -----------------------------------------------------------------------------------


@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=5), batch=st.integers(1, 3))
def test_sequential_chains_forward_like_torch(widths, batch):
    ours, theirs = (
        impl.nn.Sequential(*layers(impl.nn, widths)),
        torch.nn.Sequential(*layers(torch.nn, widths)),
    )
    assert_same_keys(ours, theirs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(batch, widths[0])
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    theirs.load_state_dict(impl.nn.Sequential(*layers(impl.nn, widths)).state_dict())


def test_sequential_names_positional_and_from_ordered_dict():
    ours = impl.nn.Sequential(*layers(impl.nn))
    assert [name for name, _ in ours.named_children()] == ["0", "1", "2"]
    named = OrderedDict(first=impl.nn.Linear(4, 3), act=impl.nn.Tanh(), last=impl.nn.Linear(3, 1))
    theirs = OrderedDict(
        first=torch.nn.Linear(4, 3), act=torch.nn.Tanh(), last=torch.nn.Linear(3, 1)
    )
    ours, twin = impl.nn.Sequential(named), torch.nn.Sequential(theirs)
    assert_same_keys(ours, twin)
    assert keys(ours) == ["first.weight", "first.bias", "last.weight", "last.bias"]
    assert ours.first is named["first"] and ours[0] is named["first"]


def test_sequential_len_iteration_and_indexing():
    modules = layers(impl.nn, (4, 3, 2, 1))
    seq = impl.nn.Sequential(*modules)
    assert len(seq) == 5
    assert [id(m) for m in seq] == [id(m) for m in modules]
    for i in range(-5, 5):
        assert seq[i] is modules[i]
    for bad in (5, -6, 100):
        with pytest.raises(IndexError):
            seq[bad]


def test_sequential_slicing_keeps_original_names():
    ours = impl.nn.Sequential(*layers(impl.nn, (4, 3, 2, 1)))
    theirs = torch.nn.Sequential(*layers(torch.nn, (4, 3, 2, 1)))
    for index in (slice(1, None), slice(2, 4), slice(None, None, 2), slice(-2, None)):
        part = ours[index]
        assert isinstance(part, impl.nn.Sequential)
        assert_same_keys(part, theirs[index])
        assert [name for name, _ in part.named_children()] == [
            name for name, _ in theirs[index].named_children()
        ]
    tail = ours[2:]
    assert tail[0] is ours[2], "a slice holds the same modules, not copies"
    x = torch.randn(2, 3)
    torch.testing.assert_close(ours[2:](x), ours[4](ours[3](ours[2](x))))


def test_sequential_append():
    ours = impl.nn.Sequential(impl.nn.Linear(4, 3))
    assert ours.append(impl.nn.ReLU()) is ours
    ours.append(impl.nn.Linear(3, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3))
    theirs.append(torch.nn.ReLU())
    theirs.append(torch.nn.Linear(3, 2))
    assert_same_keys(ours, theirs)
    assert len(ours) == 3 and ours(torch.randn(1, 4)).shape == (1, 2)


def test_sequential_parameters_and_train_mode_reach_children():
    ours = impl.nn.Sequential(impl.nn.Linear(4, 3), impl.nn.Dropout(0.5), impl.nn.Linear(3, 2))
    assert ours.num_parameters() == 4 * 3 + 3 + 3 * 2 + 2
    ours.eval()
    assert not ours[1].training
    x = torch.randn(5, 4)
    torch.testing.assert_close(ours(x), ours[2](ours[0](x)))


def test_nested_sequential_state_dict_like_torch():
    ours = impl.nn.Sequential(
        impl.nn.Sequential(impl.nn.Linear(2, 2), impl.nn.ReLU()), impl.nn.LayerNorm(2)
    )
    theirs = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), torch.nn.LayerNorm(2)
    )
    assert_same_keys(ours, theirs)
    assert repr(ours) == repr(theirs)


# -- ModuleList -----------------------------------------------------------------------------------


def test_module_list_registers_and_indexes():
    linears = [impl.nn.Linear(3, 3) for _ in range(4)]
    ours = impl.nn.ModuleList(linears)
    theirs = torch.nn.ModuleList([torch.nn.Linear(3, 3) for _ in range(4)])
    assert_same_keys(ours, theirs)
    assert len(ours) == 4
    assert [id(m) for m in ours] == [id(m) for m in linears]
    assert [id(p) for p in ours.parameters()] == [
        id(p) for m in linears for p in (m.weight, m.bias)
    ], "parameters() must see the modules of a ModuleList"
    for i in range(-4, 4):
        assert ours[i] is linears[i]
    for bad in (4, -5):
        with pytest.raises(IndexError):
            ours[bad]
    assert impl.nn.ModuleList().state_dict() == {} and len(impl.nn.ModuleList()) == 0


def test_module_list_append_extend_iadd():
    ours, theirs = impl.nn.ModuleList(), torch.nn.ModuleList()
    assert ours.append(impl.nn.Linear(2, 3)) is ours
    theirs.append(torch.nn.Linear(2, 3))
    assert ours.extend([impl.nn.ReLU(), impl.nn.Linear(3, 1)]) is ours
    theirs.extend([torch.nn.ReLU(), torch.nn.Linear(3, 1)])
    ours += [impl.nn.LayerNorm(1)]
    theirs += [torch.nn.LayerNorm(1)]
    assert isinstance(ours, impl.nn.ModuleList)
    assert_same_keys(ours, theirs)
    assert len(ours) == 4


def test_module_list_slicing_and_setitem():
    ours = impl.nn.ModuleList(layers(impl.nn, (4, 3, 2, 1)))
    theirs = torch.nn.ModuleList(layers(torch.nn, (4, 3, 2, 1)))
    for index in (slice(1, None), slice(2, 4), slice(None, None, 2)):
        part = ours[index]
        assert isinstance(part, impl.nn.ModuleList)
        assert_same_keys(part, theirs[index])
    replacement = impl.nn.Linear(4, 3, bias=False)
    ours[0] = replacement
    theirs[0] = torch.nn.Linear(4, 3, bias=False)
    ours[-1] = impl.nn.Linear(2, 5)
    theirs[-1] = torch.nn.Linear(2, 5)
    assert ours[0] is replacement
    assert_same_keys(ours, theirs)
    with pytest.raises(IndexError):
        ours[7] = impl.nn.ReLU()


def test_module_list_inside_a_module_names_like_torch():
    class Stack(impl.nn.Module):
        def __init__(self, nn):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
            self.norm = nn.LayerNorm(2)

    class TorchStack(torch.nn.Module):
        def __init__(self, nn):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
            self.norm = nn.LayerNorm(2)

    ours, theirs = Stack(impl.nn), TorchStack(torch.nn)
    assert_same_keys(ours, theirs)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    theirs.load_state_dict(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())


# -- ModuleDict -----------------------------------------------------------------------------------


def test_module_dict_mapping_behaviour():
    encoder, head = impl.nn.Linear(4, 3), impl.nn.Linear(3, 2)
    ours = impl.nn.ModuleDict({"encoder": encoder, "head": head})
    theirs = torch.nn.ModuleDict({"encoder": torch.nn.Linear(4, 3), "head": torch.nn.Linear(3, 2)})
    assert_same_keys(ours, theirs)
    assert ours["encoder"] is encoder and "head" in ours and "tail" not in ours
    assert list(ours.keys()) == ["encoder", "head"] == list(ours)
    assert [id(m) for m in ours.values()] == [id(encoder), id(head)]
    assert [(k, id(m)) for k, m in ours.items()] == [("encoder", id(encoder)), ("head", id(head))]
    assert len(ours) == 2
    with pytest.raises(KeyError):
        ours["tail"]
    ours["act"] = impl.nn.ReLU()
    theirs["act"] = torch.nn.ReLU()
    ours["head"] = impl.nn.Linear(3, 5)  # replacing keeps the key (torch keeps its position)
    theirs["head"] = torch.nn.Linear(3, 5)
    assert list(ours) == list(theirs)
    assert_same_keys(ours, theirs)
    del ours["encoder"]
    del theirs["encoder"]
    assert_same_keys(ours, theirs)
    assert list(ours.keys()) == list(theirs.keys()) and "encoder" not in ours
    assert len(list(ours.parameters())) == 2


def test_module_dict_update_in_order():
    ours, theirs = impl.nn.ModuleDict(), torch.nn.ModuleDict()
    ours.update(OrderedDict(b=impl.nn.Linear(1, 2), a=impl.nn.Linear(2, 1)))
    theirs.update(OrderedDict(b=torch.nn.Linear(1, 2), a=torch.nn.Linear(2, 1)))
    ours.update({"c": impl.nn.LayerNorm(3)})
    theirs.update({"c": torch.nn.LayerNorm(3)})
    assert list(ours) == ["b", "a", "c"] == list(theirs)
    assert_same_keys(ours, theirs)
    twin_values = theirs.state_dict()
    ours.load_state_dict(twin_values)
    for key, value in twin_values.items():
        assert torch.equal(ours.state_dict()[key], value)
