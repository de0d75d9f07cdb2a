TEXT = """Lesson 22: LoRA -- fine-tuning through a low-rank update

The idea
Fine-tuning every weight of a large model needs a full copy of it per task, and an optimizer
state twice that size. LoRA (Hu et al., 2021) freezes the pretrained weight W and learns only a
low-rank change to it: ΔW = (α/r)·B·A, with r much smaller than the layer's sides. The update of
a fine-tune turns out to have low "intrinsic rank", so a small r (4 to 16) is usually enough.

The math and the shapes
    base Linear:  y = x Wᵀ + b                W (out, in), b (out,)      frozen
    adapters:     A (r, in), B (out, r)                                 trained
    LoRALinear:   y = x Wᵀ + b + (α/r) · dropout(x) Aᵀ Bᵀ
                  x (*, in) -> x Aᵀ (*, r) -> (x Aᵀ) Bᵀ (*, out)
Never form B·A in forward: going through the r-wide bottleneck costs r·(in + out) per row
instead of in·out. scaling = α/r: when you change r, the update keeps roughly the same size, so
α need not be re-tuned (α = 2r is a common choice; minimod's defaults are r = 8, α = 16).

Why B starts at zero
A ~ U(-1/√in, 1/√in) (kaiming uniform with a = √5, as peft and nn.Linear), B = 0. Then ΔW = 0:
the wrapped model starts EXACTLY equal to the pretrained one, and training starts from the
function you paid for. Both zero would be a dead end: the gradient of B is (α/r)·gᵀ(x Aᵀ) and
the gradient of A is (α/r)·(g B)ᵀ x, so with A = B = 0 neither ever moves. With A random and
B = 0, B gets a gradient on the first step, and A from the second on.

Parameter counts
GPT-2 small's c_attn is a 768 -> 2304 Linear: 1,769,472 weights. With r = 8 its adapters hold
8 · (768 + 2304) = 24,576 numbers, 1.4% of it. The saved fine-tune (lora_state_dict) is only
the adapters, plus whatever new head you trained.

Merging
After training, fold the update into the weight: W' = W + (α/r)·B·A (out, in), same bias. The
result is a plain Linear with the original key names (c_attn.weight): no extra cost at inference,
and it loads into any model, torch.nn.Linear included. merged() returns it; the given lines
build it as Linear(in, out, bias=..., device="meta"): the meta device allocates no memory and
draws no random numbers, and its tensors have no data: copy_ into them leaves them on meta,
still without data. ASSIGN new Parameters to linear.weight (W') and, when there is a bias,
to linear.bias (a clone of the base's: the merged layer must not share it), each with its
base tensor's requires_grad. A weight tied to another parameter (GPT's lm_head is the token
embedding) cannot be merged without changing the other use too.

Wrapping a model
apply_lora finds the Linear layers whose names (from named_modules) match the patterns, e.g.
"*.c_attn" in GPT or "*attn.query" in BERT, and replaces each in its parent:
"transformer.h.0.attn.c_attn" -> parent "transformer.h.0.attn", child "c_attn", then
setattr(parent, child, LoRALinear(...)). Then every parameter of the model is frozen except the
adapters. Unfreeze a new head AFTER calling it.

What you write
LoRALinear: __init__ (freeze the base, scaling, the two Parameters), reset_lora_parameters,
forward, merged; apply_lora's replacement and freezing. merge_lora, lora_state_dict, load_lora
and the checks are minimod's.

Classic pitfalls
- B initialised randomly: the model no longer starts equal to the pretrained one.
- Scaling by α instead of α/r: the update is r times too large.
- Forgetting to freeze the base: it is no longer LoRA, and it costs full fine-tuning's memory.
- Forming B·A (out, in) inside forward, or multiplying in the wrong order (A·B: shape error).
- merged() forgetting the scaling, or the bias.

Run it
Once `minimod exercises check 22` passes, your adapters fine-tune the pretrained tiny BERT of
lesson 21's Run it for sentiment (--use-mine swaps in every lesson that passes and says which;
the first command makes runs/bert, skip it if you have it): rank-4 adapters on its six Linear
layers, and a new head.
    minimod pretrain bert --max-steps 2000 --batch-size 32 --out runs/bert
    minimod finetune bert --from runs/bert --task sentiment --lora-rank 4 --use-mine --out runs/e22
prints "1,858 of 15,298 parameters train", then "test accuracy 0.482, macro_f1 0.4647" (seeds 1
and 2, --seed: 0.488 and 0.461) -- NOT better than chance, 0.539 here (always "negative"). Why:
the body is 1 layer, 32 wide, and its [CLS] features carry no sentiment (its linear probe stays
at chance, lesson 21); 1,858 adapter numbers (learning rate 1e-3, 600 steps) do not move them
far enough, and the head mostly answers one class (--lr 1e-2, or rank 16, did no better). Fully
fine-tuned, the same body reaches 0.998. LoRA pays on large pretrained models whose features
already hold the answer: the README's MiniLM table (LoRA 87.7%, full fine-tuning 87.5%, with
1.5% of the parameters), minutes on a CPU. Measured with OMP_NUM_THREADS=1 (torch's default two
threads per process ran the same steps many times slower on these 2 busy shared cores): the body
in about 50 s, each fine-tuning in about 15 s.
Next: lesson 23 (Evaluating and imbalanced data: class weights, weighted sampling, focal loss)

Check it: minimod exercises check 22
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod import nn
    >>> from exercises.e22_lora import LoRALinear, apply_lora, merge_lora
    >>> _ = torch.manual_seed(0)
    >>> base = nn.Linear(64, 32)
    >>> layer = LoRALinear(base, rank=4, alpha=8.0)
    >>> layer.scaling, tuple(layer.lora_A.shape), tuple(layer.lora_B.shape)
    (2.0, (4, 64), (32, 4))
    >>> x = torch.randn(3, 64)
    >>> torch.equal(layer(x), base(x))  # B = 0: it starts as the base layer
    True
    >>> sum(p.numel() for p in layer.parameters() if p.requires_grad), base.weight.numel()
    (384, 2048)
    >>> model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 2))
    >>> apply_lora(model, targets=["0"], rank=2)
    ['0']
    >>> [name for name, p in model.named_parameters() if p.requires_grad]
    ['0.lora_A', '0.lora_B']
    >>> merge_lora(model), list(model.state_dict())
    (['0'], ['0.weight', '0.bias', '2.weight', '2.bias'])
"""
