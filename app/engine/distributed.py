"""Data-parallel LoRA training: one training process per device (or N gloo processes on a CPU), each taking its
share of every optimizer step's global batch.

The ranks come from the `torchrun` environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
MASTER_PORT): `torchrun --nproc-per-node 2 -m app.engine.train_main SPEC.json` works, and so does the local
provider, which starts the processes itself with those variables. Without them (or with WORLD_SIZE=1) a run is one
process and every method here does nothing that costs.

Why no DistributedDataParallel: a step's rows differ in number between ranks (each packs its own share), and the
gradients must be summed over the step's *global* target tokens to give the one-process loss. So each rank scales
its rows' losses by the global target count (every rank knows it: the data and the seed are the same everywhere),
and one all-reduce per step sums the LoRA gradients, the loss and accuracy sums and a stop flag, so the ranks step,
report and stop together. Only rank 0 writes events, result.csv, checkpoints and the final adapter.

Importing this module loads torch: call _hf.prepare() first (train.run_training does).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from app.engine import protocol as p
from app.engine.data import Example
from app.errors import DomainError

# How long a rank waits in a collective for the others (a long evaluation runs on every rank, so waits are short;
# a rank that dies closes its sockets and the others fail at once, without waiting this long).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)

T = TypeVar("T")


class PeerLost(DomainError):
    """Another rank of the job stopped: this one cannot go on alone."""

    code = p.ERROR_PROCESS_LOST


@dataclass(frozen=True)
class RankEnv:
    """Where this process stands among the job's training processes (the torchrun variables)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RankEnv:
        """The ranks from RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE; one process when they are absent."""
        env = os.environ if environ is None else environ
        world = int(env.get("WORLD_SIZE") or 1)
        rank = int(env.get("RANK") or 0)
        local_rank = int(env.get("LOCAL_RANK") or rank)
        local_world = int(env.get("LOCAL_WORLD_SIZE") or world)
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"SPEC environment: RANK={rank} is outside WORLD_SIZE={world}.")
        return cls(rank, world, local_rank, local_world)


class Ranks:
    """This process's part in a (possibly one-process) data-parallel run."""

    def __init__(self, env: RankEnv | None = None):
        self.env = env or RankEnv()
        self.joined = False

    @property
    def rank(self) -> int:
        """This process's rank (0 writes everything)."""
        return self.env.rank

    @property
    def world_size(self) -> int:
        """How many processes train the job."""
        return self.env.world_size

    @property
    def lead(self) -> bool:
        """Whether this process writes events, result.csv, checkpoints and the adapter."""
        return self.env.rank == 0

    @property
    def parallel(self) -> bool:
        """Whether more than one process trains the job."""
        return self.env.world_size > 1

    # -- set-up ---------------------------------------------------------------------------------------------------
    def join(self, device: str) -> str:
        """Join the job's process group (NCCL on CUDA, gloo on a CPU); the device this rank trains on.

        On CUDA each rank takes the visible GPU of its LOCAL_RANK and "cuda" means that one from here on.
        """
        if not self.parallel:
            return device
        if device == "cuda":
            torch.cuda.set_device(self.env.local_rank)
        backend = "nccl" if device == "cuda" else "gloo"
        try:
            dist.init_process_group(
                backend, rank=self.env.rank, world_size=self.env.world_size, timeout=COLLECTIVE_TIMEOUT
            )
        except (RuntimeError, ValueError) as exc:
            raise PeerLost(f"The job's {self.world_size} training processes could not connect: {exc}") from exc
        self.joined = True
        return device

    def leave(self) -> None:
        """Leave the process group (after the last collective)."""
        if self.joined:
            self.joined = False
            with contextlib.suppress(RuntimeError, ValueError):  # a group broken by a lost rank: nothing to tidy
                dist.destroy_process_group()

    def threads(self) -> int:
        """CPU threads for this rank: the cores shared out between the processes of this host."""
        return max(1, (os.cpu_count() or 1) // self.env.local_world_size)

    def same_seed(self, seed: int) -> int:
        """Rank 0's seed on every rank (a job without a seed draws one per process)."""
        if not self.parallel:
            return seed
        value = torch.tensor([seed], dtype=torch.long, device=self._device())
        self._collective(lambda: dist.broadcast(value, src=0))
        return int(value.item())

    def same_parameters(self, params: Sequence[torch.Tensor]) -> None:
        """Rank 0's trainable weights on every rank (fresh adapters start equal, whatever each rank drew)."""
        if not self.parallel or not params:
            return
        flat = torch.cat([q.detach().reshape(-1).float() for q in params])
        self._collective(lambda: dist.broadcast(flat, src=0))
        self._scatter(flat, [q.data for q in params])

    # -- each step ------------------------------------------------------------------------------------------------
    def share(self, examples: list[Example]) -> list[Example]:
        """This rank's part of a step's examples: longest first, each to the rank with the fewest tokens so far.

        Every rank computes the same split from the same batch, so nothing is sent.
        """
        return self.share_by(examples, lambda e: len(e.input_ids))

    def share_by(self, items: list[T], size: Callable[[T], int]) -> list[T]:
        """This rank's part of items (examples, DPO pairs' indices): largest first, each to the rank with the least
        size so far. The same split on every rank, so nothing is sent; one process keeps items as they are."""
        if not self.parallel:
            return items
        loads = [0] * self.world_size
        mine: list[T] = []
        for item in sorted(items, key=lambda i: -size(i)):
            rank = loads.index(min(loads))
            loads[rank] += size(item)
            if rank == self.rank:
                mine.append(item)
        return mine

    def reduce_step(
        self, params: Sequence[torch.Tensor], loss: Any, correct: Any, stop: Callable[[], bool]
    ) -> tuple[Any, Any, bool]:
        """Sum the step's gradients, loss and correct tokens over the ranks; whether any rank was asked to stop.

        Each rank's losses were already divided by the step's global target count, so the summed gradient is the
        one-process gradient. One all-reduce per step (the values ride with the gradients).
        """
        if not self.parallel:
            return loss, correct, stop()
        (total_loss, total_correct), stopped = self.reduce_sums(params, [float(loss), float(correct)], stop)
        return total_loss, round(total_correct), stopped

    def reduce_sums(
        self, params: Sequence[torch.Tensor], values: Sequence[float], stop: Callable[[], bool]
    ) -> tuple[list[float], bool]:
        """Sum the step's gradients and the step's own sums (`values`) over the ranks; whether any rank was asked
        to stop. One all-reduce (the values ride with the gradients, as float32); one process: values as given."""
        if not self.parallel:
            return list(values), stop()
        grads = [q.grad if q.grad is not None else torch.zeros_like(q) for q in params]
        extras = torch.tensor([*values, 1.0 if stop() else 0.0], dtype=torch.float32, device=self._device())
        flat = torch.cat([*(g.reshape(-1).float() for g in grads), extras])
        self._collective(lambda: dist.all_reduce(flat))
        self._scatter(flat[: -len(extras)], grads)
        for q, g in zip(params, grads, strict=True):
            q.grad = g
        *totals, stops = flat[-len(extras) :].tolist()
        return totals, stops > 0

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """A CPU tensor summed element-wise over the ranks (each rank fills its own entries, zeros elsewhere, so
        every rank ends with the whole table); one process: the tensor itself."""
        if not self.parallel:
            return tensor
        moved = tensor.to(self._device())
        self._collective(lambda: dist.all_reduce(moved))
        return moved.cpu()

    def evaluate(
        self, evaluate: Callable[[list[Example]], tuple[float | None, float | None]], examples: list[Example]
    ) -> tuple[float | None, float | None]:
        """Mean loss and accuracy over examples, each rank scoring its share (`evaluate` scores a list)."""
        if not self.parallel or not examples:
            return evaluate(examples)
        mine = self.share(examples)
        count = sum(e.n_trained for e in mine)
        loss, accuracy = evaluate(mine) if mine else (None, None)
        sums = torch.tensor([(loss or 0.0) * count, (accuracy or 0.0) * count, float(count)], dtype=torch.float64).to(
            self._device()
        )
        self._collective(lambda: dist.all_reduce(sums))
        total_loss, total_correct, total = sums.tolist()
        return total_loss / max(total, 1.0), total_correct / max(total, 1.0)

    # -- helpers --------------------------------------------------------------------------------------------------
    def _device(self) -> str:
        return "cuda" if dist.get_backend() == "nccl" else "cpu"

    def _collective(self, call: Callable[[], Any]) -> None:
        """Run a collective; a lost or stuck rank becomes PeerLost, in words."""
        try:
            call()
        except (RuntimeError, dist.DistError) as exc:
            raise PeerLost(
                f"Another training process of this job stopped (this is rank {self.rank} of {self.world_size}); "
                "the job cannot go on without it."
            ) from exc

    @staticmethod
    def _scatter(flat: torch.Tensor, into: list[torch.Tensor]) -> None:
        offset = 0
        for tensor in into:
            n = tensor.numel()
            tensor.copy_(flat[offset : offset + n].view_as(tensor))
            offset += n
