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

DEADLINE = 30.0  # how long a test waits for a signal it sent to be handled (a loaded runner is slow, not wrong)


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupt.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    interrupt._State.pending = None


def send(signum: signal.Signals = signal.SIGINT) -> None:
    """The signal, to this process, now: Python runs the handler in the main thread before its next line."""
    os.kill(os.getpid(), signum)


def noted() -> bool:
    """Wait until the handler has noted the signal sent inside a shielded section."""
    deadline = time.monotonic() + DEADLINE
    while interrupt._State.pending is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return interrupt._State.pending is not None


class SignallingRuntime(rpc.RuntimeServiceServicer):
    """Answers Version only after it has sent the suite's process a SIGINT and the handler has noted it: the
    signal arrives while the main thread is inside the CRI call, however loaded the machine is."""

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        if threading.current_thread() is not threading.main_thread() and not getattr(self, "sent", False):
            self.sent = True
            send()
            noted()
        return pb.VersionResponse(version="0.1.0", runtime_name="stand-in", runtime_version="1",
                                  runtime_api_version="v1")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[CRIClient]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_RuntimeServiceServicer_to_server(SignallingRuntime(), server)
    sock = tmp_path / "cri.sock"
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    cri = CRIClient(str(sock), timeout=DEADLINE)
    yield cri
    cri.close()
    server.stop(0)


def test_signal_outside_a_shielded_section_raises_at_once(handlers: None) -> None:
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        send()
        time.sleep(DEADLINE)  # not reached: the handler raises before


def test_signal_inside_is_raised_on_leaving(handlers: None) -> None:
    left = []
    with pytest.raises(KeyboardInterrupt, match="signal 15"), interrupt.shielded():
        send(signal.SIGTERM)
        assert noted()  # the signal arrived here, and waits
        left.append(True)
    assert left, "the section was cut short"


def test_signal_replaces_an_error_on_its_way_out(handlers: None) -> None:
    with pytest.raises(KeyboardInterrupt) as caught, interrupt.shielded():
        send()
        assert noted()
        raise ValueError("the call failed")
    assert isinstance(caught.value.__context__, ValueError)


def test_cleanup_is_not_cut_short(handlers: None) -> None:
    with interrupt.shielded(deliver=False):
        send()
        assert noted()
    assert interrupt._State.pending is None  # dropped, not kept for later


def test_nested_sections_deliver_once_at_the_outermost(handlers: None) -> None:
    inner_done = []
    with pytest.raises(KeyboardInterrupt), interrupt.shielded():
        with interrupt.shielded():
            send()
            assert noted()
        inner_done.append(True)
    assert inner_done


def test_a_cri_call_completes_and_the_channel_keeps_working(handlers: None, client: CRIClient) -> None:
    """The regression: a Ctrl-C inside gRPC's own locking left the channel's lock held; the run's background
    sandbox removals then waited on it forever and the run never exited."""
    with pytest.raises(KeyboardInterrupt) as caught:
        client.version()  # the stand-in signals while this call is in flight, and answers once it was noted
    where = [(Path(e.path).name, e.name) for e in caught.traceback]
    assert where[-2:] == [("client.py", "call"), ("interrupt.py", "__exit__")], where  # not inside gRPC's code
    with futures.ThreadPoolExecutor(max_workers=2) as pool:  # other threads, as the cleanup pool does
        answers = [pool.submit(client.version) for _ in range(2)]
        assert [a.result(timeout=DEADLINE).runtime_name for a in answers] == ["stand-in", "stand-in"]
    assert client.version().runtime_name == "stand-in"


def test_waiting_for_a_future_is_interruptible(handlers: None) -> None:
    future: futures.Future[int] = futures.Future()
    sender = threading.Thread(target=send)  # while the main thread waits on the future
    with pytest.raises(KeyboardInterrupt):
        sender.start()
        interrupt.result(future)
    sender.join(timeout=DEADLINE)
    finisher = threading.Thread(target=future.set_result, args=(7,))
    finisher.start()
    finisher.join(timeout=DEADLINE)
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
