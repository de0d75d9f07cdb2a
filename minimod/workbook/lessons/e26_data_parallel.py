TEXT = """Lesson 26: Data parallelism -- one model on every worker, averaged gradients

The idea
Start W processes (ranks 0 ... W-1), each with a full copy of the same model. Every step, each
rank trains on its own B examples of a global batch of W·B, then the ranks AVERAGE their
gradients and each takes the same optimizer step: the copies stay identical, and W workers
train like one worker with a batch W times larger, in about the time of one batch of B.
    global batch (W·B, ...) -> rank r's shard (B, ...) -> loss_r -> grads_r  (per rank)
    all-reduce: grad = (grads_0 + ... + grads_{W-1}) / W                      (every rank)

Why the mean is the big batch's gradient
With a loss that is a mean over examples, the mean over W·B examples is the mean of the W shard
means (each over B):  L = 1/(W·B) · Σ_i l_i = 1/W · Σ_r L_r,  so  ∇L = 1/W · Σ_r ∇L_r.
Summing instead of averaging is the big batch's gradient times W. It stops being exact when
the shards' losses are not means over the same number of items: ignore_index (padding tokens)
leaves shards with different counts of targets, so the mean of means weighs them differently;
batch norm normalises with each rank's statistics over B, not over W·B (SyncBatchNorm fixes
that); dropout masks are other random draws; losses that compare examples within a batch
(contrastive) see only the shard. Float sums in another order differ in the last bits.

All-reduce and buckets
dist.all_reduce(t) replaces t on every rank by the sum over the ranks (in place; gloo has no
average, so divide by W afterwards). A ring all-reduce sends about 2·(W-1)/W times the tensor's
size per rank, whatever W is; but each call also has a fixed latency, and a model has hundreds
of small tensors. So flatten the gradients into buckets of about 25 MiB: one torch.cat, one
all_reduce, then copy each slice back into its .grad. A bucket holds one dtype on one device.
Collectives match by ORDER: every rank must issue the same all_reduces, same sizes, same
order, or they hang or mix up tensors. So the buckets depend only on the parameters, and a
parameter whose grad is None on one rank still sends zeros there. One extra number per
parameter, the count of ranks that had a gradient, tells when no rank had one: then its grad
stays None, as in one process. torch's DistributedDataParallel overlaps this with the backward
pass (a hook all-reduces a bucket as soon as its gradients are ready); minimod's
GradientAllReduce is called once after backward -- simpler, and with gradient accumulation you
call it once after the last micro-batch, so no no_sync() is needed.

Equal weights to start, different data
broadcast_module copies rank 0's parameters AND buffers to everyone (dist.broadcast, in place):
the same seed on every rank would do it only if every rank drew exactly the same numbers.
The DistributedSampler shuffles with a generator seeded with seed + epoch -- the SAME order on
every rank -- and rank r takes order[r::W]. Unless drop_last, the order is padded by repeating
its start to W·ceil(n/W), so all ranks run the same number of steps (one extra step on one
rank would wait forever in all_reduce). For language modelling, shard_batch does the same to a
batch: every rank draws the same W·B windows from the same generator and keeps its contiguous
block [r·B, (r+1)·B). That makes W ranks × B exactly one rank × W·B, and a checkpoint resumes
with another world size: the data state (the generator) is the same on every rank.

Rank 0 writes
The ranks hold the same weights, so one checkpoint is enough, and W processes writing the same
files would race. Only rank 0 (is_main()) saves checkpoints, writes logs and prints; log the
loss averaged over the ranks (all_reduce_mean), and barrier() before others read its files.

Launching: torchrun
    torchrun --nproc_per_node=2 -m minimod pretrain gpt ...
starts 2 processes and gives each RANK, WORLD_SIZE, LOCAL_RANK (its index on this machine),
LOCAL_WORLD_SIZE and MASTER_ADDR/MASTER_PORT (where rank 0 listens); init_process_group reads
them ("env://"). Backend gloo on the CPU; nccl on GPUs, one per process: cuda:LOCAL_RANK. Many
machines: run on each, with its own --node-rank (0 on the host of the endpoint):
    torchrun --nnodes 2 --node-rank 0 --nproc_per_node 8 --rdzv-endpoint host:29500 -m minimod ...

What you write
broadcast_module after its checks; GradientAllReduce.buckets and GradientAllReduce.all_reduce
(flatten, one all_reduce per bucket, divide, copy back); DistributedSampler.indices;
shard_batch's split after its checks. detect_env, init_distributed and the helpers are minimod's.

Classic pitfalls
- Summing the gradients without dividing by the world size (the lr silently grows W times).
- Buckets that depend on which grads exist, or skipping a None grad on one rank: a deadlock.
- Shuffling with a per-rank seed: the shards overlap and some examples are never seen.
- Forgetting set_epoch with torch's sampler: every epoch in the same order.
- Every rank writing the checkpoint; or logging rank 0's loss alone and calling it the loss.

Run it
Once `minimod exercises check 26` passes, two processes train one tiny GPT together with your
broadcast, bucketed gradient all-reduce and batch sharding (--use-mine swaps in every lesson
that passes, in each process):
    torchrun --standalone --nproc_per_node=2 -m minimod pretrain gpt --use-mine --out runs/e26
prints which lessons are yours (once per process), "gpt (tiny): 15,680 parameters, run folder
runs/e26, 2 processes", then "done: step 60, held-out loss 3.063, perplexity 21.38": exactly
the one-process run's numbers (lesson 5's command), as every step averages the gradient of the
same global batch (about 37 s, most of it starting the processes: the 60 steps took 1 s).
Next: lesson 27 (Recurrence: RNN, GRU and LSTM cells, the layer loop, backpropagation through time)

Check it: minimod exercises check 26
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod.nn import Parameter
    >>> from exercises.e26_data_parallel import DistributedSampler, GradientAllReduce, shard_batch
    >>> [list(DistributedSampler(5, num_replicas=2, rank=r, shuffle=False)) for r in range(2)]
    [[0, 2, 4], [1, 3, 0]]
    >>> x, y = torch.arange(12).reshape(6, 2), torch.arange(6)
    >>> [part.tolist() for part in shard_batch((x, y), rank=1, world_size=3)]
    [[[4, 5], [6, 7]], [2, 3]]
    >>> params = [Parameter(torch.zeros(n)) for n in (30_000, 20_000, 10_000, 5)]
    >>> sync = GradientAllReduce(params, bucket_mb=0.2)  # 0.2 MiB: 52,428 float32 numbers
    >>> [[p.numel() for p in bucket] for bucket in sync.buckets()]
    [[30000, 20000], [10000, 5]]
"""
