"""Ctrl-C never lands inside a runtime call: it is raised when the call is over, and the channel keeps working.

The gRPC server here is a stand-in that answers Version slowly; what is under test is the suite's own
handling of the signal around its CRI client, not a runtime."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from conformance import interrupt
from conformance.cri import api_pb2 as pb
from conformance.cri import api_pb2_grpc as rpc
from conformance.cri.client import CRIClient

SLOW = 0.4  # seconds the stand-in takes to answer


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupt.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    interrupt._State.pending = None


def signal_later(delay: float, signum: signal.Signals = signal.SIGINT) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


class SlowRuntime(rpc.RuntimeServiceServicer):
    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        time.sleep(SLOW)
        return pb.VersionResponse(version="0.1.0", runtime_name="stand-in", runtime_version="1",
                                  runtime_api_version="v1")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[CRIClient]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_RuntimeServiceServicer_to_server(SlowRuntime(), server)
    sock = tmp_path / "cri.sock"
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    cri = CRIClient(str(sock), timeout=5)
    yield cri
    cri.close()
    server.stop(0)


def test_signal_outside_a_shielded_section_raises_at_once(handlers: None) -> None:
    signal_later(0.05)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        time.sleep(2)
    assert time.monotonic() - started < 1


def test_signal_inside_is_raised_on_leaving(handlers: None) -> None:
    signal_later(0.05, signal.SIGTERM)
    left = []
    with pytest.raises(KeyboardInterrupt, match="signal 15"), interrupt.shielded():
        time.sleep(0.3)  # the signal arrives here and waits
        left.append(time.monotonic())
    assert left, "the section was cut short"


def test_signal_replaces_an_error_on_its_way_out(handlers: None) -> None:
    signal_later(0.05)
    with pytest.raises(KeyboardInterrupt) as caught, interrupt.shielded():
        time.sleep(0.3)
        raise ValueError("the call failed")
    assert isinstance(caught.value.__context__, ValueError)


def test_cleanup_is_not_cut_short(handlers: None) -> None:
    signal_later(0.05)
    with interrupt.shielded(deliver=False):
        time.sleep(0.3)
    time.sleep(0.05)  # nothing left pending
    assert interrupt._State.pending is None


def test_nested_sections_deliver_once_at_the_outermost(handlers: None) -> None:
    signal_later(0.05)
    inner_done = []
    with pytest.raises(KeyboardInterrupt), interrupt.shielded():
        with interrupt.shielded():
            time.sleep(0.3)
        inner_done.append(True)
    assert inner_done


def test_a_cri_call_completes_and_the_channel_keeps_working(handlers: None, client: CRIClient) -> None:
    """The regression: a Ctrl-C inside gRPC's own locking left the channel's lock held; the run's background
    sandbox removals then waited on it forever and the run never exited."""
    signal_later(SLOW / 2)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as caught:
        client.version()
    assert time.monotonic() - started >= SLOW * 0.9
    where = [(Path(e.path).name, e.name) for e in caught.traceback]
    assert where[-2:] == [("client.py", "call"), ("interrupt.py", "__exit__")], where  # not inside gRPC's code
    with futures.ThreadPoolExecutor(max_workers=2) as pool:  # other threads, as the cleanup pool does
        answers = [pool.submit(client.version) for _ in range(2)]
        assert [a.result(timeout=5).runtime_name for a in answers] == ["stand-in", "stand-in"]
    assert client.version().runtime_name == "stand-in"


def test_waiting_for_a_future_is_interruptible(handlers: None) -> None:
    future: futures.Future[int] = futures.Future()
    signal_later(0.05)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupt.result(future)
    assert time.monotonic() - started < interrupt.POLL + 0.5
    finisher = threading.Thread(target=future.set_result, args=(7,))
    finisher.start()
    finisher.join(timeout=2)
    assert not finisher.is_alive(), "the future's lock was left held"
    assert interrupt.result(future) == 7


def test_waiting_for_a_future_times_out() -> None:
    future: futures.Future[int] = futures.Future()
    with pytest.raises(TimeoutError, match="not done after"):
        interrupt.result(future, timeout=0.3)
    future.set_exception(TimeoutError("the case's own"))
    with pytest.raises(TimeoutError, match="the case's own"):
        interrupt.result(future)


def test_other_threads_are_not_shielded(handlers: None) -> None:
    depth = []

    def inside() -> None:
        with interrupt.shielded():
            depth.append(interrupt._State.depth)

    worker = threading.Thread(target=inside)
    worker.start()
    worker.join()
    assert depth == [0]
