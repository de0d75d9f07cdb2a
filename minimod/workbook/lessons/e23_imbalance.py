TEXT = """Lesson 23: Evaluating and imbalanced data

The idea
When one class is rare -- 1 fraud in 100 payments, 1 keyword in 50 audio clips -- a model
can reach 99% accuracy by never predicting it. Two things help: measure what matters (macro-F1
and the confusion matrix, lesson 19: minimod's format_confusion_matrix prints it and
plot_confusion_matrix draws it to a PNG with matplotlib), and make the rare class count in
training. Three ways to make it count, each written here:

Class weights: reweigh the loss
    w_c = n / (k · n_c)      n labels, n_c of them of class c, k classes present
scikit-learn's "balanced": every class carries the same total weight n / k, and the average
weight over the examples is 1, so the loss keeps its usual scale. Pass them as
cross_entropy(logits, y, weight=w): its mean divides by the sum of the targets' weights. A
class absent from the labels gets 0 (it has no examples to weigh; n / 0 would be inf).
    labels (N,) int64 -> weights (num_classes,) float; torch.bincount(labels, minlength=C)

A weighted sampler: resample the data
Draw example i with probability proportional to 1 / count[labels[i]]: each class's examples
together have weight 1, so every class is drawn equally often on average.
torch.multinomial(weights, num_samples, replacement, generator=g) draws the indices (it
normalises the weights itself). With replacement the few rare examples repeat many times
per pass: watch for overfitting to them. Drawing from its own generator, and saving that
generator's state at the start of each pass with the position in it, lets a checkpoint
resume the exact same stream (state_dict / load_state_dict are given).

The focal loss: spend the gradient on the hard examples (Lin et al. 2017)
    FL = −w_t · (1 − p_t)^γ · log p_t        p_t = softmax(x)[target], w_t = weight[target]
γ = 0 is cross-entropy. With γ = 2 an easy example (p_t = 0.95) keeps (0.05)² = 1/400 of its
loss, a hard one (p_t = 0.27) more than half: the thousands of easy majority examples stop
drowning the rare, hard ones. Shapes and reductions are cross_entropy's: input (N, C),
(N, C, d1, ...) or (C,), class-index targets, ignore_index, mean = Σ loss / Σ w_t over the
counted targets (all ignored: nan, as torch).
Computing it stably:
- log p_t from log_softmax, never log(softmax(x)): at logits ±1e4, p underflows to 0, log 0.
- 1 − p_t = −expm1(log p_t) is exact near p_t = 1, where 1 − exp(·) cancels.
- For γ < 1, d/dp (1 − p)^γ is infinite at p_t = 1 and log p_t is 0: autograd makes 0 · ∞ =
  nan. Clamp 1 − p_t to at least torch.finfo(dtype).tiny: the value stays 0, the gradient too.

What you write
class_weights' "auto" weights; WeightedSampler.draw (one pass of indices); focal_loss after
the given checks. FocalLoss (the module), the sampler's iteration and state are minimod's.

Classic pitfalls
- Weights of 1 / n_c without the n / k: the loss shrinks by orders of magnitude, and so
  does the effective learning rate.
- k = num_classes although some classes never occur (scikit-learn counts present classes).
- Sampling proportional to the count instead of 1 / count: the rare class gets rarer.
- Class weights AND a balanced sampler together: the rare class is boosted twice.
- Rebalancing the validation or test set: evaluate on the real distribution, with macro-F1.
- Focal loss: dropping the (1 − p_t)^γ factor, or writing p_t^γ (it must vanish as p_t -> 1).

Run it
Once `minimod exercises check 23` passes, your class weights, weighted sampler and focal loss
take on 1:9 imbalanced sentiment (100 positive reviews of 1,000; the test set too) with the
pretrained tiny BERT of lesson 21's Run it (--use-mine swaps in every lesson that passes and
says which; the first command makes runs/bert, skip it if you have it):
    minimod pretrain bert --max-steps 2000 --batch-size 32 --out runs/bert
    minimod finetune bert --from runs/bert --task sentiment --imbalance 9 --sampler weighted
        --use-mine --out runs/e23
prints "test accuracy 0.963, macro_f1 0.8939": balanced batches found the rare class. Against
it, with --imbalance 9 and nothing else: accuracy 0.914 but macro_F1 0.674 (28 of the 100
positive reviews found: accuracy flatters a model that mostly says "negative"); --loss focal:
0.920 and 0.680; --class-weights auto (weights 0.56 and 5): 0.828 and 0.596, worse here, as
in the README's imbalance study.
Measured with OMP_NUM_THREADS=1 (torch's default two threads per process ran the same steps
many times slower on these 2 busy shared cores): the body in about 50 s, each fine-tuning in
about 15 s.
Next: lesson 24 (Mixed precision: autocast and loss scaling)

Check it: minimod exercises check 23
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e23_imbalance import WeightedSampler, class_weights, focal_loss
    >>> labels = torch.tensor([0] * 9 + [1])  # 9 : 1, and class 2 never occurs
    >>> [round(w, 4) for w in class_weights(labels, 3).tolist()]
    [0.5556, 5.0, 0.0]
    >>> generator = torch.Generator().manual_seed(0)
    >>> drawn = torch.tensor(list(WeightedSampler(labels, 1000, generator)))
    >>> 400 < int((labels[drawn] == 1).sum()) < 600  # about half, not a tenth
    True
    >>> logits = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # p_t = 0.95 (easy) and 0.27 (hard)
    >>> target = torch.tensor([0, 0])
    >>> [round(v, 4) for v in focal_loss(logits, target, gamma=0.0, reduction="none").tolist()]
    [0.0486, 1.3133]
    >>> [round(v, 4) for v in focal_loss(logits, target, reduction="none").tolist()]
    [0.0001, 0.7019]
    >>> huge = torch.tensor([[1e4, -1e4]])
    >>> focal_loss(huge, torch.tensor([1])).item(), focal_loss(huge, torch.tensor([0])).item()
    (20000.0, 0.0)
"""
