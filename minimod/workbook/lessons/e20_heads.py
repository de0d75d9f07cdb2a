TEXT = """Lesson 20: Heads and pooling -- a pretrained body, a new head

The idea
Pretraining teaches a body to turn inputs into useful vectors; its head (GPT's lm_head, BERT's
MLM head, the ResNet's class layer) answers the PRETRAINING question. A new task needs a new
head: a small, freshly initialised layer on top of the body. The model is body + head, so its
state_dict keys are body.* and head.*, and load_pretrained fills body.* from a checkpoint while
the head keeps its initialisation (the old head is never loaded: its shape and meaning differ).

Shapes
    text:   input_ids, attention_mask (B, T) -> body -> hidden (B, T, H)
            one label per sequence: pool -> (B, H) -> head -> (B, num_labels)
            one label per token:    head on every position -> (B, T, num_labels)
    images / audio: x -> body.features(x) (N, feature_dim) -> head -> (N, num_classes)
    boxes:  x -> body.features(x) -> Linear -> 4 raw numbers -> decode_boxes -> (N, 4)
attention_mask: 1 = real token, 0 = padding, padding on the right; every row has ≥ 1 token.

Pooling: one vector per sequence
    "cls"   hidden[:, 0]. BERT puts [CLS] first and sees the whole text from every position.
    "mean"  sum_t hidden[b, t] · mask[b, t] / sum_t mask[b, t]: the real tokens only.
    "last"  hidden[b, n_b - 1], n_b = the row's real tokens: the LAST REAL token, not T - 1.
GPT's attention is causal: token t sees tokens 0..t only, so "cls" would see one token and the
last real token is the only one that has read everything; use "last" (or "mean") for GPT and
"cls" (or "mean") for BERT. Causality also means a GPT needs no mask with right padding: no
real token ever sees a pad. BERT must get the mask, since every token attends to every other.
Padding must change nothing: a padded row's logits equal the row's own, pads' gradient is 0.

Image and audio heads
FeatureClassifier replaces body.head by nn.Identity(), so the old head's parameters leave the
model, then applies a new head to body.features(x). ImageClassifier and KeywordClassifier are
the same class.

Boxes and IoU
A box is (x_min, y_min, x_max, y_max) in [0, 1]. decode_boxes turns any 4 numbers into a
valid box: per axis, size first, then placement in the room the size leaves:
    w = σ(raw_w),  x_min = (1 - w) · σ(raw_x),  x_max = x_min + w      (same for y)
IoU of two boxes = area(intersection) / area(union):
    intersection: from max(a.x_min, b.x_min) to min(a.x_max, b.x_max), side clamped at 0
    union = area(a) + area(b) - intersection                (the overlap is counted twice)
A union of 0 (two empty boxes) gives IoU 0: torch.where with a safe denominator, so neither
the value nor the gradient is NaN. box_iou pairs box i of a with box i of b: (N, 4) -> (N,).
box_loss = mean |pred - target| + mean (1 - IoU): the IoU term weighs errors by the box's
size; the L1 term still pulls when the boxes do not overlap (then IoU has no gradient).

What you write
In minimod/models/heads.py: pool (after its checks); SequenceClassifier.forward and
TokenClassifier.forward (the hidden states come from self.hidden(...), the head is self.head);
FeatureClassifier: the head swap in FeatureClassifier.__init__ (body.head becomes Identity,
then self.body and self.head, a ClassificationHead(feature_dim, num_classes, dropout)) and
forward. In minimod/models/boxes.py: decode_boxes, box_iou
and box_loss after their checks. BoxRegressor is given; ClassificationHead, the body checks
and load_pretrained (minimod/models/loading.py) are minimod's.

Classic pitfalls
- Mean pooling that divides by T: the padding counts, and short rows shrink towards 0.
- "last" pooling at position T - 1: for every padded row that is a pad.
- "cls" pooling on a GPT: position 0 has seen only the first token.
- Forgetting BERT's attention_mask: real tokens attend to the pads and the logits drift.
- IoU without clamping the intersection's sides: two disjoint boxes get a positive "area".
- Union = area(a) + area(b): the overlap counted twice.

Run it
Once `minimod exercises check 20` passes, your FeatureClassifier swaps a 1-D CNN's head for
a new one and classifies the Free Spoken Digit Dataset's real recordings (after
`make real`; --use-mine swaps in every lesson that passes and says which; --from a
`pretrain audio --features mfcc` run instead of scratch puts a pretrained body under your
head):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e20
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test
accuracy 0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the
per-class table (about 40 s on 2 cores shared with other jobs).
Next: lesson 21 (Freezing and learning-rate groups: linear probes, layer decay, gradual unfreezing)

Check it: minimod exercises check 20
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e20_heads import box_iou, decode_boxes, pool
    >>> hidden = torch.arange(12.0).reshape(1, 4, 3)  # one sequence: 4 positions of width 3
    >>> mask = torch.tensor([[1, 1, 1, 0]])  # the last position is padding
    >>> [pool(hidden, mask, how).tolist() for how in ("cls", "mean", "last")]
    [[[0.0, 1.0, 2.0]], [[3.0, 4.0, 5.0]], [[6.0, 7.0, 8.0]]]
    >>> a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2]])
    >>> b = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.5, 0.5, 1.0, 1.0]])
    >>> [round(v, 4) for v in box_iou(a, b).tolist()]  # 0.0625 / 0.4375, then disjoint
    [0.1429, 0.0]
    >>> decode_boxes(torch.zeros(1, 4)).tolist()
    [[0.25, 0.25, 0.75, 0.75]]
"""
