"""`python -m trio_ticker --workers N`: one listening socket, N worker processes, a worker that dies restarted.

The supervisor binds once and hands the socket to every worker (`--listen-fd`); it restarts a worker that exits
with the sources' `RetryPolicy`, and on SIGTERM/SIGINT stops each worker with SIGTERM (its 1001 shutdown).
Each worker holds one end of a socketpair: it writes its ready line there, and end-of-stream means the supervisor
is gone (so no worker outlives it holding the port).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import trio
from hypercorn.config import Sockets, SocketTypeError
from hypercorn.utils import repr_socket_addr

from ..edge.hypercorn_server import hypercorn_config, open_sockets
from ..settings import Settings
from ..sources.retry import Backoff, Jitter, RetryPolicy
from .logs import configure_logging

log = logging.getLogger(__name__)

RESTART_POLICY = RetryPolicy(initial=1.0, maximum=30.0, healthy_after=30.0)
"""A worker that exits is restarted within 1 s (full jitter); while it keeps exiting within 30 s of its start the
ceiling doubles up to 30 s, and one that ran 30 s starts the count over."""
CRASH_LOOP_FAILURES = 3
"""From this many quick exits in a row a worker's exits are logged at ERROR (it is crash-looping)."""
EXIT_GRACE = 3.0
"""Seconds a stopping worker gets beyond TICKER_GRACEFUL_TIMEOUT (HTTP drain, lifespan shutdown) before SIGKILL."""
READY_LINE = b"ready\n"
MAX_WORKERS = 64


class WorkerStartFailed(Exception):
    """A first worker exited before it served: the supervisor cannot start."""


class WorkerProcess(Protocol):
    """One running worker, as the pool sees it (a subprocess; an in-memory fake in the timing tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait_ready(self) -> bool:
        """True once the worker serves; False if it exited first."""

    async def wait(self) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    async def aclose(self) -> None: ...


SpawnWorker = Callable[[], Awaitable[WorkerProcess]]


@dataclass(frozen=True, slots=True)
class WorkerEnded:
    pid: int  # 0: it could not even be spawned
    status: str  # its exit status as `describe` gives it
    served: bool  # it became ready before it ended


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    serving: tuple[int, ...]  # the pids of the workers that serve now
    restarts: int  # workers started to replace one that exited


class WorkerPool:
    """`count` workers, each replaced when it exits. Cancelling `run` stops them: SIGTERM, then SIGKILL."""

    def __init__(
        self,
        spawn: SpawnWorker,
        count: int,
        *,
        stop_timeout: float,
        policy: RetryPolicy = RESTART_POLICY,
        jitter: Jitter | None = None,
    ) -> None:
        self._spawn = spawn
        self._count = count
        self._stop_timeout = stop_timeout
        self._policy = policy
        self._jitter = jitter or random.Random()
        self._running: dict[int, WorkerProcess] = {}  # slot -> its worker, from spawn until it has exited
        self._serving: dict[int, int] = {}  # slot -> pid, once its worker is ready
        self._restarts = 0

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(tuple(self._serving[slot] for slot in sorted(self._serving)), self._restarts)

    def kill(self) -> None:
        """SIGKILL every worker now (a second stop signal: do not wait for their graceful shutdown)."""
        for worker in self._running.values():
            if worker.returncode is None:
                worker.kill()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Started once every first worker serves; raises WorkerStartFailed if one exits before it does."""
        async with trio.open_nursery() as nursery:
            async with trio.open_nursery() as starting:  # the first workers start side by side
                for slot in range(self._count):
                    starting.start_soon(nursery.start, self._keep_running, slot)
            task_status.started()

    async def _keep_running(self, slot: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        schedule = Backoff(self._policy, self._jitter)  # this slot's exits in a row, reset by a healthy run
        starting: trio.TaskStatus[None] | None = task_status
        while True:
            began = trio.current_time()
            ended = await self._run_worker(slot, starting)
            if starting is not None and not ended.served:
                log.error("event=worker_start_failed slot=%d pid=%d status=%s", slot, ended.pid, ended.status)
                raise WorkerStartFailed(f"worker {slot} ended with {ended.status} before it served")
            starting = None
            schedule.ended_after(trio.current_time() - began)
            schedule.failed()
            delay = schedule.delay()
            log.log(
                logging.ERROR if schedule.failures >= CRASH_LOOP_FAILURES else logging.WARNING,
                "event=worker_exited slot=%d pid=%d status=%s served=%s failures=%d restart_in=%.2f",
                slot,
                ended.pid,
                ended.status,
                str(ended.served).lower(),
                schedule.failures,
                delay,
            )
            await trio.sleep(delay)
            self._restarts += 1

    async def _run_worker(self, slot: int, starting: trio.TaskStatus[None] | None) -> WorkerEnded:
        """One worker from spawn to exit; `starting`, if given, is told once it serves."""
        try:
            worker = await self._spawn()
        except OSError as error:  # out of memory, processes or fds: no worker, a failure like any other
            return WorkerEnded(0, f"not_started({error.strerror})", served=False)
        self._running[slot] = worker
        served = False
        try:
            served = await worker.wait_ready()
            if served:
                self._serving[slot] = worker.pid
                log.info("event=worker_serving slot=%d pid=%d", slot, worker.pid)
                if starting is not None:
                    starting.started()
            status = await worker.wait()
        finally:
            self._serving.pop(slot, None)
            with trio.CancelScope(shield=True):
                await self._stop(slot, worker)
            del self._running[slot]
        return WorkerEnded(worker.pid, describe(status), served)

    async def _stop(self, slot: int, worker: WorkerProcess) -> None:
        """Stop `worker` unless it has exited: SIGTERM, and SIGKILL if it is not gone within the stop timeout."""
        if worker.returncode is None:
            worker.terminate()
            with trio.move_on_after(self._stop_timeout) as waited:
                await worker.wait()
            if waited.cancelled_caught:
                log.warning("event=worker_killed slot=%d pid=%d after=%.1f", slot, worker.pid, self._stop_timeout)
                worker.kill()
            status = await worker.wait()
            log.info("event=worker_stopped slot=%d pid=%d status=%s", slot, worker.pid, describe(status))
        await worker.aclose()


def describe(returncode: int) -> str:
    """A worker's exit status for the log: `0`, `1`, or the signal that ended it (`SIGKILL`)."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-returncode).name
    return str(returncode)


# -- the real processes ----------------------------------------------------------------------------


class SpawnedWorker:
    """A `python -m trio_ticker --listen-fd ...` subprocess and the supervisor's end of its socketpair."""

    def __init__(self, process: trio.Process, link: trio.SocketStream) -> None:
        self._process = process
        self._link = link

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait_ready(self) -> bool:
        received = b""
        with contextlib.suppress(trio.BrokenResourceError):
            while not received.endswith(b"\n"):
                chunk = await self._link.receive_some(len(READY_LINE))
                if not chunk:
                    break
                received += chunk
        return received == READY_LINE

    async def wait(self) -> int:
        return await self._process.wait()

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()

    async def aclose(self) -> None:
        await self._link.aclose()


async def spawn_worker(listen_fds: Sequence[int]) -> SpawnedWorker:
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-m", "trio_ticker", "serve"]
    command += [f"--listen-fd={fd}" for fd in listen_fds] + [f"--supervisor-fd={theirs.fileno()}"]
    try:
        # Its own process group: a terminal's Ctrl-C reaches only the supervisor, which stops each worker once
        # (a second signal during a worker's graceful shutdown would end it at once).
        process = await trio.lowlevel.open_process(command, pass_fds=(*listen_fds, theirs.fileno()), process_group=0)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return SpawnedWorker(process, trio.SocketStream(trio.socket.from_stdlib_socket(ours)))


def open_listening_sockets(settings: Settings) -> Sockets:
    """The supervisor's sockets, bound once to TICKER_HOST:TICKER_PORT with the server's socket options."""
    return open_sockets(hypercorn_config(settings), settings.send_stall_timeout, settings.send_buffer)


def urls(sockets: Sockets) -> list[str]:
    return [f"http://{repr_socket_addr(sock.family, sock.getsockname())}" for sock in sockets.insecure_sockets]


async def supervise_workers(
    settings: Settings,
    count: int,
    sockets: Sockets,
    *,
    spawn: SpawnWorker | None = None,
    task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep `count` workers serving on `sockets` until SIGTERM/SIGINT; a second signal kills them at once."""
    listen_fds = [sock.fileno() for sock in sockets.insecure_sockets]
    pool = WorkerPool(
        spawn or partial(spawn_worker, listen_fds), count, stop_timeout=settings.graceful_timeout + EXIT_GRACE
    )
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            serving = trio.CancelScope()
            nursery.start_soon(_stop_on_signals, signals, serving, pool)
            with serving:
                async with trio.open_nursery() as pool_nursery:
                    await pool_nursery.start(pool.run)
                    log.info("event=serving urls=%s workers=%d", ",".join(urls(sockets)), count)
                    task_status.started(pool)
            nursery.cancel_scope.cancel()  # every worker has stopped: stop listening for signals


async def _stop_on_signals(signals: AsyncIterator[int], serving: trio.CancelScope, pool: WorkerPool) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if not serving.cancel_called:
            log.info("event=shutdown signal=%s workers=%d", name, len(pool.statistics().serving))
            serving.cancel()
        else:
            log.warning("event=shutdown_forced signal=%s", name)
            pool.kill()


def run_workers(settings: Settings, count: int) -> int:
    """`python -m trio_ticker --workers N`: the exit status (0 once stopped by a signal)."""
    if count > 1 and settings.redis_url is None:
        sys.stderr.write(
            f"trio_ticker: --workers {count} needs TICKER_REDIS_URL: without Redis each worker would run its own "
            "sources, with its own prices and seqs (docs/configuration.md, Several workers)\n"
        )
        return 2
    configure_logging(settings.log_level)
    try:
        sockets = open_listening_sockets(settings)
    except OSError as error:
        sys.stderr.write(f"trio_ticker: cannot listen on {settings.host}:{settings.port}: {error.strerror}\n")
        return 1
    start_failed = False
    try:
        trio.run(supervise_workers, settings, count, sockets)
    except* WorkerStartFailed:
        start_failed = True  # logged by the pool, with the worker's own error above it
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()
    return 1 if start_failed else 0


# -- inside a worker -------------------------------------------------------------------------------


class ServeUntilSignalled(Protocol):
    async def __call__(
        self, settings: Settings, *, sockets: Sockets | None = ..., task_status: trio.TaskStatus[list[str]] = ...
    ) -> None: ...


def run_worker(
    settings: Settings, listen_fds: Sequence[int], supervisor_fd: int | None, serve: ServeUntilSignalled
) -> int:
    """`python -m trio_ticker --listen-fd FD`: serve on listening sockets this process inherited (from `--workers`,
    or systemd socket activation), with the server's socket options; the exit status."""
    config = hypercorn_config(settings)
    config.bind = [f"fd://{fd}" for fd in listen_fds]
    try:
        sockets = open_sockets(config, settings.send_stall_timeout, settings.send_buffer)
    except (OSError, SocketTypeError) as error:
        fds = ",".join(map(str, listen_fds))
        sys.stderr.write(f"trio_ticker: --listen-fd {fds} is not an inherited listening TCP socket: {error}\n")
        return 2
    trio.run(serve_inherited, settings, sockets, supervisor_fd, serve)
    return 0


async def serve_inherited(
    settings: Settings,
    sockets: Sockets,
    supervisor_fd: int | None,
    serve: ServeUntilSignalled,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on `sockets` until signalled; with a supervisor, tell it once serving and stop if it goes away."""
    async with trio.open_nursery() as nursery:

        async def serve_then_stop_watching(*, task_status: trio.TaskStatus[list[str]]) -> None:
            await serve(settings, sockets=sockets, task_status=task_status)
            nursery.cancel_scope.cancel()

        binds = await nursery.start(serve_then_stop_watching)
        if supervisor_fd is not None:
            nursery.start_soon(_answer_supervisor, supervisor_fd)
        task_status.started(binds)


async def _answer_supervisor(fd: int) -> None:
    """Tell the supervisor this worker serves; once its end closes (it died), shut down as on SIGTERM."""
    link = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=fd)))
    async with link:
        with contextlib.suppress(trio.BrokenResourceError):
            await link.send_all(READY_LINE)
            while await link.receive_some():
                pass  # the supervisor never writes
    log.warning("event=supervisor_gone action=shutdown")
    os.kill(os.getpid(), signal.SIGTERM)
