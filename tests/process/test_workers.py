"""The worker pool on the autojump clock, over in-memory fake workers: exact restart times, the crash-loop
backoff and its reset, a failed start, and stopping (SIGTERM, SIGKILL at the timeout, a second signal)."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import signal
from collections.abc import AsyncIterator, Container, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import pytest
import trio
import trio.testing
from hypercorn.config import Sockets

from tests.support.helpers import make_settings
from tests.support.sources import MaxJitter
from trio_ticker.process.workers import CRASH_LOOP_FAILURES, WorkerPool, WorkerStartFailed, supervise_workers
from trio_ticker.sources.retry import RetryPolicy

POLICY = RetryPolicy(initial=1.0, maximum=30.0, healthy_after=30.0)
STARTUP = 2.0  # seconds a fake worker takes from spawn to serving
STOP_TIMEOUT = 8.0


class FakeWorker:
    """A worker process in memory: serves STARTUP s after spawn (or exits 1 then), exits when the test says."""

    def __init__(self, pid: int, nursery: trio.Nursery, *, serves: bool, exits_after_sigterm: float | None) -> None:
        self.pid = pid
        self.spawned_at = trio.current_time()
        self.signals: list[tuple[str, float]] = []
        self.closed = False
        self.returncode: int | None = None
        self._nursery = nursery
        self._serves = serves
        self._exits_after_sigterm = exits_after_sigterm
        self._exited = trio.Event()

    async def wait_ready(self) -> bool:
        with trio.move_on_at(self.spawned_at + STARTUP):
            await self._exited.wait()
        if self.returncode is None and not self._serves:
            self.exit(1)
        return self.returncode is None

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def exit(self, status: int) -> None:
        if self.returncode is None:
            self.returncode = status
            self._exited.set()

    def terminate(self) -> None:
        self.signals.append(("SIGTERM", trio.current_time()))
        if self._exits_after_sigterm is not None:
            self._nursery.start_soon(self._exit_later, self._exits_after_sigterm)

    def kill(self) -> None:
        self.signals.append(("SIGKILL", trio.current_time()))
        self.exit(-signal.SIGKILL)

    async def aclose(self) -> None:
        self.closed = True

    async def _exit_later(self, delay: float) -> None:
        await trio.sleep(delay)
        self.exit(0)


class FakeSpawner:
    """Spawns FakeWorkers with pids 101, 102, ...; the n-th exits 0.5 s after SIGTERM unless told otherwise."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        never_serving: Container[int] = (),
        ignore_sigterm: Container[int] = (),
        unspawnable: Container[int] = (),
    ) -> None:
        self._nursery = nursery
        self._never_serving = never_serving
        self._ignore_sigterm = ignore_sigterm
        self._unspawnable = unspawnable
        self.workers: list[FakeWorker] = []
        self.refused: list[float] = []

    async def __call__(self) -> FakeWorker:
        if len(self.workers) + len(self.refused) in self._unspawnable:
            self.refused.append(trio.current_time())
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        index = len(self.workers)
        worker = FakeWorker(
            101 + index,
            self._nursery,
            serves=index not in self._never_serving,
            exits_after_sigterm=None if index in self._ignore_sigterm else 0.5,
        )
        self.workers.append(worker)
        return worker

    def spawn_times(self) -> list[float]:
        return [worker.spawned_at for worker in self.workers]


def pool_of(spawner: FakeSpawner, count: int) -> WorkerPool:
    return WorkerPool(spawner, count, stop_timeout=STOP_TIMEOUT, policy=POLICY, jitter=MaxJitter())


@asynccontextmanager
async def running_pool(count: int, **script: Container[int]) -> AsyncIterator[tuple[WorkerPool, FakeSpawner]]:
    """A started pool of fakes for the block; stopped (cancelled) when it ends. The fakes live outside it."""
    async with trio.open_nursery() as fakes:
        spawner = FakeSpawner(fakes, **script)
        pool = pool_of(spawner, count)
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            yield pool, spawner
            nursery.cancel_scope.cancel()
        fakes.cancel_scope.cancel()


@contextmanager
def captured_worker_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The pool's log records (the trio_ticker logger does not propagate once an app configured it)."""
    logger = logging.getLogger("trio_ticker.process.workers")
    logger.addHandler(caplog.handler)
    logger.propagate = False  # caplog's root handler would see each record a second time
    try:
        yield
    finally:
        logger.propagate = True
        logger.removeHandler(caplog.handler)


async def test_a_crashed_worker_is_replaced_after_its_backoff_and_the_others_keep_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_pool(3) as (pool, spawner):
        assert trio.current_time() == STARTUP  # the first workers start side by side
        assert sorted(pool.statistics().serving) == [101, 102, 103]

        await trio.sleep(10)
        spawner.workers[1].exit(-signal.SIGKILL)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(pool.statistics().serving) == [101, 103]
        await trio.sleep(5)
        assert sorted(pool.statistics().serving) == [101, 103, 104]

    replacement = spawner.workers[3]
    assert replacement.spawned_at == 12.0 + POLICY.initial  # one failure: at most `initial` later
    assert pool.statistics().restarts == 1
    assert [worker.signals for worker in spawner.workers[:3]] == [
        [("SIGTERM", 17.0)],  # stopped by the cancel only
        [],
        [("SIGTERM", 17.0)],
    ]


async def test_a_crash_looping_worker_backs_off_up_to_the_cap_and_is_logged_at_error(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with captured_worker_logs(caplog):
        async with running_pool(1, never_serving=range(1, 100)) as (_, spawner):  # only the first one serves
            await trio.sleep(8)
            spawner.workers[0].exit(1)  # at 10 s
            await trio.sleep(200)

    starts = spawner.spawn_times()
    # Each replacement exits STARTUP s after its spawn; the next comes 1, 2, 4 ... 30 s after that exit.
    waits = [later - (earlier + STARTUP) for earlier, later in itertools.pairwise(starts[1:])]
    assert starts[1] == 10.0 + 1.0
    assert waits[:6] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    exits = [record for record in caplog.records if "event=worker_exited" in record.getMessage()]
    assert [record.levelno for record in exits[: CRASH_LOOP_FAILURES + 1]] == [logging.WARNING] * (
        CRASH_LOOP_FAILURES - 1
    ) + [logging.ERROR] * 2
    assert "served=false" in exits[1].getMessage() and "status=1" in exits[1].getMessage()


async def test_a_worker_that_ran_healthy_starts_its_backoff_over(autojump_clock: trio.testing.MockClock) -> None:
    async with running_pool(1, never_serving={1, 2}) as (_, spawner):
        spawner.workers[0].exit(-signal.SIGSEGV)  # failure 1 at 2 s: next in 1 s
        with trio.fail_after(100):
            while len(spawner.workers) < 4:
                await trio.sleep(1)
        # Workers 1 and 2 never served (failures 2 and 3); worker 3 serves for POLICY.healthy_after, then dies.
        await trio.sleep_until(spawner.workers[3].spawned_at + POLICY.healthy_after)
        spawner.workers[3].exit(-signal.SIGKILL)
        await trio.sleep(5)

    died_at = spawner.workers[3].spawned_at + POLICY.healthy_after
    assert spawner.workers[4].spawned_at == died_at + POLICY.initial  # back to the first delay


async def test_a_worker_that_cannot_be_spawned_is_retried_with_backoff(autojump_clock: trio.testing.MockClock) -> None:
    async with running_pool(1, unspawnable={1, 2}) as (pool, spawner):  # e.g. the host is out of processes
        spawner.workers[0].exit(-signal.SIGKILL)  # at 2 s
        await trio.sleep(20)
        assert pool.statistics().serving == (102,)
    assert spawner.refused == [3.0, 5.0]  # 1 s, then 2 s after each refusal
    assert spawner.workers[1].spawned_at == 9.0  # 4 s after the second


async def test_a_first_worker_that_never_serves_fails_the_start_and_stops_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        spawner = FakeSpawner(nursery, never_serving={1})
        pool = pool_of(spawner, 2)
        with pytest.RaisesGroup(WorkerStartFailed, flatten_subgroups=True):
            await pool.run()
        nursery.cancel_scope.cancel()
    assert len(spawner.workers) == 2  # nothing is restarted while starting
    assert spawner.workers[0].signals == [("SIGTERM", STARTUP)]
    assert spawner.workers[0].returncode == 0 and spawner.workers[0].closed
    assert trio.current_time() == STARTUP + 0.5  # it waited for the healthy worker's graceful exit


async def test_a_worker_that_ignores_sigterm_is_killed_at_the_stop_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_pool(2, ignore_sigterm={1}) as (_, spawner):
        await trio.sleep(8)  # stopped at 10 s
    assert spawner.workers[0].signals == [("SIGTERM", 10.0)] and spawner.workers[0].returncode == 0
    assert spawner.workers[1].signals == [("SIGTERM", 10.0), ("SIGKILL", 10.0 + STOP_TIMEOUT)]
    assert all(worker.closed for worker in spawner.workers)
    assert len(spawner.workers) == 2


async def test_the_first_signal_stops_the_workers_gracefully_and_a_second_kills_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = make_settings(graceful_timeout=5.0)
    async with trio.open_nursery() as nursery:
        spawner = FakeSpawner(nursery, ignore_sigterm={0, 1})
        supervise = partial(supervise_workers, settings, 2, Sockets([], [], []), spawn=spawner)
        done = trio.Event()

        async def supervise_then_note(*, task_status: trio.TaskStatus[WorkerPool]) -> None:
            await supervise(task_status=task_status)
            done.set()

        pool = await nursery.start(supervise_then_note)
        assert sorted(pool.statistics().serving) == [101, 102]
        os.kill(os.getpid(), signal.SIGTERM)
        await trio.sleep(3)
        assert [worker.signals for worker in spawner.workers] == [[("SIGTERM", STARTUP)]] * 2
        assert not done.is_set()  # waiting for their graceful exit
        os.kill(os.getpid(), signal.SIGINT)
        with trio.fail_after(1):
            await done.wait()
    assert [worker.signals for worker in spawner.workers] == [[("SIGTERM", STARTUP), ("SIGKILL", STARTUP + 3)]] * 2
    assert len(spawner.workers) == 2
