TEXT = """Lesson 19: Classification metrics -- confusion matrix, precision, recall, F1

The idea
Accuracy alone misleads when the classes are imbalanced: on a 95/5 split, always predicting
the majority class scores 95% and finds none of the rare class. Every useful number follows
from one table, the confusion matrix, so compute that once and derive the rest.
    pred, target: 1-D integer tensors of class indices, the same length N
    confusion matrix M: (C, C) int64, M[i, j] = examples of TRUE class i predicted as j
    (rows: truth, columns: prediction -- scikit-learn's convention)

The confusion matrix without a Python loop
Give each (true, predicted) pair its own bin, true · C + predicted (0 ... C² − 1), count the
bins with torch.bincount(pairs, minlength=C·C) (minlength: classes never seen still get a
row), and reshape the C² counts to (C, C). bincount wants int64 on the CPU.

Precision, recall, F1 per class c
    TP = M[c, c]          (the diagonal)
    TP + FP = column c's sum   (everything predicted c)    -> precision = TP / (TP + FP)
    TP + FN = row c's sum      (everything that is c)      -> recall    = TP / (TP + FN)
    F1 = 2·P·R / (P + R) = 2·TP / (2·TP + FP + FN)         the harmonic mean of P and R
Use the count form of F1: it needs no special case when P + R = 0. A denominator of 0 (a class
never predicted, or never present) gives zero_division (0 by default, as scikit-learn);
torch.where(den > 0, num / den.clamp(min=1), zero_division) avoids dividing by zero. Compute
in float64 (matrix.double()): each result is a float64 tensor of length C.

Macro-F1
The plain mean of the per-class F1 over the classes that OCCUR among the true or predicted
labels (as scikit-learn's f1_score(average="macro") with no labels given): a class that
appears nowhere has nothing to score. Every class counts the same, so the rare class's F1 of
0 pulls the majority-class predictor far below its accuracy.

What you write
confusion_matrix after the given label checks; precision_recall_f1; macro_f1 after its checks.
accuracy, classification_metrics and format_confusion_matrix are minimod's.

Classic pitfalls
- Rows and columns swapped (M[pred, true]): precision and recall trade places.
- bincount without minlength: a class that never appears shrinks the matrix.
- Averaging precision and recall arithmetically instead of harmonically.
- Macro-F1 over all C classes, also those absent from both pred and target.
- Dividing by zero and getting nan instead of zero_division.

Run it
Once `minimod exercises check 19` passes, the report of a fine-tuning run is yours: the
confusion matrix, per-class precision, recall and F1, and macro-F1, here of a 1-D CNN on
the Free Spoken Digit Dataset's real recordings (after `make real`; --use-mine swaps in
every lesson that passes and says which):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e19
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test
accuracy 0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the
per-class table: 4 is never missed (recall 1.000), 1 and 6 most often (recall 0.767; five 6s
are heard as 8, which is why 8's precision is 0.829); about 40 s on 2 cores shared with other
jobs.
Next: lesson 20 (Heads and pooling: fine-tuning a pretrained body)

Check it: minimod exercises check 19
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e19_metrics import confusion_matrix, macro_f1, precision_recall_f1
    >>> target = torch.tensor([0, 0, 0, 1, 1, 2])
    >>> pred = torch.tensor([0, 0, 1, 1, 2, 2])
    >>> confusion_matrix(pred, target).tolist()
    [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    >>> [[round(v, 3) for v in t.tolist()] for t in precision_recall_f1(pred, target)]
    [[1.0, 0.5, 0.5], [0.667, 0.5, 1.0], [0.8, 0.5, 0.667]]
    >>> round(macro_f1(pred, target), 4)
    0.6556
    >>> majority = torch.zeros(20, dtype=torch.long)  # predicts class 0 for 19 zeros and a one
    >>> round(macro_f1(majority, torch.tensor([0] * 19 + [1])), 4)  # accuracy would be 0.95
    0.4872
"""
