"""The training processes of one local job: one, or N data-parallel ranks started as `torchrun` would start them.

Each rank is `python -m app.engine.train_main SPEC.json` with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR and MASTER_PORT set (app/engine/distributed.py). Rank 0 alone reports on stdout; every other rank's
stdout (nothing but its error line, if it fails) and stderr go to its own log, which names its failure. If a rank
dies, the group says so in words and the parent stops the others: a job never waits on a rank that is gone. Torch
is never imported here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.engine.devices import visible_gpus
from app.engine.protocol import parse_line

EXIT_CANCELLED = 143  # app.engine.protocol.EXIT_CANCELLED: a rank stopped by SIGTERM


@dataclass(frozen=True)
class Layout:
    """How a job trains: its device ("cpu" or "cuda" or "auto"), its processes, and the GPUs they may see."""

    device: str
    processes: int = 1
    gpus: tuple[str, ...] | None = None  # CUDA_VISIBLE_DEVICES for the ranks; None leaves it as it is

    def describe(self) -> str:
        """In words, for the job's events."""
        if self.device == "cuda" and self.gpus is not None:
            where = f"GPUs {', '.join(map(str, self.gpus))}" if len(self.gpus) > 1 else f"GPU {self.gpus[0]}"
        else:
            where = "the CPU" if self.device == "cpu" else "this machine"
        if self.processes == 1:
            return f"Training on {where} in one process."
        backend = "NCCL" if self.device == "cuda" else "gloo"
        return f"Training data-parallel on {where}: {self.processes} processes ({backend})."


def plan_layout(device: str, gpus: list[int] | None, cpu_processes: int) -> Layout:
    """The layout for a provider's device: on "auto" every chosen visible GPU (one rank each), else the CPU.

    gpus: the GPU indexes to use (None: every visible one); cpu_processes: ranks on a CPU (gloo).
    """
    if device in ("auto", "cuda"):
        found = [g.index for g in visible_gpus()]
        chosen = found if gpus is None else [i for i in gpus if i in found]
        if chosen:
            return Layout("cuda", len(chosen), _physical(chosen))
        if device == "cuda":
            return Layout("cuda")  # asked for explicitly: the engine says so if there is none
    return Layout("cpu" if device == "cpu" or cpu_processes > 1 else device, max(1, cpu_processes))


def _physical(indexes: list[int]) -> tuple[str, ...]:
    """CUDA_VISIBLE_DEVICES entries for device indexes as this process numbers them (CUDA renumbers the devices
    its own CUDA_VISIBLE_DEVICES leaves visible from 0: index 1 under "2,3" is device 3)."""
    visible = [part.strip() for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        return tuple(str(i) for i in indexes)
    return tuple(visible[i] for i in indexes if i < len(visible))


def _free_port() -> int:
    # The port is free now; rank 0 binds it a moment later (torchrun picks its port the same way).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TrainerGroup:
    """The running ranks of one job. `lead` is rank 0, whose stdout carries the protocol lines."""

    def __init__(self, processes: list[subprocess.Popen], logs: list[IO[bytes]], log_paths: list[Path] | None = None):
        self.processes = processes
        self.logs = logs
        self.log_paths = log_paths or []
        self.lead = processes[0]
        self.stopping = False
        self.stopped: set[int] = set()  # ranks this group stopped after another was lost: not lost themselves

    @classmethod
    def start(cls, command: list[str], spec_path: Path, out: Path, env: dict[str, str], layout: Layout, cwd: Path):
        """Start every rank; OSError when one cannot be started (those already started are killed)."""
        n = layout.processes
        base = dict(env)
        if layout.gpus is not None:
            base["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, layout.gpus))
        if n > 1:
            base.update(
                WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port())
            )
        processes: list[subprocess.Popen] = []
        logs: list[IO[bytes]] = []
        paths = [out / ("stderr.log" if rank == 0 else f"stderr.rank{rank}.log") for rank in range(n)]
        try:
            for rank in range(n):
                log = open(paths[rank], "ab")  # noqa: SIM115 (closed by close())
                logs.append(log)
                rank_env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank)) if n > 1 else base
                processes.append(
                    subprocess.Popen(
                        [*command, str(spec_path)],
                        stdout=subprocess.PIPE if rank == 0 else log,
                        stderr=log,
                        cwd=cwd,
                        env=rank_env,
                        start_new_session=True,
                    )
                )
        except OSError:
            for process in processes:
                process.kill()
                process.wait()
            for handle in logs:
                handle.close()
            raise
        return cls(processes, logs, paths)

    @property
    def size(self) -> int:
        """How many ranks."""
        return len(self.processes)

    def lost_rank(self) -> str | None:
        """A plain message when a rank has ended badly while the job was not being stopped, else None."""
        if self.stopping:
            return None
        for rank, process in enumerate(self.processes):
            code = process.poll()
            if code is None or code == 0 or rank in self.stopped or (rank == 0 and code > 0):
                continue  # running, done, or rank 0's own failure (its error line says why)
            return self._words(rank, code)
        return None

    def _words(self, rank: int, code: int) -> str:
        who = f"Training process {rank + 1} of {self.size} (rank {rank})" if self.size > 1 else "The training process"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"was killed ({name})"
        else:
            reported = self._reported_error(rank)
            how = f"failed: {reported}" if reported else f"stopped with exit status {code}"
        tail = " The other processes were stopped; the job cannot go on without it." if self.size > 1 else ""
        return f"{who} {how}.{tail}"

    def _reported_error(self, rank: int) -> str | None:
        """The message of the error line a rank other than 0 wrote to its log, if it wrote one."""
        if rank == 0 or rank >= len(self.log_paths):
            return None
        try:
            with self.log_paths[rank].open("rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 65536))
                tail = handle.read().splitlines()
        except OSError:
            return None
        for raw in reversed(tail):
            line = parse_line(raw)
            if line is not None and line.get("kind") == "error":
                return str(line.get("message") or "").rstrip(".") or None
        return None

    def terminate(self) -> None:
        """SIGTERM every rank still running (each stops at its next step, together)."""
        self.stopping = True
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL every rank still running."""
        self._signal(signal.SIGKILL)

    def stop_others(self) -> None:
        """After a rank is lost: SIGTERM the others (a rank blocked on the lost one cannot step any more)."""
        self.stopped.update(rank for rank, process in enumerate(self.processes) if process.poll() is None)
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it ended between poll() and the signal
                    process.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for every rank to end (killing those still running after timeout); rank 0's exit code."""
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return int(self.lead.returncode)

    def close(self) -> None:
        """Kill what still runs, wait for it, close the pipes and logs."""
        self.kill()
        for process in self.processes:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for log in self.logs:
            log.close()

    def pids(self) -> list[int]:
        """The ranks' process ids, rank 0 first."""
        return [process.pid for process in self.processes]


def child_environ(root: Path) -> dict[str, str]:
    """The environment of a training process: this one's, with the repository on PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
