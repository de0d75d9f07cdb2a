"""Lesson 1's pitfalls: Module and Parameter."""

from pitfalls import Mutant, NotAMutant

T = "tests/test_module.py::"

MUTANTS = [
    Mutant(
        "self.x = ... inside __setattr__",
        "        else:\n            object.__setattr__(self, name, value)",
        "        else:\n            setattr(self, name, value)",
        "calls __setattr__ again",
        (T + "test_assignment_registers_parameters_buffers_and_children",),
    ),
    Mutant(
        "Sorting names, or visiting children before a module's own tensors",
        "for name, tensor in getattr(module, registry).items():",
        "for name, tensor in sorted(getattr(module, registry).items()):",
        "registration order",
        (T + "test_named_parameters_dotted_in_registration_order",),
    ),
    Mutant(
        "Sorting names, or visiting children before a module's own tensors",
        "        for name, param in self._parameters.items():",
        "        for name, child in self._modules.items():\n"
        "            if child is not None:\n"
        "                child.state_dict(destination, prefix + name + '.', keep_vars)\n"
        "        for name, param in self._parameters.items():",
        "own parameters, then its buffers, then each child",
        (T + "test_shared_submodule_is_walked_once",),
    ),
    Mutant(
        "A tied parameter listed twice by parameters()",
        "if tensor is None or (remove_duplicate and id(tensor) in seen):",
        "if tensor is None:",
        "optimizer updates it twice",
        (T + "test_tied_parameter_listed_once_but_saved_under_both_names",),
    ),
    Mutant(
        "load_state_dict that assigns new Parameters",
        "target.copy_(state_dict[key])",
        "*path, leaf = key.split('.')\n"
        "                    owner = self\n"
        "                    for part in path:\n"
        "                        owner = getattr(owner, part)\n"
        "                    if isinstance(target, Parameter):\n"
        "                        setattr(owner, leaf, Parameter(state_dict[key].clone()))\n"
        "                    else:\n"
        "                        target.copy_(state_dict[key])",
        "copy into the existing tensor",
        (T + "test_load_keeps_parameter_objects_and_autograd_leaves",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Registering only in __init__",
        "the solution registers in __setattr__, on every assignment; registering once at the "
        "end of __init__ is a different design, not one edit of it (the tests that assign and "
        "replace parameters after __init__, test_reassignment_replaces_in_place_and_keeps_order "
        "and test_random_trees_walk_like_torch, catch it)",
    ),
]
