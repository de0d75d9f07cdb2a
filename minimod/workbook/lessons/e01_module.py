TEXT = """Lesson 1: Module and Parameter -- the bookkeeping under every model

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
