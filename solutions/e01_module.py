"""Lesson 1: Module and Parameter -- the bookkeeping under every model

The idea
A network is a tree of modules. A Linear layer is a Module that owns two Parameters (weight and
bias); a transformer block owns attention and MLP modules; the whole model is the root. Training
must find every trainable tensor in the tree, saving must give each one a stable name, and
train()/eval() must reach every node. torch.nn.Module does all of this by watching attribute
assignment, and so will yours:

    self.weight = Parameter(torch.randn(3, 4))   # goes to self._parameters["weight"]
    self.block = Linear(4, 4)                    # goes to self._modules["block"]
    self.register_buffer("running_mean", t)      # self._buffers: saved, but not trained
    self.scale = 2.0                             # an ordinary attribute

A Parameter is just a tensor subclass that says "train me"; it is given to you.

What you write
- Module.__setattr__: a Parameter goes to _parameters, a Module to _modules (each removed from
  the other registries first); a tensor assigned to a registered buffer name stays a buffer;
  None empties a registered slot but keeps its name. Any other value for a registered name is
  a TypeError that changes nothing: anything but a Parameter (a plain tensor, a number) for a
  parameter name, anything but a Module for a child module's name, anything but a tensor for
  a buffer's name (as torch). Any other name is an ordinary attribute: object.__setattr__.
- Module._named_members: the walk behind named_parameters() and named_buffers(). Depth first,
  in registration order, names joined with dots ("block.0.weight"). With remove_duplicate a
  tensor shared by two modules (tied weights) is listed once, under its first name.
- Module.state_dict: this module's parameters, then its persistent buffers, then each child's
  entries under "child_name.". Tied tensors appear under every name, so a checkpoint is whole.
  Values are detached (keep_vars=True returns the tensors themselves).
- Module.load_state_dict: compare keys and shapes first. strict=True raises one RuntimeError
  listing every missing, unexpected and mismatched key and copies nothing; strict=False copies
  what matches, but a wrongly shaped key still raises ("size mismatch", as torch) unless
  skip_mismatched=True, which skips it. Copy in place under torch.no_grad(), so the Parameter
  objects stay the same (an optimizer holds them). Return
  LoadResult(missing_keys, unexpected_keys, mismatched_keys).
- Module.train(mode=True): set training on this module and every descendant; eval() calls it.

Names and shapes
Sequential(Linear(4, 8), ReLU(), Linear(8, 2)) has "0.weight" (8, 4), "0.bias" (8,),
"2.weight" (2, 8) and "2.bias" (2,): the same keys as torch.nn, which is what lets weights move
both ways: torch_model.load_state_dict(minimod_model.state_dict()) and back.

Classic pitfalls
- self.x = ... inside __setattr__ calls __setattr__ again, forever: use object.__setattr__.
- Registering only in __init__: a parameter assigned or replaced later must be found too.
- Sorting names, or visiting children before a module's own tensors: the order must be
  registration order, depth first, or your state_dict will not line up with torch's.
- A tied parameter listed twice by parameters(): the optimizer would update it twice.
- load_state_dict that assigns new Parameters instead of copying into the old ones.

Run it
Your Module holds a torch.nn layer's weights. (The training commands check lesson 1 but
never swap it in: every layer class got minimod's Module as its base when it was defined.)
    python -c "if 1:
        import torch
        from exercises.e01_module import Module, Parameter
        mine = Module()
        mine.weight, mine.bias = Parameter(torch.zeros(2, 3)), Parameter(torch.zeros(2))
        twin = torch.nn.Linear(3, 2)
        print(mine.load_state_dict(twin.state_dict()), torch.equal(mine.weight, twin.weight))
        print(list(mine.state_dict()), [name for name, _ in mine.named_parameters()])"
prints LoadResult(missing_keys=[], unexpected_keys=[], mismatched_keys=[]) True, then
['weight', 'bias'] ['weight', 'bias'] (a few seconds, most of it importing torch).
Next: lesson 2 (Linear layers and initialisation)

Check it: minimod exercises check 1
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e01_module import Module, Parameter
    >>> class Scale(Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.weight = Parameter(torch.ones(n))
    >>> class Net(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.first, self.second = Scale(3), Scale(2)
    >>> net = Net()
    >>> [(name, tuple(p.shape)) for name, p in net.named_parameters()]
    [('first.weight', (3,)), ('second.weight', (2,))]
    >>> list(net.state_dict()), net.eval().second.training
    (['first.weight', 'second.weight'], False)
"""

# Lesson 1 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from minimod.nn.module import LoadResult, _describe, _indent

# ---- from minimod/nn/module.py ----------------------------------------


# Under torch.compile, torch 2.13 runs each compiled function's first call under a dispatch mode
# that checks custom ops for aliasing; that mode knows plain tensors and torch.nn.Parameter (it
# unwraps one to its .data) but no other Tensor subclass, so minimod's Parameter -- its own
# subclass, as no torch.nn class may be used here -- makes dispatch fail ("Multiple dispatch
# failed for aten.addmm.out"). minimod.train.loop.compile_forward therefore sets
# torch._functorch.config.check_custom_op_aliasing = False, during the compiled calls only.
class Parameter(torch.Tensor):
    """A tensor that a ``Module`` registers as trainable when it is assigned as an attribute.

    ``Parameter(data, requires_grad=True)`` shares storage with ``data``; results of operations on
    a Parameter are plain tensors, so only the leaf itself is ever registered.
    """

    def __new__(cls, data: torch.Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = torch.empty(0)
        return torch.Tensor._make_subclass(cls, data.detach(), requires_grad)

    # Operations on a Parameter return ordinary tensors (as torch.nn.Parameter does).
    __torch_function__ = torch._C._disabled_torch_function_impl

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) not in memo:
            data = self.data.clone(memory_format=torch.preserve_format)
            memo[id(self)] = type(self)(data, self.requires_grad)
        return memo[id(self)]

    def __reduce_ex__(self, protocol):
        # Pickle as a plain tensor plus the flag, so copies and saves stay simple.
        return (Parameter, (self.data, self.requires_grad))

    def __repr__(self) -> str:
        return "Parameter containing:\n" + repr(self.detach().requires_grad_(self.requires_grad))


class Module:
    """Base class of every layer and model. Subclasses call ``super().__init__()`` first."""

    training: bool

    def __init__(self) -> None:
        # object.__setattr__ skips our own __setattr__, which needs these dicts to exist.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- registration ------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:  # before Module.__init__: plain attributes only
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(
                    f"cannot assign {type(value).__name__} '{name}' before Module.__init__() call"
                )
            return object.__setattr__(self, name, value)
        # BEGIN YOUR CODE
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._register(params, name, value)
        elif isinstance(value, Module):
            self._register(modules, name, value)
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter '{name}' "
                    "(wrap it in Parameter, or assign None)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}'")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, torch.Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}'")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)
        # END YOUR CODE

    def _register(self, registry: dict, name: str, value: Any) -> None:
        """Put ``name`` in ``registry`` -- keeping its place if it is already there, as torch
        does -- and remove it from the other registries and from the plain attributes."""
        self.__dict__.pop(name, None)
        for other in (self._parameters, self._buffers, self._modules):
            if other is not registry:
                other.pop(name, None)
        self._non_persistent.discard(name)
        registry[name] = value

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: look in the three registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        registries = (self._parameters, self._buffers, self._modules)
        if any(name in registry for registry in registries):
            for registry in registries:
                registry.pop(name, None)
            self._non_persistent.discard(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter('{name}'): expected Parameter or None, "
                f"got {type(param).__name__}"
            )
        self._register(self._parameters, name, param)

    def register_buffer(self, name: str, tensor: torch.Tensor | None, persistent: bool = True):
        """State that is not trained (e.g. running means); saved in state_dict if persistent."""
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"register_buffer('{name}'): expected Tensor or None, got {type(tensor).__name__}"
            )
        self._register(self._buffers, name, tensor)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): {type(module).__name__} is not a Module")
        self._register(self._modules, name, module)

    register_module = add_module

    # -- walking the tree --------------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first, with dotted names (self is '')."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                child_prefix = f"{prefix}.{name}" if prefix else name
                yield from child.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(
        self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, torch.Tensor]]:
        # BEGIN YOUR CODE
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, tensor in getattr(module, registry).items():
                if tensor is None or (remove_duplicate and id(tensor) in seen):
                    continue
                seen.add(id(tensor))
                yield (f"{module_prefix}.{name}" if module_prefix else name), tensor
        # END YOUR CODE

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a shared (tied) parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, torch.Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the model learns (shared parameters counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- saving and loading ------------------------------------------------------------------
    def state_dict(
        self, destination: OrderedDict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, torch.Tensor]:
        """Parameters and persistent buffers by dotted name; tied tensors appear under each name."""
        if destination is None:
            destination = OrderedDict()
        # BEGIN YOUR CODE
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        # END YOUR CODE
        return destination

    def load_state_dict(
        self,
        state_dict: Mapping[str, torch.Tensor],
        strict: bool = True,
        *,
        skip_mismatched: bool = False,
    ) -> LoadResult:
        """Copy tensors into this module's parameters and buffers, matching by name.

        strict=True: any missing, unexpected or wrongly shaped key raises one error listing all
        of them, and nothing is copied. strict=False: missing and unexpected keys are returned,
        but a wrongly shaped key still raises ("size mismatch", as torch) unless
        skip_mismatched=True (minimod's): then it is skipped and returned too. Returns
        LoadResult(missing_keys, unexpected_keys, mismatched_keys).
        """
        own = self.state_dict(keep_vars=True)
        # BEGIN YOUR CODE
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        mismatched = [
            key for key in own if key in state_dict and state_dict[key].shape != own[key].shape
        ]
        result = LoadResult(missing, unexpected, mismatched)
        if strict and (missing or unexpected or mismatched):
            raise RuntimeError(
                f"Error loading state_dict into {type(self).__name__}:\n"
                + _describe(result, state_dict, own)
            )
        if mismatched and not skip_mismatched:
            raise RuntimeError(
                f"Error loading state_dict into {type(self).__name__} (size mismatch, even "
                "with strict=False; skip_mismatched=True skips such keys):\n"
                + _describe(LoadResult([], [], mismatched), state_dict, own)
            )
        with torch.no_grad():
            for key, target in own.items():
                if key in state_dict and key not in mismatched:
                    target.copy_(state_dict[key])
        return result
        # END YOUR CODE

    # -- modes, gradients, conversion ---------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every descendant (dropout, batch norm care)."""
        # BEGIN YOUR CODE
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self
        # END YOUR CODE

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.detach_().zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every child (recursively), then on self; e.g. custom initialisation."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _apply(self, convert: Callable[[torch.Tensor], torch.Tensor]) -> Module:
        # Parameters keep their identity (optimizers hold references); only their data changes.
        for module in self.modules():
            for param in module._parameters.values():
                if param is None:
                    continue
                param.data = convert(param.data)
                if param.grad is not None:
                    param.grad = convert(param.grad)
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = convert(buffer)
        return self

    def to(self, *args: Any, non_blocking: bool = False, **kwargs: Any) -> Module:
        """Move to ``device`` and/or cast floating-point tensors to ``dtype`` (or to a tensor's)."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"Module.to got unexpected arguments: {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, torch.dtype):
                dtype = arg
            elif isinstance(arg, torch.Tensor):
                device, dtype = arg.device, arg.dtype
            else:
                device = torch.device(arg)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")

        def convert(t: torch.Tensor) -> torch.Tensor:
            target = dtype if t.is_floating_point() else None
            return t.to(device=device, dtype=target, non_blocking=non_blocking)

        return self._apply(convert)

    def float(self) -> Module:
        return self.to(torch.float32)

    def double(self) -> Module:
        return self.to(torch.float64)

    def cpu(self) -> Module:
        return self.to("cpu")

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses in ``repr``; layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()
        ]
        if len(extra_lines) <= 1 and not child_lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(extra_lines + child_lines)
        return f"{type(self).__name__}(\n  {body}\n)"
