"""Lesson 26: Data parallelism -- one model on every worker, averaged gradients

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

# Lesson 26 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.distributed as dist

from minimod.nn.module import Module, Parameter
from minimod.train.distributed import _check_shardable, _rank_and_world, get_world_size

# ---- from minimod/train/distributed.py ----------------------------------------


# -- the same weights everywhere ----------------------------------------------------------------
def broadcast_module(module: Module, src: int = 0) -> None:
    """Copy ``module``'s parameters and buffers from rank ``src`` into every rank's module (in
    place), so all ranks start equal. Call it on every rank, after building the model."""
    _rank_and_world(src, get_world_size(), "broadcast_module(src)")
    if get_world_size() == 1:
        return
    # BEGIN YOUR CODE
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.detach(), src=src)  # in place: rank src sends, others receive
    # END YOUR CODE


# -- averaging the gradients --------------------------------------------------------------------
class GradientAllReduce:
    """Averages the gradients of ``parameters`` over all ranks, in buckets of about
    ``bucket_mb`` MiB: one flat buffer and one all_reduce per bucket instead of one per tensor.

    Call ``all_reduce()`` on every rank after the backward pass(es), before clipping and
    ``optimizer.step()``. Only parameters with requires_grad take part. A parameter whose grad
    is None on some ranks counts as a zero gradient there, and every rank ends with the same
    grad; a parameter with no grad on any rank keeps grad None everywhere (as it would in one
    process: the optimizer skips it). A no-op in a single process.
    """

    def __init__(self, parameters: Module | Iterable[torch.Tensor], bucket_mb: float = 25.0):
        if isinstance(parameters, Module):
            parameters = parameters.parameters()
        params = list({id(p): p for p in parameters}.values())  # a shared tensor counts once
        if not all(isinstance(p, torch.Tensor) for p in params):
            raise TypeError("GradientAllReduce: expected a Module or an iterable of tensors")
        if not bucket_mb > 0:
            raise ValueError(f"GradientAllReduce: bucket_mb must be > 0, got {bucket_mb}")
        self.params: list[Parameter] = params
        self.bucket_bytes = bucket_mb * 2**20

    def buckets(self) -> list[list[Parameter]]:
        """The trainable parameters in buckets: each bucket one (device, dtype), in parameter
        order, filled greedily up to bucket_bytes (a larger tensor gets a bucket of its own).
        Every rank must find the same buckets: they depend only on the parameters."""
        # BEGIN YOUR CODE
        done, filling = [], {}  # filling: (device, dtype) -> (the open bucket, its bytes)
        for p in self.params:
            if not p.requires_grad:
                continue
            key, nbytes = (p.device, p.dtype), p.numel() * p.element_size()
            bucket, size = filling.get(key, ([], 0))
            if bucket and size + nbytes > self.bucket_bytes:
                done.append(bucket)  # full: close it, start the next
                bucket, size = [], 0
            filling[key] = (bucket + [p], size + nbytes)
        return done + [bucket for bucket, _ in filling.values()]
        # END YOUR CODE

    def all_reduce(self) -> None:
        """Replace every trainable parameter's grad by its mean over the ranks."""
        world = get_world_size()
        if world == 1:
            return
        # BEGIN YOUR CODE
        for bucket in self.buckets():
            grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in bucket]
            has_grad = torch.tensor([p.grad is not None for p in bucket]).to(grads[0])
            flat = torch.cat([g.reshape(-1) for g in grads] + [has_grad])
            dist.all_reduce(flat)  # the sum over ranks, identical on every rank
            flat /= world
            *chunks, has_grad = flat.split([p.numel() for p in bucket] + [len(bucket)])
            for p, chunk, some_rank in zip(bucket, chunks, has_grad.tolist(), strict=True):
                if not some_rank:
                    continue  # no rank has a gradient: leave None (the optimizer skips it)
                if p.grad is None:
                    p.grad = chunk.view_as(p).clone()
                else:
                    p.grad.copy_(chunk.view_as(p.grad))
        # END YOUR CODE


# -- different data on every rank ---------------------------------------------------------------
class DistributedSampler:
    """The example indices of one rank: each epoch, a permutation of ``dataset``'s indices (or
    0, 1, ...) split into num_replicas disjoint, equally long shards; rank r takes every
    num_replicas-th index from position r: ``for i in sampler: ... dataset[i]``.

    dataset: a sized dataset or the number of items n. num_replicas, rank: default: the
    process group's. shuffle: a new order each epoch, from a generator seeded with
    ``seed + epoch`` (the same on every rank). drop_last=False pads the order by repeating its
    start until every rank has ceil(n / num_replicas) indices; True drops the tail, leaving
    n // num_replicas each. As torch.utils.data.DistributedSampler, except that a pass run to
    the end moves on to the next epoch (torch's repeats the epoch unless you call set_epoch).

    state_dict() holds the epoch and how many items all ranks together have been given in it,
    so a resumed run continues exactly -- also with a different num_replicas, when that count
    divides evenly.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        n = dataset if isinstance(dataset, int) else len(dataset)
        if n < 1:
            raise ValueError(f"DistributedSampler: the dataset is empty (got {n} items)")
        self.rank, self.num_replicas = _rank_and_world(rank, num_replicas, "DistributedSampler")
        if drop_last and n < self.num_replicas:
            raise ValueError(
                f"DistributedSampler: drop_last with {n} items leaves nothing for each of "
                f"{self.num_replicas} ranks"
            )
        self.num_items, self.shuffle, self.seed, self.drop_last = n, shuffle, seed, drop_last
        self.num_samples = n // self.num_replicas if drop_last else -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.epoch = 0
        self._position = 0  # indices given in this epoch (or to skip, after load_state_dict)

    def set_epoch(self, epoch: int) -> None:
        """The next pass uses this epoch's order (from its start)."""
        self.epoch, self._position = epoch, 0

    def indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's num_samples indices (int64) for ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        # BEGIN YOUR CODE
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.num_items, generator=generator)
        else:
            order = torch.arange(self.num_items)
        repeats = math.ceil(self.total_size / self.num_items)
        order = order.repeat(repeats)[: self.total_size]  # pad with the start, or drop the tail
        return order[self.rank : self.total_size : self.num_replicas]
        # END YOUR CODE

    def __iter__(self) -> Iterator[int]:
        skip = self._position
        for index in self.indices()[skip:].tolist():
            self._position += 1
            yield index
        self.epoch, self._position = self.epoch + 1, 0

    def __len__(self) -> int:
        return self.num_samples

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "seen": self._position * self.num_replicas}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if not isinstance(state, Mapping) or {"epoch", "seen"} - state.keys():
            raise ValueError(
                "DistributedSampler.load_state_dict: expected a dict with 'epoch' and 'seen' "
                "(what state_dict() returns)"
            )
        seen = int(state["seen"])
        if seen % self.num_replicas or not 0 <= seen // self.num_replicas <= self.num_samples:
            raise ValueError(
                f"DistributedSampler.load_state_dict: {seen} items seen cannot be split evenly "
                f"over {self.num_replicas} ranks of {self.num_samples} items; resume with a "
                "world size that divides it"
            )
        self.epoch, self._position = int(state["epoch"]), seen // self.num_replicas


def shard_batch(batch: Any, rank: int | None = None, world_size: int | None = None) -> Any:
    """This rank's share of a global batch: every tensor (inside tuples, lists, dicts) split
    along dim 0 into world_size equal, contiguous shards, and shard ``rank`` kept (a view).
    The shards of ranks 0, 1, ... concatenated give the batch back. None passes through.
    rank, world_size: default: the process group's. (B·world_size, ...) -> (B, ...)."""
    rank, world_size = _rank_and_world(rank, world_size, "shard_batch")
    _check_shardable(batch, world_size)
    # BEGIN YOUR CODE
    if isinstance(batch, torch.Tensor):
        size = len(batch) // world_size
        return batch[rank * size : (rank + 1) * size]
    if isinstance(batch, dict):
        return {key: shard_batch(item, rank, world_size) for key, item in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_batch(item, rank, world_size) for item in batch)
    return batch
    # END YOUR CODE
