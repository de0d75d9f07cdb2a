"""The implementation under test, chosen with ``pytest --impl minimod|solutions|exercises``.

Tests reach every definition through these namespaces -- ``impl.nn.Linear``, ``impl.F.gelu``,
``impl.optim.AdamW`` -- so the same property tests check minimod, the generated solutions, or
the learner's own exercise code. The reference twin is always ``torch.nn`` / ``torch.optim``.
"""

import minimod.nn
import minimod.nn.functional
import minimod.nn.init
import minimod.nn.utils
import minimod.optim
import minimod.optim.lr_scheduler
from minimod.workbook.implementations import Namespace

nn = Namespace(minimod.nn)
F = Namespace(minimod.nn.functional)
init = Namespace(minimod.nn.init)
utils = Namespace(minimod.nn.utils)
optim = Namespace(minimod.optim)
lr_scheduler = Namespace(minimod.optim.lr_scheduler)

NAMESPACES = (nn, F, init, utils, optim, lr_scheduler)


def select(implementation: str) -> None:
    for namespace in NAMESPACES:
        namespace.implementation = implementation


def name() -> str:
    return nn.implementation
