"""The decode thread policy: a second thread only while other processes leave the cores free."""

from __future__ import annotations

from app.engine.cpu_share import CoreShare


class FakeMachine:
    """A machine whose busy CPU seconds, own process CPU seconds and clock the test advances by hand."""

    def __init__(self):
        self.busy = self.own = self.now = 0.0

    def advance(self, seconds: float, others_cores: float, own_cores: float) -> None:
        self.now += seconds
        self.own += seconds * own_cores
        self.busy += seconds * (others_cores + own_cores)

    def share(self) -> CoreShare:
        return CoreShare(0.2, machine=lambda: self.busy, own=lambda: self.own, clock=lambda: self.now)


def after_an_idle_window(cores: int = 2) -> tuple[FakeMachine, CoreShare]:
    """A share that has seen one full window in which only this process (one core of it) was busy."""
    machine = FakeMachine()
    share = machine.share()
    share.threads(cores)
    machine.advance(0.3, others_cores=0.0, own_cores=1.0)
    return machine, share


def test_one_thread_until_a_first_window_of_load_has_been_seen():
    machine = FakeMachine()
    share = machine.share()
    assert share.threads(2) == 1
    machine.advance(0.1, others_cores=0.0, own_cores=1.0)
    assert share.threads(2) == 1


def test_both_cores_while_only_this_process_is_busy():
    machine = FakeMachine()
    share = machine.share()
    share.threads(2)
    machine.advance(0.3, others_cores=0.0, own_cores=2.0)  # our own spinning threads do not count as load
    assert share.threads(2) == 2
    assert share.threads(1) == 1


def test_another_busy_process_brings_decoding_back_to_one_thread():
    machine, share = after_an_idle_window()
    assert share.threads(2) == 2
    machine.advance(0.3, others_cores=1.5, own_cores=0.5)  # a training job started beside the chat
    assert abs(share.others_busy() - 1.5) < 1e-9
    assert share.threads(2) == 1
    machine.advance(0.3, others_cores=0.1, own_cores=1.0)  # it finished; a logger's crumbs do not count
    assert share.threads(2) == 2


def test_two_conversations_decoding_at_once_get_one_thread_each():
    _, share = after_an_idle_window()
    with share.decoding():
        assert share.threads(2) == 2
        with share.decoding():
            assert share.threads(2) == 1
    assert share.threads(2) == 2


def test_many_cores_are_capped_where_more_threads_only_add_wake_ups():
    machine = FakeMachine()
    share = machine.share()
    share.threads(16)
    machine.advance(0.3, others_cores=3.0, own_cores=1.0)
    assert share.threads(16) == 4
