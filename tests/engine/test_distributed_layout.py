"""Which processes a local job trains in (the worker's GPUs, or N gloo ranks on a CPU), how a step's examples are
shared out between ranks, and the switches that choose them (no process is started here)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.engine.data import Example
from app.engine.devices import Gpu
from app.engine.distributed import RankEnv, Ranks
from app.providers import local_ranks
from app.providers.local import LocalProvider
from app.providers.local_ranks import Layout, TrainerGroup, plan_layout


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(local_ranks, "visible_gpus", lambda: [Gpu(i, "H200", 141 * 2**30) for i in range(4)])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_a_gpu_worker_trains_on_every_visible_gpu_or_those_it_is_given(four_gpus, monkeypatch):
    assert plan_layout("auto", None, 1) == Layout("cuda", 4, ("0", "1", "2", "3"))
    assert plan_layout("auto", [0, 2], 1) == Layout("cuda", 2, ("0", "2"))
    assert plan_layout("auto", [2], 1) == Layout("cuda", 1, ("2",))
    assert plan_layout("auto", [0, 2], 1).describe() == "Training data-parallel on GPUs 0, 2: 2 processes (NCCL)."
    # Under CUDA_VISIBLE_DEVICES the indexes are the renumbered ones: index 1 of "5,7" is device 7.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert plan_layout("auto", [1], 1).gpus == ("7",)


def test_without_a_gpu_a_job_trains_in_one_process_or_the_gloo_ranks_asked_for(monkeypatch):
    monkeypatch.setattr(local_ranks, "visible_gpus", list)
    assert plan_layout("auto", None, 1) == Layout("auto", 1)
    assert plan_layout("cpu", None, 1) == Layout("cpu", 1)
    assert plan_layout("cpu", None, 2) == Layout("cpu", 2)
    assert plan_layout("auto", None, 3) == Layout("cpu", 3)
    assert plan_layout("cpu", None, 2).describe() == "Training data-parallel on the CPU: 2 processes (gloo)."


def test_the_provider_reads_the_switches_from_settings(four_gpus):
    provider = LocalProvider(Settings(worker_gpus="1,3", train_processes=2), device="auto")
    assert provider.layout() == Layout("cuda", 2, ("1", "3"))
    assert LocalProvider(Settings(train_processes=2), device="cpu").layout() == Layout("cpu", 2)


def test_worker_gpus_is_all_or_indexes():
    assert Settings().gpu_indexes is None
    assert Settings(worker_gpus=" 0, 2 ").gpu_indexes == [0, 2]
    with pytest.raises(ValueError, match="GPU indexes"):
        Settings(worker_gpus="first")


def test_the_worker_command_passes_gpus_and_processes_as_settings(monkeypatch):
    seen = {}

    def fake_worker(settings, providers, gpu, once):
        seen.update(gpus=settings.gpu_indexes, processes=settings.train_processes, gpu=gpu)
        return 0

    monkeypatch.setattr("app.worker.process.run_worker_process", fake_worker)
    result = CliRunner().invoke(cli, ["worker", "--gpus", "0,2", "--processes", "2"])
    assert result.exit_code == 0, result.output
    assert seen == {"gpus": [0, 2], "processes": 2, "gpu": True}  # --gpus implies --gpu


def test_each_rank_takes_its_share_of_a_step_the_same_on_every_rank():
    examples = [Example(list(range(n)), [True] * n) for n in (50, 10, 40, 20, 30, 5)]
    shares = [Ranks(RankEnv(rank, 2)).share(examples) for rank in range(2)]
    assert sorted(len(e.input_ids) for share in shares for e in share) == sorted(len(e.input_ids) for e in examples)
    tokens = [sum(len(e.input_ids) for e in share) for share in shares]
    assert abs(tokens[0] - tokens[1]) <= 10  # longest first, each to the lighter rank
    assert Ranks().share(examples) == examples  # one process: the whole batch


def test_rank_env_reads_torchrun_variables():
    env = RankEnv.from_environ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert env == RankEnv(1, 2, 1, 2) and not Ranks(env).lead and Ranks(env).parallel
    assert RankEnv.from_environ({}) == RankEnv()
    with pytest.raises(ValueError):
        RankEnv.from_environ({"RANK": "2", "WORLD_SIZE": "2"})


def test_a_lost_rank_is_named_in_words():
    class Ended:
        def __init__(self, code):
            self.returncode = code

        def poll(self):
            return self.returncode

    group = TrainerGroup([Ended(None), Ended(-9)], [])
    assert group.lost_rank() == (
        "Training process 2 of 2 (rank 1) was killed (SIGKILL). The other processes were stopped; the job cannot go "
        "on without it."
    )
    assert TrainerGroup([Ended(1), Ended(None)], []).lost_rank() is None


def test_a_rank_that_failed_is_named_with_its_own_error_line(tmp_path):
    class Ended:
        def __init__(self, code):
            self.returncode = code

        def poll(self):
            return self.returncode

    log = tmp_path / "stderr.rank1.log"
    log.write_text('Traceback ...\n{"kind": "error", "code": "out_of_memory", "message": "The machine ran out."}\n')
    group = TrainerGroup([Ended(None), Ended(1)], [], [tmp_path / "stderr.log", log])
    assert group.lost_rank() == (
        "Training process 2 of 2 (rank 1) failed: The machine ran out. The other processes were stopped; the job "
        "cannot go on without it."
    )
