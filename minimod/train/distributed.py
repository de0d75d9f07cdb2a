"""Data-parallel training on ``torch.distributed``: the same model on every process, each on
its own share of the data, gradients averaged before every optimizer step.

Launched with torchrun, which starts one process per device and tells each who it is through
environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT):

    env = detect_env()                     # None: a single process, nothing to do
    device = init_distributed(env, "cpu")  # gloo on the CPU, nccl on cuda:LOCAL_RANK
    broadcast_module(model)                # every rank starts from rank 0's weights
    sync = GradientAllReduce(model.parameters())
    for step ...:
        x, y = shard_batch(global_batch, get_rank(), get_world_size())   # or DistributedSampler
        model(x, y)[1].backward()          # (all micro-batches, when accumulating)
        sync.all_reduce()                  # every rank now holds the mean gradient
        optimizer.step()                   # the same step on every rank: the models stay equal
        if is_main(): save / log
    shutdown()

Why no wrapper Module (torch's DistributedDataParallel wraps the model): the model stays the
object you built, so its state_dict keys -- and checkpoints -- are exactly a single-process
run's; and the one explicit call sits where the gradients are final (after the last
micro-batch, before clipping), so gradient accumulation needs no ``no_sync()``. The price: the
communication does not overlap the backward pass, as DDP's autograd hooks make it do.
Every helper also works without a process group (rank 0 of a world of 1), so a single process
runs the same code with nothing extra.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from minimod.nn.module import Module, Parameter

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


# -- who am I: torchrun's environment and the process group -------------------------------------
@dataclass(frozen=True)
class DistEnv:
    """This process's place in a run: ``rank`` in [0, world_size), ``local_rank`` (its index on
    this machine: which GPU it uses), ``backend`` ("gloo", "nccl"; None: from the device)."""

    rank: int
    world_size: int
    local_rank: int
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"DistEnv: world_size (WORLD_SIZE) must be ≥ 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"DistEnv: rank (RANK) must be in [0, {self.world_size}), got {self.rank}"
            )
        if not 0 <= self.local_rank <= self.rank:
            raise ValueError(
                f"DistEnv: local_rank (LOCAL_RANK) must be in [0, rank={self.rank}], "
                f"got {self.local_rank}"
            )

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and logs."""
        return self.rank == 0


def detect_env(environ: Mapping[str, str] = os.environ) -> DistEnv | None:
    """The DistEnv torchrun describes in ``environ``; None for a plain single process (none of
    RANK, WORLD_SIZE, LOCAL_RANK set, or WORLD_SIZE=1). Inconsistent values are a ValueError."""
    present = [key for key in ENV_KEYS if key in environ]
    if not present:
        return None
    if len(present) != len(ENV_KEYS):
        raise ValueError(
            f"detect_env: torchrun sets {', '.join(ENV_KEYS)} together, but only "
            f"{', '.join(present)} is set"
        )
    values = {key: _int_variable(environ, key) for key in ENV_KEYS}
    env = DistEnv(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if env.world_size == 1:
        return None
    missing = [key for key in ("MASTER_ADDR", "MASTER_PORT") if not environ.get(key)]
    if missing:
        raise ValueError(
            f"detect_env: WORLD_SIZE={env.world_size} needs MASTER_ADDR and MASTER_PORT (where "
            f"rank 0 listens), missing: {', '.join(missing)}; launch with torchrun, which sets them"
        )
    port = _int_variable(environ, "MASTER_PORT")
    if not 0 < port < 65536:
        raise ValueError(f"detect_env: MASTER_PORT must be a port (1-65535), got {port}")
    if "LOCAL_WORLD_SIZE" in environ:
        local_world = _int_variable(environ, "LOCAL_WORLD_SIZE")
        if not 0 <= env.local_rank < local_world:
            raise ValueError(
                f"detect_env: LOCAL_RANK={env.local_rank} but LOCAL_WORLD_SIZE={local_world}"
            )
    return env


def _int_variable(environ: Mapping[str, str], key: str) -> int:
    try:
        return int(environ[key])
    except ValueError:
        raise ValueError(f"detect_env: {key} must be an integer, got {environ[key]!r}") from None


def init_distributed(
    env: DistEnv,
    device: str | torch.device = "auto",
    *,
    init_method: str = "env://",
    timeout: timedelta | None = None,
) -> torch.device:
    """Join the process group described by ``env`` and return the device this rank trains on.

    device: "cpu" -> backend gloo; "cuda" -> backend nccl on cuda:LOCAL_RANK (one GPU per
    process); "auto" -> cuda when available, else cpu. ``env.backend`` overrides the choice.
    init_method: "env://" reads MASTER_ADDR / MASTER_PORT (torchrun sets them), or e.g.
    "tcp://127.0.0.1:29500". Calling it again in the same process returns the same device.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index not in (None, env.local_rank):
            raise ValueError(
                f"init_distributed: rank {env.rank} uses cuda:{env.local_rank} (its LOCAL_RANK), "
                f"not {device}; pass device='cuda'"
            )
        device = torch.device("cuda", env.local_rank)
        if env.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"init_distributed: LOCAL_RANK={env.local_rank} but this machine has "
                f"{torch.cuda.device_count()} GPUs; start at most that many processes per node"
            )
    elif device.type != "cpu":
        raise ValueError(
            f"init_distributed: data-parallel training runs on cpu (gloo) or cuda (nccl), "
            f"not {device.type}"
        )
    if is_initialized():
        if (dist.get_rank(), dist.get_world_size()) != (env.rank, env.world_size):
            raise RuntimeError(
                f"init_distributed: this process already is rank {dist.get_rank()} of "
                f"{dist.get_world_size()}, not rank {env.rank} of {env.world_size}"
            )
        return device
    backend = env.backend or ("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        init_method=init_method,
        rank=env.rank,
        world_size=env.world_size,
        timeout=timeout,
        device_id=device if backend == "nccl" else None,
    )
    return device


def shutdown() -> None:
    """Leave the process group (nothing to do without one)."""
    if is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank; 0 without a process group."""
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    """The number of processes; 1 without a process group."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): only it writes checkpoints and logs."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in a single process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """A new tensor: the mean of ``tensor`` over the ranks (e.g. the loss, for logging)."""
    mean = tensor.detach().clone()
    if get_world_size() > 1:
        dist.all_reduce(mean)  # the sum (gloo has no AVG)
        mean /= get_world_size()
    return mean


def _rank_and_world(rank: int | None, world_size: int | None, where: str) -> tuple[int, int]:
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"{where}: rank must be in [0, world_size), got {rank} of {world_size}")
    return rank, world_size


# -- the same weights everywhere ----------------------------------------------------------------
def broadcast_module(module: Module, src: int = 0) -> None:
    """Copy ``module``'s parameters and buffers from rank ``src`` into every rank's module (in
    place), so all ranks start equal. Call it on every rank, after building the model."""
    _rank_and_world(src, get_world_size(), "broadcast_module(src)")
    if get_world_size() == 1:
        return
    # BEGIN SOLUTION
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.detach(), src=src)  # in place: rank src sends, others receive
    # END SOLUTION


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
        # BEGIN SOLUTION
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
        # END SOLUTION

    def all_reduce(self) -> None:
        """Replace every trainable parameter's grad by its mean over the ranks."""
        world = get_world_size()
        if world == 1:
            return
        # BEGIN SOLUTION
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
        # END SOLUTION


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
        # BEGIN SOLUTION
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.num_items, generator=generator)
        else:
            order = torch.arange(self.num_items)
        repeats = math.ceil(self.total_size / self.num_items)
        order = order.repeat(repeats)[: self.total_size]  # pad with the start, or drop the tail
        return order[self.rank : self.total_size : self.num_replicas]
        # END SOLUTION

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
    # BEGIN SOLUTION
    if isinstance(batch, torch.Tensor):
        size = len(batch) // world_size
        return batch[rank * size : (rank + 1) * size]
    if isinstance(batch, dict):
        return {key: shard_batch(item, rank, world_size) for key, item in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_batch(item, rank, world_size) for item in batch)
    return batch
    # END SOLUTION


def _check_shardable(batch: Any, world_size: int) -> None:
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0 or len(batch) % world_size:
            raise ValueError(
                f"shard_batch: a tensor of shape {tuple(batch.shape)} cannot be split into "
                f"{world_size} equal shards along dim 0; make the global batch a multiple of "
                "the world size"
            )
    elif isinstance(batch, dict):
        for item in batch.values():
            _check_shardable(item, world_size)
    elif isinstance(batch, (tuple, list)):
        for item in batch:
            _check_shardable(item, world_size)
    elif batch is not None:
        raise TypeError(
            f"shard_batch: expected tensors (in tuples, lists, dicts), got {type(batch).__name__}"
        )
