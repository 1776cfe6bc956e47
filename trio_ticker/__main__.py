"""`python -m trio_ticker`: serve the app in-process with a shutdown we own.

Unlike the bare `hypercorn` command, SIGTERM/SIGINT here stops accepting at once, closes every
WebSocket client with 1001 (going away), and at the graceful deadline resets whatever is still
open (a peer that stopped reading pins its send), so the process exits within that timeout.
`--workers N` runs N such processes on one socket and restarts any that exits (trio_ticker/workers.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from functools import partial

import trio
from hypercorn.config import Sockets

from .app import assemble
from .edge.hypercorn_server import hypercorn_config, serve
from .process.logs import configure_logging
from .process.workers import MAX_WORKERS, run_worker, run_workers
from .protocol.errors import CloseCode
from .settings import ConfigError, Settings, load_settings

log = logging.getLogger("trio_ticker.main")

EXIT_MARGIN_SECONDS = 0.5
"""What the lifespan shutdown and the process exit may take after the last connections are reset."""


async def serve_until_signalled(
    settings: Settings,
    *,
    sockets: Sockets | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGTERM/SIGINT, then close clients with 1001 and stop; reports the bound URLs.

    `sockets`: already listening sockets to serve on (a `--workers` worker's); by default it binds TICKER_HOST:PORT.
    """
    assembly = assemble(settings)
    app, hub, connections = assembly.app, assembly.hub, assembly.connections
    config = hypercorn_config(settings)
    stop_serving = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(serve, app, settings, config, shutdown_trigger=stop_serving.wait, sockets=sockets)
            )
            log.info("event=serving urls=%s", ",".join(binds))
            task_status.started(binds)
            async for signum in signals:
                log.info(
                    "event=shutdown signal=%s clients=%d",
                    signal.Signals(signum).name,
                    hub.statistics().clients,
                )
                deadline = trio.current_time() + settings.graceful_timeout
                connections.stop_accepting()  # a socket accepted from now on is reset at once
                # Hypercorn closes its listeners now and cancels its connections at the deadline (config's
                # graceful timeout); but a send pinned by a peer that stopped reading ignores cancellation.
                stop_serving.set()
                hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
                with trio.move_on_at(deadline - min(EXIT_MARGIN_SECONDS, settings.graceful_timeout / 2)):
                    await hub.wait_no_clients()
                    await connections.wait_no_open_sockets()  # close frames sent, in-flight HTTP answered
                stuck = hub.statistics().clients
                # Reset what is left: pinned sends end, and closed WebSockets' ping loops stop sleeping.
                aborted = connections.abort_all()
                log.log(
                    logging.WARNING if stuck else logging.INFO,
                    "event=shutdown_reset connections=%d clients=%d",
                    aborted,
                    stuck,
                )
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trio_ticker", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "ingest"),
        default="serve",
        help="serve: HTTP and WebSocket (default); ingest: only run the sources for the workers, through Redis",
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        metavar="N",
        help="serve from N worker processes on one socket, each restarted if it exits (N > 1 needs "
        "TICKER_REDIS_URL); without it, serve in this process",
    )
    parser.add_argument(
        "--listen-fd",
        type=int,
        action="append",
        default=[],
        metavar="FD",
        help="serve on this inherited listening socket instead of binding TICKER_HOST:TICKER_PORT "
        "(what --workers gives each worker; systemd socket activation passes 3)",
    )
    parser.add_argument("--supervisor-fd", type=int, help=argparse.SUPPRESS)  # set by --workers for its workers
    args = parser.parse_args(argv)
    command = args.command
    if command == "ingest" and (args.workers is not None or args.listen_fd):
        parser.error("--workers and --listen-fd apply to serve, not ingest")
    if args.workers is not None and args.listen_fd:
        parser.error("--workers opens its own socket: give it no --listen-fd")
    try:
        settings = load_settings()
    except ConfigError as error:
        sys.stderr.write(f"trio_ticker: {error}\n")
        return 2
    if command == "ingest":
        return run_ingest(settings)
    if args.workers is not None:
        return run_workers(settings, args.workers)
    if args.listen_fd:
        return run_worker(settings, args.listen_fd, args.supervisor_fd, serve_until_signalled)
    trio.run(serve_until_signalled, settings)
    return 0


def worker_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_WORKERS}")
    return count


def run_ingest(settings: Settings) -> int:
    if settings.redis_url is None:
        sys.stderr.write("trio_ticker: `ingest` publishes to Redis: set TICKER_REDIS_URL (docs/configuration.md)\n")
        return 2
    from .process.ingest_service import run_ingest_process  # only scale-out deployments import coredis

    configure_logging(settings.log_level)
    trio.run(run_ingest_process, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
