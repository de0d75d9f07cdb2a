"""Data-parallel training (minimod.train.distributed): broadcast, bucketed gradient averaging,
the distributed sampler and shard_batch, with two real gloo processes on the loopback.

One pair of processes runs every multi-process scenario once for the whole file (spawning them
costs seconds) and saves what each rank ends with; the tests then check those results. A
scenario that raises on a rank re-raises here, NotImplementedError included, so a stub fails
the tests that need it with its own message.

The lesson's code is reached through ``impl.distributed`` when tests/impl.py has that
namespace (else minimod's module). The model (a tiny GPT), the optimizers and the process group
come from minimod itself: earlier lessons' code, and set-up no lesson teaches. References are
independent: the mean of the ranks' gradients written out here, one process training on the
whole batch, and torch.utils.data.DistributedSampler as the sampler's twin.
"""

from __future__ import annotations

import importlib
import math
import socket
import time
import traceback
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.utils.data
from hypothesis import example, given
from hypothesis import strategies as st

import impl
import minimod.train.distributed as reference
from minimod import nn, optim
from minimod.models.gpt import GPT, GPTConfig

WORLD = 2  # processes
B = 3  # examples per rank and step: 2 processes × 3 against 1 process × 6
STEPS = 4
TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0)
JOIN_TIMEOUT_S = 120  # the whole spawned run; each collective times out after 30 s
RUNNING, CRASHED = "(running)", "(crashed)"  # keys of a rank's results besides the scenarios

COLLECTIVES_HINT = (
    "Did the ranks issue different collectives? Every rank must make the same broadcasts and "
    "all_reduces, of the same sizes, in the same order: the buckets may depend only on the "
    "parameters, and a parameter whose grad is None on one rank still sends zeros there"
)
SUM_HINT = (
    "the gradients were summed over the ranks, not averaged: divide the all-reduced sum by the "
    "world size, so that 2 ranks × B examples give the gradient of one batch of 2B"
)
LOCAL_HINT = (
    "a rank kept its own gradient: all_reduce every bucket (dist.all_reduce sums in place) and "
    "copy the result back into each parameter's .grad"
)
NO_GRAD_HINT = (
    "a parameter that no rank computed a gradient for got one: leave its grad None (the "
    "optimizer skips it; a zero gradient would still be weight-decayed by AdamW)"
)
BUFFERS_HINT = (
    "the parameters agree but the buffers do not: broadcast module.buffers() too (batch norm's "
    "running statistics, for instance)"
)
MIXED_HINT = (
    "a bucket mixes dtypes or devices: torch.cat would convert them; keep one bucket open per "
    "(device, dtype)"
)
OVERLAP_HINT = (
    "the ranks' shards overlap: every rank must shuffle with the SAME generator (seed + epoch, "
    "not the rank) and take its own slice, order[rank::num_replicas]"
)
EPOCH_HINT = (
    "set_epoch did not change the order: seed the permutation's generator with seed + epoch"
)
EQUAL_HINT = (
    "the ranks got different numbers of indices: pad the order by repeating its start up to "
    "num_samples · num_replicas (or drop the tail with drop_last), or the ranks would run "
    "different numbers of steps and one would wait forever in all_reduce"
)
STRIDE_HINT = (
    "rank r takes every num_replicas-th index from position r, order[r::num_replicas] (as "
    "torch's DistributedSampler), not a contiguous block of the order"
)
CONTIGUOUS_HINT = (
    "shard r is the r-th contiguous block of the batch, batch[r·B:(r+1)·B], so that the shards "
    "of ranks 0, 1, ... concatenated give the batch back"
)


def distributed():
    """The module under test: impl.distributed once tests/impl.py maps it, else minimod's."""
    return getattr(impl, "distributed", None) or importlib.import_module(
        "minimod.train.distributed"
    )


# -- what the ranks run -------------------------------------------------------------------------


class Buffered(nn.Module):
    """Parameters, a persistent buffer and a non-persistent one, all drawn at random."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.register_buffer("running", torch.randn(4))
        self.register_buffer("scratch", torch.randn(2, 2), persistent=False)


def random_buffered() -> Buffered:
    model = Buffered()
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.normal_()
    return model


class GradHolder(nn.Module):
    """Parameters whose gradients the test sets by hand: a and e on every rank, f on rank 0
    only, none for c, and d frozen; e is float32, the rest float64."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
        self.c = nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
        self.d = nn.Parameter(torch.zeros(4, dtype=torch.float64), requires_grad=False)
        self.e = nn.Parameter(torch.zeros(5))
        self.f = nn.Parameter(torch.zeros(6, dtype=torch.float64))


def rank_gradient(name: str, rank: int, like: torch.Tensor) -> torch.Tensor | None:
    """The gradient rank ``rank`` computed for parameter ``name`` (None: it computed none)."""
    if name in ("c", "d") or (name == "f" and rank == 1):
        return None
    seed = 1000 * rank + sum(map(ord, name))
    return torch.randn(like.shape, generator=torch.Generator().manual_seed(seed)).to(like)


def reduce_gradients(make_sync, rank: int) -> dict[str, torch.Tensor | None]:
    model = GradHolder()
    for name, param in model.named_parameters():
        param.grad = rank_gradient(name, rank, param)
    make_sync(model.parameters()).all_reduce()
    return {name: param.grad for name, param in model.named_parameters()}


class SummingAllReduce:
    """Wrong: all-reduces (sums) every gradient but never divides by the world size."""

    def __init__(self, parameters, bucket_mb: float = 25.0) -> None:
        self.params = [p for p in parameters if p.requires_grad]

    def all_reduce(self) -> None:
        for p in self.params:
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            dist.all_reduce(grad)
            p.grad = grad


class LocalAllReduce(SummingAllReduce):
    """Wrong: no communication at all."""

    def all_reduce(self) -> None:
        pass


def broadcast_params_only(module, src: int = 0) -> None:
    """Wrong: forgets the buffers."""
    for param in module.parameters():
        dist.broadcast(param.detach(), src=src)


def global_batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """WORLD · B windows of a random token stream, the same on every rank."""
    tokens = torch.randint(
        0, TINY.vocab_size, (WORLD * B, TINY.block_size + 1), generator=generator
    )
    return tokens[:, :-1], tokens[:, 1:]


def make_optimizer(kind: str, model):
    if kind == "SGD":
        return optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    return optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)


def train(kind: str, shard=None, make_sync=None, broadcast=None) -> dict[str, torch.Tensor]:
    """STEPS optimizer steps of the tiny GPT in float64 on global batches of WORLD · B windows;
    ``shard`` picks this rank's part of each (None: one process trains on all of it)."""
    model = GPT(TINY).double()
    if broadcast is not None:
        broadcast(model)
    sync = None if make_sync is None else make_sync(model.parameters())
    optimizer = make_optimizer(kind, model)
    generator = torch.Generator().manual_seed(5)
    for _ in range(STEPS):
        batch = global_batch(generator)
        x, y = batch if shard is None else shard(batch)
        optimizer.zero_grad()
        model(x, y)[1].backward()
        if sync is not None:
            sync.all_reduce()
        optimizer.step()
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def scenarios(D, rank: int) -> dict:
    """name -> a function of nothing that runs on every rank and returns what to check."""

    def broadcast(function, src=0):
        def run():
            torch.manual_seed(rank)  # every rank starts different
            model = random_buffered()
            function(model, src=src)
            return {**dict(model.named_parameters()), **dict(model.named_buffers())}

        return run

    def gradients(make_sync):
        return lambda: reduce_gradients(make_sync, rank)

    def training(kind):
        def run():
            torch.manual_seed(100 + rank)  # rank 1 starts from other weights than rank 0
            return train(
                kind,
                shard=lambda batch: D.shard_batch(batch, rank, WORLD),
                make_sync=lambda ps: D.GradientAllReduce(ps, bucket_mb=0.001),  # several buckets
                broadcast=D.broadcast_module,
            )

        return run

    def sampler():
        sampler = D.DistributedSampler(7, seed=3)  # rank and world size from the group
        return {"indices": list(sampler), "rank": sampler.rank, "world": sampler.num_replicas}

    def helpers():
        device = reference.init_distributed(reference.DistEnv(rank, WORLD, rank), "cpu")
        reference.barrier()
        mean = reference.all_reduce_mean(torch.tensor([rank + 1.0, 10.0 * rank]))
        return {
            "device": str(device),
            "rank": reference.get_rank(),
            "world": reference.get_world_size(),
            "main": reference.is_main(),
            "mean": mean,
        }

    return {  # the wrong implementations and the simplest collectives first
        "helpers": helpers,
        "summing": gradients(SummingAllReduce),
        "local": gradients(LocalAllReduce),
        "broadcast_params_only": broadcast(broadcast_params_only),
        "sampler": sampler,
        "broadcast": broadcast(D.broadcast_module),
        "broadcast_from_1": broadcast(D.broadcast_module, src=1),
        "tiny_buckets": gradients(lambda ps: D.GradientAllReduce(ps, bucket_mb=1e-6)),
        "large_buckets": gradients(lambda ps: D.GradientAllReduce(ps, bucket_mb=100)),
        "train_SGD": training("SGD"),
        "train_AdamW": training("AdamW"),
    }


def worker(rank: int, implementation: str, port: int, out_dir: str) -> None:
    """One rank: join the group, run every scenario (recording errors), and save the results
    after each one -- with the name of the scenario running, in case the process dies in it."""
    torch.set_num_threads(1)
    impl.select(implementation)
    env = reference.DistEnv(rank, WORLD, rank)
    method = f"tcp://127.0.0.1:{port}"
    reference.init_distributed(env, "cpu", init_method=method, timeout=timedelta(seconds=30))
    results, path = {}, Path(out_dir) / f"rank{rank}.pt"
    for name, run in scenarios(distributed(), rank).items():
        save_atomically({**results, RUNNING: name}, path)
        try:
            results[name] = ("ok", run())
        except Exception as error:
            results[name] = ("error", type(error).__name__, str(error), traceback.format_exc())
    save_atomically(results, path)
    reference.shutdown()


def save_atomically(results: dict, path: Path) -> None:
    """Never half a file, even when the process is killed while writing."""
    torch.save(results, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> list[dict]:
    """Every scenario's result on each rank: [rank 0's {name: entry}, rank 1's]."""
    out = tmp_path_factory.mktemp("distributed")
    args = (impl.name(), free_port(), str(out))
    context = mp.start_processes(worker, args, nprocs=WORLD, join=False, start_method="spawn")
    deadline, failure = time.monotonic() + JOIN_TIMEOUT_S, None
    try:
        while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
            if time.monotonic() > deadline:
                failure = f"the ranks did not finish in {JOIN_TIMEOUT_S} s"
                break
    except mp.ProcessExitedException as error:  # killed, e.g. by gloo on mismatched sizes
        failure = str(error)
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    ranks = []
    for rank in range(WORLD):
        path = out / f"rank{rank}.pt"
        results = torch.load(path, weights_only=False) if path.exists() else {}
        if failure is not None:
            results[CRASHED] = f"{failure}, while running {results.get(RUNNING, 'the set-up')!r}"
        ranks.append(results)
    return ranks


def outcome(spawned: list[dict], name: str) -> list:
    """Scenario ``name``'s result on each rank, or the first rank's error raised again."""
    values = []
    for rank, results in enumerate(spawned):
        if name not in results:
            crash = results.get(CRASHED, "no result")
            raise AssertionError(f"rank {rank}: {crash}. {COLLECTIVES_HINT}")
        entry = results[name]
        if entry[0] == "error":
            _, kind, message, trace = entry
            if kind == "NotImplementedError":
                raise NotImplementedError(message)
            raise AssertionError(f"rank {rank} raised {kind}: {message}\n{trace}")
        values.append(entry[1])
    return values


# -- hints --------------------------------------------------------------------------------------


def gradient_hint(got: list[dict]) -> str | None:
    """The likely mistake behind the ranks' gradients after all_reduce, or None."""
    shapes = dict(GradHolder().named_parameters())
    own = [{n: rank_gradient(n, r, p) for n, p in shapes.items()} for r in range(WORLD)]
    a = [grads["a"] for grads in got]
    if a[0] is not None and torch.allclose(a[0], own[0]["a"] + own[1]["a"]):
        return SUM_HINT
    if any(
        grads["a"] is not None and torch.equal(grads["a"], own[r]["a"])
        for r, grads in enumerate(got)
    ):
        return LOCAL_HINT
    if any(grads["c"] is not None for grads in got):
        return NO_GRAD_HINT
    return None


def broadcast_hint(got: list[dict]) -> str | None:
    names = [n for n, _ in Buffered().named_parameters()]
    params_agree = all(torch.equal(got[0][n], got[1][n]) for n in names)
    if params_agree and any(not torch.equal(got[0][n], got[1][n]) for n in got[0]):
        return BUFFERS_HINT
    return None


# -- two processes ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["SGD", "AdamW"])
@pytest.mark.slow
def test_two_processes_with_batch_b_train_like_one_process_with_batch_2b(spawned, kind):
    """2 ranks × B examples, gradients averaged, equal 1 process × 2B after several steps.

    Tolerance: float64, rtol 1e-9 / atol 1e-10. The two runs do the same arithmetic except the
    order of a few sums (the loss: a mean over 2B·T tokens vs the mean of two means over B·T;
    the sums over the batch inside the matmuls' backward), ~1e-16 relative each, grown by the
    steps: measured 1e-16 after 4 SGD steps, 3e-13 after 4 AdamW steps. A wrong factor (the sum
    instead of the mean) moves the SGD run by ~0.1; AdamW divides the gradient's scale out, so
    the SGD case is the one that catches that."""
    ranks = outcome(spawned, f"train_{kind}")
    torch.manual_seed(100)  # rank 0's initial weights, which the broadcast gave everyone
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks; tiny ops on a busy machine are slow with more
    try:
        expected = train(kind)
    finally:
        torch.set_num_threads(threads)
    for rank, got in enumerate(ranks):
        for name, tensor in expected.items():
            torch.testing.assert_close(
                got[name],
                tensor,
                rtol=1e-9,
                atol=1e-10,
                msg=lambda m, name=name, rank=rank: f"rank {rank}, {name}: {m}",
            )


@pytest.mark.parametrize("scenario", ["tiny_buckets", "large_buckets"])
@pytest.mark.slow
def test_gradients_are_averaged_over_the_ranks(spawned, scenario):
    """Every rank ends with the mean of the ranks' gradients: None counts as zeros (f), no
    gradient anywhere stays None (c), frozen parameters are left alone (d), float32 and
    float64 parameters both work (e, a). One parameter per bucket or all in one: the same."""
    got = outcome(spawned, scenario)
    hint = gradient_hint(got)
    assert hint is None, hint
    shapes = dict(GradHolder().named_parameters())
    for name, like in shapes.items():
        own = [rank_gradient(name, r, like) for r in range(WORLD)]
        if all(g is None for g in own):
            assert all(grads[name] is None for grads in got), f"{name}: expected grad None"
            continue
        mean = sum(torch.zeros_like(like) if g is None else g for g in own) / WORLD
        for rank, grads in enumerate(got):
            assert grads[name] is not None, (
                f"rank {rank}, {name}: grad None, but rank 0 had one; count a missing gradient "
                "as zeros and give every rank the mean"
            )
            assert grads[name].dtype == like.dtype, f"{name}: the grad's dtype changed"
            torch.testing.assert_close(grads[name], mean, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_bucket_size_does_not_change_the_result(spawned):
    tiny, large = outcome(spawned, "tiny_buckets"), outcome(spawned, "large_buckets")
    for rank in range(WORLD):
        for name, grad in tiny[rank].items():
            other = large[rank][name]
            assert (grad is None) == (other is None), name
            if grad is not None:
                assert torch.equal(grad, other), f"{name}: bucket sizes gave different grads"


@pytest.mark.slow
def test_broadcast_makes_every_rank_equal_to_the_source(spawned):
    """Parameters and buffers (the non-persistent one too) of every rank equal rank src's."""
    for scenario, src in (("broadcast", 0), ("broadcast_from_1", 1)):
        got = outcome(spawned, scenario)
        hint = broadcast_hint(got)
        assert hint is None, hint
        torch.manual_seed(src)
        source = random_buffered()
        expected = {**dict(source.named_parameters()), **dict(source.named_buffers())}
        for rank, tensors in enumerate(got):
            assert tensors.keys() == expected.keys()
            for name, tensor in expected.items():
                assert torch.equal(tensors[name], tensor), f"rank {rank}, {name} != rank {src}'s"


@pytest.mark.slow
def test_sampler_takes_rank_and_world_size_from_the_process_group(spawned):
    got = outcome(spawned, "sampler")
    assert [g["rank"] for g in got] == [0, 1] and [g["world"] for g in got] == [2, 2]
    twin = [
        list(torch.utils.data.DistributedSampler(range(7), num_replicas=2, rank=r, seed=3))
        for r in range(WORLD)
    ]
    assert [g["indices"] for g in got] == twin


@pytest.mark.reference_only
@pytest.mark.slow
def test_helpers_in_a_process_group(spawned):
    got = outcome(spawned, "helpers")
    assert [g["rank"] for g in got] == [0, 1] and [g["world"] for g in got] == [2, 2]
    assert [g["main"] for g in got] == [True, False]
    assert [g["device"] for g in got] == ["cpu", "cpu"], "init_distributed again: same device"
    for g in got:
        assert torch.equal(g["mean"], torch.tensor([1.5, 5.0]))


@pytest.mark.reference_only
@pytest.mark.slow
def test_hints_fire_on_wrong_implementations(spawned):
    assert gradient_hint(outcome(spawned, "summing")) == SUM_HINT
    assert gradient_hint(outcome(spawned, "local")) == LOCAL_HINT
    summed = [dict(grads) for grads in outcome(spawned, "summing")]
    for grads in summed:  # the sum, halved: right for a, still wrong for c
        grads["a"] = grads["a"] / WORLD
    assert gradient_hint(summed) == NO_GRAD_HINT
    assert broadcast_hint(outcome(spawned, "broadcast_params_only")) == BUFFERS_HINT
    assert bucket_hint(MixedBuckets) == MIXED_HINT
    assert sampler_hint(RankSeeded) == OVERLAP_HINT
    assert sampler_hint(EpochBlind) == EPOCH_HINT
    assert sampler_hint(Unpadded) == EQUAL_HINT
    assert sampler_hint(Blocks) == STRIDE_HINT
    assert shard_hint(interleaved_shards) == CONTIGUOUS_HINT
    crashed = {CRASHED: "process 1 terminated with signal SIGABRT, while running 'x'"}
    with pytest.raises(AssertionError, match="SIGABRT.*Did the ranks issue different collectives"):
        outcome([crashed, crashed], "x")  # what a rank killed by gloo leaves (checked by hand)


# -- buckets (one process) ----------------------------------------------------------------------


class MixedBuckets(reference.GradientAllReduce):
    """Wrong: one bucket for everything, whatever the dtype."""

    def buckets(self):
        return [[p for p in self.params if p.requires_grad]]


def bucket_hint(cls) -> str | None:
    model = GradHolder()
    for bucket in cls(model.parameters(), bucket_mb=100).buckets():
        if len({(p.device, p.dtype) for p in bucket}) > 1:
            return MIXED_HINT
    return None


@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    dtypes=st.lists(st.sampled_from([torch.float32, torch.float64]), min_size=8, max_size=8),
    frozen=st.lists(st.booleans(), min_size=8, max_size=8),
    bucket_bytes=st.integers(1, 400),
)
@example(sizes=[3], dtypes=[torch.float32] * 8, frozen=[False] * 8, bucket_bytes=1)
def test_buckets_fill_greedily_per_dtype(sizes, dtypes, frozen, bucket_bytes):
    """Every trainable parameter once, in order; one dtype per bucket; a bucket holds
    parameters while they fit in bucket_mb (a bigger one alone), and the next bucket of the
    same dtype starts only when its first parameter did not fit."""
    params = [
        nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=not off)
        for n, dtype, off in zip(sizes, dtypes, frozen, strict=False)
    ]
    sync = distributed().GradientAllReduce(params, bucket_mb=bucket_bytes / 2**20)
    buckets = sync.buckets()
    hint = bucket_hint(type(sync))
    assert hint is None, hint
    trainable = [p for p in params if p.requires_grad]
    placed = [p for bucket in buckets for p in bucket]
    assert sorted(map(id, placed)) == sorted(map(id, trainable)), (
        "each trainable param once, whether or not it has a .grad: buckets that depend on "
        "which grads exist differ between ranks, and all_reduce then deadlocks"
    )
    assert all(bucket for bucket in buckets), "an empty bucket"
    nbytes = {id(p): p.numel() * p.element_size() for p in params}
    for dtype in (torch.float32, torch.float64):
        mine = [b for b in buckets if b[0].dtype == dtype]
        order = [id(p) for b in mine for p in b]
        assert order == [id(p) for p in trainable if p.dtype == dtype], "parameter order kept"
        for i, bucket in enumerate(mine):
            size = sum(nbytes[id(p)] for p in bucket)
            assert len(bucket) == 1 or size <= bucket_bytes, "a bucket is over bucket_mb"
            if i + 1 < len(mine):
                assert size + nbytes[id(mine[i + 1][0])] > bucket_bytes, "bucket closed too early"


# -- the sampler (one process) ------------------------------------------------------------------


class RankSeeded(reference.DistributedSampler):
    """Wrong: every rank shuffles with its own generator."""

    def indices(self, epoch=None):
        epoch = self.epoch if epoch is None else epoch
        order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.rank))
        return order.repeat(2)[: self.total_size][self.rank :: self.num_replicas]


class EpochBlind(reference.DistributedSampler):
    """Wrong: the same order every epoch."""

    def indices(self, epoch=None):
        return super().indices(0)


class Blocks(reference.DistributedSampler):
    """Wrong: a contiguous block of the (right) order for each rank."""

    def indices(self, epoch=None):
        epoch = self.epoch if epoch is None else epoch
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.num_items, generator=generator)
        if not self.shuffle:
            order = torch.arange(self.num_items)
        order = order.repeat(self.num_replicas)[: self.total_size]
        return order[self.rank * self.num_samples : (self.rank + 1) * self.num_samples]


class Unpadded(reference.DistributedSampler):
    """Wrong: no padding, so the last ranks get fewer indices."""

    def indices(self, epoch=None):
        order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed))
        return order[self.rank :: self.num_replicas]


def shards_of(cls, n: int, replicas: int, epoch: int = 0, **kwargs) -> list[list[int]]:
    shards = []
    for rank in range(replicas):
        sampler = cls(n, num_replicas=replicas, rank=rank, **kwargs)
        sampler.set_epoch(epoch)
        shards.append(list(sampler))
    return shards


def sampler_hint(cls) -> str | None:
    shards = shards_of(cls, 7, 2, seed=1)
    if len({len(shard) for shard in shards}) > 1:
        return EQUAL_HINT
    if set(shards[0]) & set(shards[1]) - {shards[0][0]}:  # padding repeats the first index only
        return OVERLAP_HINT
    if shards_of(cls, 10, 2, epoch=1, seed=1) == shards_of(cls, 10, 2, epoch=0, seed=1):
        return EPOCH_HINT
    if shards_of(cls, 4, 2, shuffle=False) == [[0, 1], [2, 3]]:
        return STRIDE_HINT
    return None


@given(
    n=st.integers(1, 23),
    replicas=st.integers(1, 4),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
@example(n=1, replicas=4, shuffle=True, drop_last=False, seed=0, epoch=0)  # padding > n
@example(n=8, replicas=4, shuffle=False, drop_last=True, seed=0, epoch=0)
def test_sampler_matches_torch(n, replicas, shuffle, drop_last, seed, epoch):
    """The same indices as torch.utils.data.DistributedSampler, on every rank."""
    if drop_last and n < replicas:
        n = replicas
    kwargs = {"shuffle": shuffle, "seed": seed, "drop_last": drop_last}
    hint = sampler_hint(distributed().DistributedSampler)
    assert hint is None, hint
    mine = shards_of(distributed().DistributedSampler, n, replicas, epoch, **kwargs)
    twin = shards_of(torch.utils.data.DistributedSampler, range(n), replicas, epoch, **kwargs)
    assert mine == twin


@given(n=st.integers(1, 23), replicas=st.integers(1, 4), seed=st.integers(0, 3))
def test_sampler_shards_are_disjoint_cover_everything_and_are_equally_long(n, replicas, seed):
    shards = shards_of(distributed().DistributedSampler, n, replicas, seed=seed)
    size = math.ceil(n / replicas)
    assert [len(s) for s in shards] == [size] * replicas, EQUAL_HINT
    every = [i for shard in shards for i in shard]
    assert set(every) == set(range(n)), "some items are in no shard"
    assert len(every) - len(set(every)) == size * replicas - n, OVERLAP_HINT
    if n >= replicas:
        dropped = shards_of(
            distributed().DistributedSampler, n, replicas, seed=seed, drop_last=True
        )
        kept = [i for shard in dropped for i in shard]
        assert len(kept) == len(set(kept)) == n // replicas * replicas, "drop_last: n // replicas"


def test_sampler_reshuffles_each_epoch_and_repeats_with_the_seed():
    D = distributed()
    first = shards_of(D.DistributedSampler, 20, 2, epoch=0, seed=4)
    assert shards_of(D.DistributedSampler, 20, 2, epoch=0, seed=4) == first, "not deterministic"
    assert shards_of(D.DistributedSampler, 20, 2, epoch=1, seed=4) != first, EPOCH_HINT
    assert shards_of(D.DistributedSampler, 20, 2, epoch=0, seed=5) != first, "seed ignored"
    sampler = D.DistributedSampler(20, num_replicas=2, rank=1, seed=4)
    assert list(sampler) == first[1]
    assert list(sampler) == shards_of(D.DistributedSampler, 20, 2, epoch=1, seed=4)[1], (
        "a pass run to the end moves on to the next epoch"
    )


def take(sampler, k: int) -> list[int]:
    iterator = iter(sampler)
    return [next(iterator) for _ in range(k)]


@pytest.mark.parametrize(("before", "after"), [(2, 2), (2, 1), (1, 2)])
def test_sampler_resumes_from_its_state_also_with_another_world_size(before, after):
    """Items 0 .. k·before of the epoch's order are done; the resumed ranks go on from there."""
    D = distributed()
    n, k = 12, 2
    first = [D.DistributedSampler(n, before, rank, seed=2) for rank in range(before)]
    for sampler in first:
        sampler.set_epoch(1)
        take(sampler, k)
    state = first[0].state_dict()
    assert state == {"epoch": 1, "seen": k * before}
    resumed = [D.DistributedSampler(n, after, rank, seed=2) for rank in range(after)]
    for sampler in resumed:
        sampler.load_state_dict(state)
    fresh = shards_of(D.DistributedSampler, n, after, epoch=1, seed=2)
    skip = k * before // after
    assert [list(s) for s in resumed] == [shard[skip:] for shard in fresh]


@pytest.mark.reference_only
def test_sampler_errors():
    with pytest.raises(ValueError, match="cannot be split evenly over 2 ranks"):
        reference.DistributedSampler(10, 2, 0).load_state_dict({"epoch": 0, "seen": 3})
    with pytest.raises(ValueError, match="expected a dict with 'epoch' and 'seen'"):
        reference.DistributedSampler(10, 2, 0).load_state_dict({"position": 3})
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\), got 2 of 2"):
        reference.DistributedSampler(10, 2, 2)
    with pytest.raises(ValueError, match="leaves nothing"):
        reference.DistributedSampler(1, 2, 0, drop_last=True)
    with pytest.raises(ValueError, match="empty"):
        reference.DistributedSampler([], 2, 0)
    assert len(reference.DistributedSampler(range(5), 2, 1)) == 3  # a sized dataset


# -- shard_batch --------------------------------------------------------------------------------


def interleaved_shards(batch, rank, world_size):
    """Wrong: every world_size-th row (a valid split, but not the contiguous one)."""
    return batch[rank::world_size]


def shard_hint(shard) -> str | None:
    batch = torch.arange(8)
    if not torch.equal(torch.cat([shard(batch, r, 2) for r in range(2)]), batch):
        return CONTIGUOUS_HINT
    return None


@given(world=st.integers(1, 4), per_rank=st.integers(1, 3), width=st.integers(1, 3))
def test_shard_batch_splits_every_tensor_into_contiguous_equal_shards(world, per_rank, width):
    D = distributed()
    hint = shard_hint(D.shard_batch)
    assert hint is None, hint
    n = world * per_rank
    x, y, z = torch.randn(n, width), torch.arange(n), torch.randn(n, 2, width)
    batch = ((x, y), {"z": z, "mask": None}, [y.clone()])
    shards = [D.shard_batch(batch, rank, world) for rank in range(world)]
    for shard in shards:
        (sx, sy), parts, (sy2,) = shard
        assert type(shard) is tuple and type(shard[2]) is list and set(parts) == {"z", "mask"}
        assert sx.shape == (per_rank, width) and parts["z"].shape == (per_rank, 2, width)
        assert parts["mask"] is None
    assert torch.equal(torch.cat([s[0][0] for s in shards]), x), CONTIGUOUS_HINT
    assert torch.equal(torch.cat([s[0][1] for s in shards]), y), CONTIGUOUS_HINT
    assert torch.equal(torch.cat([s[1]["z"] for s in shards]), z), CONTIGUOUS_HINT
    assert torch.equal(torch.cat([s[2][0] for s in shards]), y), CONTIGUOUS_HINT


@pytest.mark.reference_only
def test_shard_batch_errors():
    with pytest.raises(ValueError, match=r"shape \(5, 2\) cannot be split into 2 equal shards"):
        reference.shard_batch((torch.zeros(4), torch.zeros(5, 2)), 0, 2)
    with pytest.raises(ValueError, match=r"shape \(\) cannot be split"):
        reference.shard_batch(torch.tensor(1.0), 0, 2)
    with pytest.raises(TypeError, match="expected tensors .* got str"):
        reference.shard_batch(["a", "b"], 0, 2)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\), got 3 of 2"):
        reference.shard_batch(torch.zeros(4), 3, 2)
    single = torch.zeros(4)
    assert torch.equal(reference.shard_batch(single), single)


# -- torchrun's environment and single-process helpers ------------------------------------------

TORCHRUN = {
    "RANK": "3",
    "WORLD_SIZE": "4",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "MASTER_ADDR": "10.0.0.1",
    "MASTER_PORT": "29500",
}


@pytest.mark.reference_only
def test_detect_env_reads_torchrun_variables():
    env = reference.detect_env(TORCHRUN)
    assert env == reference.DistEnv(rank=3, world_size=4, local_rank=1)
    assert not env.is_main and reference.DistEnv(0, 2, 0).is_main
    assert reference.detect_env({}) is None, "not launched by torchrun"
    single = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    assert reference.detect_env(single) is None, "one process needs no process group"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"WORLD_SIZE": None}, "sets RANK, WORLD_SIZE, LOCAL_RANK together"),
        ({"RANK": "x"}, "RANK must be an integer, got 'x'"),
        ({"RANK": "4"}, r"rank \(RANK\) must be in \[0, 4\), got 4"),
        ({"WORLD_SIZE": "0", "RANK": "0", "LOCAL_RANK": "0"}, "WORLD_SIZE.* must be ≥ 1"),
        ({"LOCAL_RANK": "-1"}, r"local_rank \(LOCAL_RANK\) must be in \[0, rank=3\]"),
        ({"MASTER_PORT": None}, "missing: MASTER_PORT; launch with torchrun"),
        ({"MASTER_ADDR": None, "MASTER_PORT": None}, "missing: MASTER_ADDR, MASTER_PORT"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT must be a port"),
        ({"LOCAL_WORLD_SIZE": "1"}, "LOCAL_RANK=1 but LOCAL_WORLD_SIZE=1"),
    ],
)
@pytest.mark.reference_only
def test_detect_env_rejects_inconsistent_values(change, message):
    environ = {key: value for key, value in {**TORCHRUN, **change}.items() if value is not None}
    with pytest.raises(ValueError, match=message):
        reference.detect_env(environ)


@pytest.mark.reference_only
def test_without_a_process_group_everything_is_rank_0_of_1():
    assert not reference.is_initialized()
    assert (reference.get_rank(), reference.get_world_size(), reference.is_main()) == (0, 1, True)
    reference.barrier()
    reference.shutdown()
    loss = torch.tensor(2.5, requires_grad=True)
    mean = reference.all_reduce_mean(loss)
    assert mean == 2.5 and mean is not loss and not mean.requires_grad
    model = GradHolder()
    model.a.grad = torch.ones(3, 4, dtype=torch.float64)
    reference.GradientAllReduce(model).all_reduce()
    assert torch.equal(model.a.grad, torch.ones(3, 4, dtype=torch.float64)) and model.c.grad is None
    before = {name: t.clone() for name, t in model.state_dict().items()}
    reference.broadcast_module(model)
    assert all(torch.equal(t, before[name]) for name, t in model.state_dict().items())


@pytest.mark.reference_only
def test_init_distributed_and_gradient_all_reduce_check_their_arguments():
    env = reference.DistEnv(0, 2, 0)
    with pytest.raises(ValueError, match="runs on cpu .gloo. or cuda .nccl., not meta"):
        reference.init_distributed(env, "meta")
    with pytest.raises(ValueError, match="uses cuda:1 .its LOCAL_RANK., not cuda:0"):
        reference.init_distributed(reference.DistEnv(1, 2, 1), "cuda:0")
    if torch.cuda.device_count() < 2:
        with pytest.raises(ValueError, match="LOCAL_RANK=1 but this machine has"):
            reference.init_distributed(reference.DistEnv(1, 2, 1), "cuda")
    assert not reference.is_initialized()
    with pytest.raises(ValueError, match="bucket_mb must be > 0"):
        reference.GradientAllReduce([], bucket_mb=0)
    with pytest.raises(TypeError, match="a Module or an iterable of tensors"):
        reference.GradientAllReduce([1.0])
    with pytest.raises(ValueError, match=r"broadcast_module\(src\): rank must be in"):
        reference.broadcast_module(GradHolder(), src=1)
