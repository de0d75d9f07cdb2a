TEXT = """Lesson 27: Recurrence -- RNN, GRU and LSTM cells, the layer loop, and vanishing gradients

The idea
A recurrent network reads a sequence one step at a time and carries a state h_t (B, H) from
step to step: h_t = cell(x_t, h_{t-1}). The same weights serve every step, so a sequence of
any length costs the same parameters, and h_t summarises everything read so far. Attention
(lesson 8) looks at all positions at once; a recurrence must squeeze the past through h.
Speech recognisers (lesson 28) long used stacks of bidirectional LSTMs for exactly this.

The three cells (x W_ihᵀ + b_ih is the "input part", h W_hhᵀ + b_hh the "recurrent part")
    RNN   h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)                  W_ih (H, I), W_hh (H, H)
    GRU   r = σ(i_r + h_r)   z = σ(i_z + h_z)                          W_ih (3H, I), W_hh (3H, H)
          n = tanh(i_n + r ⊙ h_n)     h' = (1 − z) ⊙ n + z ⊙ h
    LSTM  i, f, o = σ(·), g = tanh(·)  of the four blocks              W_ih (4H, I), W_hh (4H, H)
          c' = f ⊙ c + i ⊙ g          h' = o ⊙ tanh(c')
Gate blocks are stacked along the rows in torch's order -- GRU r, z, n; LSTM i, f, g, o -- so
.chunk(3) / .chunk(4) of the last axis splits them. The GRU detail: i_n = x W_inᵀ + b_in and
h_n = h W_hnᵀ + b_hn, and r multiplies h_n WITH its bias (the original paper puts r inside,
r ⊙ h before W_hn; torch and cuDNN do it this way, and so must we to load their weights).
Every weight and bias starts ~ U(-1/√H, 1/√H).

The layer: all inputs at once, the recurrence in a loop
Only h_{t-1} -> h_t is sequential. x_t W_ihᵀ + b_ih does not depend on h, so compute it for
every step in ONE matmul before the loop: gi = linear(x, W_ih, b_ih), (T, B, gates·H). The
loop then does one (B, H) x (H, gates·H) product per step (rnn_step, gru_step, lstm_step get
one step of gi). Take the steps with gi.unbind(0), one operation, not gi[t] in the loop: each
gi[t]'s backward writes a whole (T, B, gates·H) gradient, zeros but for row t, so T steps cost
T² (measured: it more than doubles an LSTM layer's time at T = 100). Every operation in the loop
runs T times forwards and again backwards, so the steps use as few as the maths allows:
torch.addmm(gi, h, W_hhᵀ) is gi + h W_hhᵀ in one; for RNN and LSTM, b_hh joins b_ih in the
input projection (b_ih + b_hh once per layer; the step functions take bias_hh=None then);
GRU's r and z blocks are side by side, so one add and one sigmoid serve both, but b_hn stays in
the step (r multiplies it); h' = torch.lerp(n, h, z) and c' = torch.addcmul(f ⊙ c, i, g).
Shapes, as torch: input (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I);
output (T, B, D·H) -- the top layer's h_t at every step, D = 2 directions if bidirectional;
h_n (L·D, B, H) the last state of every layer and direction (LSTM: also c_n), ordered layer 0
forward, layer 0 reverse, layer 1 forward, ...
Stacking: layer l + 1 reads layer l's output (D·H features), with dropout between layers in
training (not after the last). Bidirectional: a second set of weights (suffix _reverse) runs
from t = T − 1 down to 0, and the two outputs are concatenated per step. Parameter names:
weight_ih_l{l}, weight_hh_l{l}, bias_ih_l{l}, bias_hh_l{l}, and the same with _reverse.

Variable lengths without packing
A batch pads sequences to T steps. lengths (B,) gives the real ones; the mask (T, B, 1) is
t < lengths[b]. At a masked step keep the old state (torch.where(mask, new, old)) and output
0 (one torch.where on the stacked outputs, after the loop). Then h_n is each
sequence's state after its OWN last step, and the reverse direction --
which meets the padding first -- carries h0 unchanged through it and starts at that last
step. That is exactly what torch computes on a pack_padded_sequence.

Backpropagation through time
Unrolled, the loop is a T-layer deep network that shares its weights; autograd walks it
backwards and adds each step's contribution to W_hh's gradient. The gradient reaching h_0 is
a product of T Jacobians, ∂h_t/∂h_{t-1} = diag(1 − h_t²) W_hh for the tanh RNN: it shrinks
(or grows) geometrically. The LSTM's cell adds a path ∂c_t/∂c_{t-1} = diag(f_t): no W, no
squashing -- it vanishes only as fast as the forget gates are below 1. Measured with
minimod's layers at their default initialisation (H = 64, I = 32, x ~ N(0, 1), float64,
seed 0; spectral norms of the Jacobians):
                                T = 10      T = 50      T = 100
    RNN   ∂h_T/∂h_0            6.8e-03     9.0e-14     1.5e-28
    LSTM  ∂h_T/∂h_0            4.4e-03     3.0e-11     5.0e-21
    LSTM  ∂c_T/∂c_0            1.3e-02     1.2e-10     1.9e-20
    LSTM, forget bias +2:
          ∂h_T/∂h_0            1.8e-01     4.8e-02     8.7e-03
          ∂c_T/∂c_0            1.0e+00     4.3e-01     8.1e-02
At default initialisation f ≈ σ(0) = 0.5, so even the cell path halves every step; adding 1
to the forget-gate rows of both biases (f ≈ σ(2) ≈ 0.88) keeps a usable gradient over 100
steps -- the common "forget bias" trick (Jozefowicz et al. 2015). Exploding gradients, the
other side, are what clip_grad_norm_ (lesson 7) is for.

What you write
rnn_step, gru_step and lstm_step (one step, given gi); run_direction (the loop over time in
either direction, with the mask); the parameters and reset_parameters of the cells and of
RNNBase: _CellBase.__init__ sets self.weight_ih (gates·H, I), self.weight_hh (gates·H, H) and,
with bias, self.bias_ih and self.bias_hh (gates·H,) -- else registers both as None -- which
the given cell forwards read; _CellBase.reset_parameters and RNNBase.reset_parameters draw
them all from U(-1/√H, 1/√H); RNNBase.__init__ makes the per-layer Parameters named above
(setattr(self, "weight_ih_l0_reverse", ...)); RNNBase._run_layers, the loop over layers and
directions (the input projection, b_hh folded into it for RNN and LSTM,
the initial state of each layer and direction, dropout between layers, h_n in torch's
order). The argument checks, the cells' forward, RNNBase.forward (layouts: batch_first,
unbatched; the mask from lengths) and the classes RNN, GRU and LSTM are given.

Classic pitfalls
- GRU: r ⊙ (h W_hnᵀ) + b_hn, or r ⊙ h inside the product: both are real GRUs, but torch's
  weights then give other outputs.
- h' = z ⊙ n + (1 − z) ⊙ h: z is the weight of the OLD state in torch's convention.
- Gate blocks in the paper's order (i, f, o, g): loads, runs, and is silently wrong.
- Reverse direction on padded input starting at t = T − 1 with the real state: it must start
  at each sequence's own last step (or run on packed sequences).
- h_n taken as output[-1]: for the reverse direction that is its FIRST step, and with
  lengths it is padding.
- Dropout after the last layer, or in eval mode.
- gi[t] inside the loop: right results, and a backward that grows with T² (use unbind).

Run it
Once `minimod exercises check 27` passes, a speech recogniser -- strided convolutions, your
bidirectional GRU, a CTC head -- trains on synthetic spoken keyword sentences (--use-mine swaps
in every lesson that passes and says which):
    minimod pretrain audio --task asr --use-mine --out runs/e27
prints which lessons are yours, the training loss every 10 steps (about 30 at step 10, 2.8 at
step 40), then "done: step 40, held-out wer 1, cer 1" (about 2 min 15 s on 2 busy shared
cores). Forty steps are not enough to hear anything: `minimod transcribe --from runs/e27
--held-out 3` shows an empty transcript for every utterance -- CTC learns the blank first.
A recogniser that does hear is `--task asr-digits --preset baby` (1000 steps: minutes, not
seconds; the README's speech-recognition table gives its word error rate).
Next: lesson 28 (CTC: the alignment lattice, the α and β recursions, greedy and prefix beam
decoding)

Check it: minimod exercises check 27
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e27_recurrence import GRU, LSTM
    >>> lstm = LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    >>> output, (h_n, c_n) = lstm(torch.randn(4, 7, 3))
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((4, 7, 10), (4, 4, 5), (4, 4, 5))
    >>> [name for name, _ in lstm.named_parameters()][:5]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'weight_ih_l0_reverse']
    >>> gru = GRU(2, 3, batch_first=True)
    >>> out, h_n = gru(torch.randn(2, 5, 2), lengths=torch.tensor([5, 2]))
    >>> bool((out[1, 2:] == 0).all()), bool(torch.equal(h_n[0, 1], out[1, 1]))
    (True, True)
"""
