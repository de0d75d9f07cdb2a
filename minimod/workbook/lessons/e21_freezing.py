TEXT = """Lesson 21: Freezing and learning-rate groups

The idea
A pretrained body already computes useful features; a new head does not know what to do with
them yet. Fine-tuning chooses how much of the body may change, and how fast:
    linear probing     train the head only (cheap, cannot damage the body)
    freezing by name   train exactly the parts you name, e.g. the top two blocks and the head
    layer-wise decay   everything trains, the layers near the input most slowly
    gradual unfreezing start with the head, let one more layer train every few hundred steps
Lower layers hold general features (edges, word pieces), upper ones task-specific ones; and
a new head's first, noisy gradients can wreck a fully trainable body's pretraining.

Freezing a parameter
    param.requires_grad_(False)    autograd computes no gradient for it (faster, less memory)
    param.grad = None              and forgets the old one
The optimizer skips every parameter whose .grad is None: no step, no weight decay, no moment
update. Forget the second line and a stale gradient keeps moving a "frozen" weight (AdamW
even decays it). Build the optimizer over ALL parameters, frozen ones too: when they are
unfrozen later they are already in its groups, and a checkpoint's groups stay the same.
Patterns: fnmatch globs on named_parameters() names ("body.*", "*.encoder.layer.0.*") or
modules; no pattern means every parameter.

Linear probing and batch norm
Frozen weights are not enough for a CNN: in training mode batch norm normalises with the
batch's statistics and updates its running estimates, so the "frozen" body computes different
features for every batch and slowly forgets its pretraining statistics. linear_probe sets
freeze_stats on the body's batch norm layers: their training property reads False even after
model.train(), so they use and keep their running statistics, exactly as in eval mode.

Parameter groups
An optimizer takes a list of dicts, each with its params and its own lr and weight_decay.
    weight decay only where dim >= 2 (matrices, embeddings, conv kernels), as nanoGPT:
    shrinking a bias or a LayerNorm gain towards 0 is not regularisation, it changes the
    function (a gain of 0 silences a feature).
    layer id: embeddings / stem 0, block i -> i + 1, final norm / pooler L, head L + 1
    (L blocks: transformer.h.i, encoder.layer.i, stages.i, body.i)
    lr(id) = lr * layer_decay ** (L + 1 - id)
With L = 2 and layer_decay 0.5: head lr, final norm and block 1 lr / 2, block 0 lr / 4,
embeddings lr / 8. One group per (layer, decayed or not), each with a "name" and a "layer".

Gradual unfreezing (ULMFiT)
stages = lists of patterns, top first; at step s the first 1 + s // every stages train and
everything else is frozen. apply(step) sets exactly that set -- it also freezes what a later
stage had unfrozen -- so it is a pure function of the step: a run resumed at step N trains
exactly what the uninterrupted run trained, whatever was called before. Its state_dict holds
the stages, every and the last step, plain data for a checkpoint.

What you write
freeze and unfreeze after the given pattern matching (_match gives the chosen names);
param_groups' loop over the parameters; GradualUnfreezer.apply (use freeze and unfreeze).
linear_probe, layer_id, layer_stages, decays (the dim >= 2 rule) and the counting helpers
are minimod's.

Classic pitfalls
- requires_grad=False but the old .grad kept: AdamW still steps and decays the weight.
- Building the optimizer over the trainable parameters only: unfreezing later does nothing.
- Weight decay on biases and norm gains.
- The decay exponent backwards (embeddings at full lr, head slowest) or off by one (the head
  must get exactly lr).
- Freezing a CNN's weights but not its batch norm statistics.
- Gradual unfreezing that only ever unfreezes: a resumed run then depends on its history.

Run it
Once `minimod exercises check 21` passes, your freezing and learning-rate groups fine-tune a
pretrained tiny BERT for sentiment (--use-mine swaps in every lesson that passes and says
which). First the body `minimod demo` pretrains (2000 steps of 32 reviews; lessons 22 and 23
reuse it), then a linear probe and gradual unfreezing with layer-wise lr decay:
    minimod pretrain bert --max-steps 2000 --batch-size 32 --out runs/bert
    minimod finetune bert --from runs/bert --task sentiment --freeze body --use-mine
        --out runs/e21-probe
    minimod finetune bert --from runs/bert --task sentiment --unfreeze-every 100
        --layer-decay 0.8 --use-mine --out runs/e21
print "held-out loss 1.576, perplexity 4.833" for the body; then the probe, "66 of 13,506
parameters train", ends at test accuracy 0.48, no better than chance (0.539, always "negative"):
this body's [CLS] features carry no sentiment a linear head can read; gradual unfreezing (the
head alone first, one more layer from the top every 100 steps, each layer's lr 0.8 times the one
above) reaches 0.646; and the same command with neither option (full fine-tuning, every layer at
full lr from the start) 0.998. (The run's summary counts the trainable parameters at the start:
66, the head.) Measured with OMP_NUM_THREADS=1 (torch's default two threads per process ran the
same steps many times slower on these 2 busy shared cores): the body in about 50 s, each
fine-tuning in about 15 s.
Next: lesson 22 (LoRA: low-rank adapters and merging)

Check it: minimod exercises check 21
Try it (python, in the repository folder):
    >>> from minimod import nn
    >>> from minimod.train.freezing import layer_stages, trainable_names
    >>> from exercises.e21_freezing import GradualUnfreezer, freeze, param_groups, unfreeze
    >>> stages = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    >>> body = nn.ModuleDict(dict(stem=nn.Linear(2, 4), stages=stages))
    >>> model = nn.ModuleDict(dict(body=body, head=nn.Linear(4, 3)))
    >>> len(freeze(model, "body.*")), trainable_names(model)
    (6, ['head.weight', 'head.bias'])
    >>> unfreeze(model, model.body.stages[1])
    ['body.stages.1.weight', 'body.stages.1.bias']
    >>> for group in param_groups(model, lr=1.0, weight_decay=0.1, layer_decay=0.5):
    ...     print(group["name"], group["lr"], group["weight_decay"], len(group["params"]))
    embeddings/decay 0.125 0.1 1
    embeddings/no_decay 0.125 0.0 1
    layer1/decay 0.25 0.1 1
    layer1/no_decay 0.25 0.0 1
    layer2/decay 0.5 0.1 1
    layer2/no_decay 0.5 0.0 1
    head/decay 1.0 0.1 1
    head/no_decay 1.0 0.0 1
    >>> unfreezer = GradualUnfreezer(model, layer_stages(model), every=10)
    >>> unfreezer.apply(0), trainable_names(model)  # the head only: stages.1 frozen again
    ([], ['head.weight', 'head.bias'])
    >>> unfreezer.apply(10)
    ['body.stages.1.weight', 'body.stages.1.bias']
    >>> unfreezer.apply(25), unfreezer.apply(25)
    (['body.stages.0.weight', 'body.stages.0.bias'], [])
"""
