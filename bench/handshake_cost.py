"""What one WebSocket handshake costs the server, and where that CPU goes.

A fresh `python -m trio_ticker`-equivalent server (this script with `--serve`, which runs the same
`serve_until_signalled` under a step-counting trio instrument and, with `--profile`, cProfile) takes N
connections from this process: TCP connect, upgrade (the full protocol, batching), subscribe, its ack. Only
the server's CPU between the first connect and the last ack counts, so other load on the machine stretches
the wall-clock but hardly the CPU per handshake. Run: `python bench/handshake_cost.py --connections 2000`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from run import ONE_SYMBOL_ON_PORT_0, reference_loop_ms, wait_for_serving  # bench/run.py

from trio_ticker.protocol.dialects import FULL_PROTOCOL_V1

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PHASE_TIMEOUT = 120.0
SUBSCRIBE = b'{"action":"subscribe","symbols":["BTCUSDT"]}'
MASK = b"\x01\x02\x03\x04"  # clients must mask; any key will do


def masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    masked = bytes(byte ^ MASK[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


def upgrade_request(host: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws?batch=1 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {FULL_PROTOCOL_V1}\r\n\r\n"
    ).encode()


# --- the server side: run in the child process -------------------------------------------------------------


class StepCounter(trio.abc.Instrument):
    """Scheduler steps and tasks spawned, for the steps-per-handshake figure."""

    def __init__(self) -> None:
        self.steps = 0
        self.spawned = 0
        self.by_task: dict[str, int] = defaultdict(int)  # steps by the task's coroutine

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1
        self.by_task[task.coro.cr_code.co_qualname if hasattr(task.coro, "cr_code") else task.name] += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


def serve(report: Path, bare: bool) -> None:
    """Serve until SIGTERM; SIGUSR1 starts a measured window, SIGUSR2 ends it and writes `report` (JSON).

    `bare`: bench/bare_server.py (Hypercorn and the pacer alone, Hypercorn's default config) instead.
    """
    counter = StepCounter()
    start: dict[str, float] = {}

    def begin(*_: object) -> None:
        times = os.times()
        start.update(
            user=times.user, system=times.system, wall=time.monotonic(), steps=counter.steps, spawned=counter.spawned
        )
        counter.by_task.clear()

    def end(*_: object) -> None:
        times = os.times()
        measured = {
            "cpu_seconds": times.user + times.system - start["user"] - start["system"],
            "system_seconds": times.system - start["system"],
            "wall_seconds": time.monotonic() - start["wall"],
            "steps": counter.steps - start["steps"],
            "tasks_spawned": counter.spawned - start["spawned"],
            "steps_by_task": dict(counter.by_task),
        }
        report.with_suffix(".tmp").write_text(json.dumps(measured))
        report.with_suffix(".tmp").rename(report)

    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)
    if bare:
        import bare_server

        options = argparse.Namespace(port=0, interval=60.0, flush_interval=0.05, symbol="BTCUSDT")
        trio.run(bare_server.main, options, instruments=[counter])
        return
    from trio_ticker.__main__ import serve_until_signalled
    from trio_ticker.settings import load_settings

    trio.run(serve_until_signalled, load_settings(), instruments=[counter])


# --- the client side ----------------------------------------------------------------------------------------


async def read_until(sock: trio.socket.SocketType, marker: bytes, buffer: bytes = b"") -> bytes:
    while marker not in buffer:
        data = await sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before {marker!r}")
        buffer += data
    return buffer


async def open_and_subscribe(address: tuple[str, int], held: list[trio.socket.SocketType]) -> None:
    host, port = address
    sock = trio.socket.socket()
    held.append(sock)
    await sock.connect(address)
    await sock.send(upgrade_request(host, port))
    head = await read_until(sock, b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"not upgraded: {head[:60]!r}")
    await sock.send(masked_text_frame(SUBSCRIBE))
    await read_until(sock, b'"subscribed"', head.split(b"\r\n\r\n", 1)[1])


async def handshakes(
    addresses: list[tuple[str, int]], count: int, concurrency: int, spread: float, when_done: Callable[[], None]
) -> None:
    """`count` clients for each address, taking turns (A, B, A, B...), at most `concurrency` in flight (0: each
    at its slot within `spread` seconds); then `when_done()` while they are all still open."""
    held: list[trio.socket.SocketType] = []
    total = count * len(addresses)
    limiter = trio.CapacityLimiter(concurrency or total)
    started = trio.current_time()

    async def one(index: int) -> None:
        if not concurrency:
            await trio.sleep_until(started + spread * index / total)
        async with limiter:
            await open_and_subscribe(addresses[index % len(addresses)], held)

    with trio.fail_after(PHASE_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for index in range(total):
                nursery.start_soon(one, index)
    when_done()
    for sock in held:
        sock.close()


class Server:
    """One server process of a side; `code`: a tree whose trio_ticker it imports instead of this one."""

    def __init__(self, args: argparse.Namespace, code: Path | None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="handshake-cost-"))
        self.report = self.workdir / "report.json"
        env = dict(
            os.environ,
            **ONE_SYMBOL_ON_PORT_0,
            DEMO_MODE="true",
            TICKER_DEMO_INTERVAL="60",  # the handshakes alone: almost no tick goes out while they are measured
            TICKER_DATA_DIR=str(self.workdir / "data"),
        )
        if code is not None:
            env["PYTHONPATH"] = str(code)
        self.log_path = self.workdir / "server.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.report), "--server", args.server],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            host, port = wait_for_serving(self.process, self.log_path).removeprefix("http://").rsplit(":", 1)
        except RuntimeError:
            self.stop()
            raise
        self.address = host, int(port)

    def read_report(self) -> dict[str, Any]:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while not self.report.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        measured: dict[str, Any] = json.loads(self.report.read_text())
        self.report.unlink()
        return measured

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(servers: list[Server], args: argparse.Namespace, profile: Path | None) -> list[dict[str, Any]]:
    """One window over every server at once: the same machine speed for each side."""
    for server in servers:
        server.process.send_signal(signal.SIGUSR1)
    sampler = None
    if profile is not None:  # py-spy samples the server from outside: no cost inside it, only on-CPU stacks
        sampler = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(servers[0].process.pid),
             "--rate", "1000", "--format", "raw", "--output", str(profile), "--duration", str(int(PHASE_TIMEOUT))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # py-spy attaches
    time.sleep(0.2)  # the handlers run at each server's next bytecode; nothing is connecting yet
    began = time.monotonic()
    wall: list[float] = []

    def end_window() -> None:
        wall.append(time.monotonic() - began)
        for server in servers:
            server.process.send_signal(signal.SIGUSR2)
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
            sampler.wait(PHASE_TIMEOUT)

    addresses = [server.address for server in servers]
    trio.run(handshakes, addresses, args.connections, args.concurrency, args.spread, end_window)
    reports = [server.read_report() for server in servers]
    for measured in reports:
        measured["client_wall_seconds"] = wall[0]
    return reports


def summarize_profile(path: Path, top: int) -> list[str]:
    """py-spy's on-CPU samples: the share of each area (where the innermost Python frame lives), then the
    functions that were innermost most often, and those most often on the stack at all."""
    own: dict[str, int] = defaultdict(int)
    by_area: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if "_thread_cache.py" in stack:  # trio's worker threads (the candle store's), waiting: not the server's loop
            continue
        total += count
        own[frames[-1]] += count
        by_area[area(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["py-spy recorded no samples"]
    lines = [f"{total} on-CPU samples; by the innermost frame's area:"]
    for name, count in sorted(by_area.items(), key=lambda item: -item[1]):
        lines.append(f"  {name:<28} {100 * count / total:5.1f} %")
    lines.append(f"top {top} innermost functions:")
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * count / total:5.1f} %  {short(frame)}")
    lines.append(f"top {top} on the stack (inclusive):")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * count / total:5.1f} %  {short(frame)}")
    return lines


LIBRARIES = ("hypercorn", "trio", "wsproto", "h11", "quart", "werkzeug", "logging", "outcome", "sniffio")
OURS = ("edge", "delivery", "protocol", "history", "ingest", "sources", "catalogue")  # py-spy drops trio_ticker/


def area(frame: str) -> str:
    """`function (path:line)`, py-spy's frame format; paths are shortened to the package."""
    filename = frame.rpartition("(")[2]
    top = filename.split("/", 1)[0] if "/" in filename else ""
    if top in OURS:
        return f"trio_ticker/{top}"
    if top in LIBRARIES:
        return top
    if filename.startswith(("logs.py", "errors.py", "app.py", "model.py", "settings.py")):
        return f"trio_ticker/{filename.split(':')[0]}"
    return "other (stdlib, generated)"


def short(filename: str) -> str:
    return re.sub(r"/[^ ]*/(site-packages|lib/python3\.\d+)/", "", filename)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # internal: the server process, its report
    parser.add_argument("--server", choices=("ticker", "bare"), default="ticker", help="bare: bench/bare_server.py")
    parser.add_argument("--steps", action="store_true", help="print the steps per handshake of each kind of task")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50, help="handshakes in flight; 0: a storm within --spread")
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers, one measurement each")
    parser.add_argument("--profile", action="store_true", help="then one round of this tree sampled by py-spy")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--against",
        type=Path,
        help="a tree with another trio_ticker (git archive REV trio_ticker | tar -x -C DIR): "
        "each round measures a server of each at once, the clients taking turns",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, bare=args.server == "bare")
        return 0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65_536)), hard))
    sides = [("this tree", None)] + ([("against", args.against)] if args.against else [])
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in sides}
    for round_number in range(args.rounds + (1 if args.profile else 0)):
        profiled = args.profile and round_number == args.rounds
        measured_sides = sides[:1] if profiled else sides
        reference = reference_loop_ms()
        servers = [Server(args, code) for _, code in measured_sides]
        try:
            time.sleep(1.0)  # startup settles (the demo's generated day is written)
            profile = servers[0].workdir / "py-spy.txt" if profiled else None
            reports = measure(servers, args, profile)
        finally:
            for server in servers:
                server.stop()
        reference = (reference + reference_loop_ms()) / 2
        for (name, _), r in zip(measured_sides, reports, strict=True):
            r["reference_ms"] = reference
            if profile is not None:
                r["profile"] = str(profile)
            results[name].append(r)
            print(f"{name}: {round_summary(r, round_number, args)}", flush=True)
            if args.steps:
                for task, steps in sorted(r["steps_by_task"].items(), key=lambda item: -item[1])[:15]:
                    if steps >= args.connections / 100:
                        print(f"  {steps / args.connections:5.2f} steps  {task}")
        if profile is not None:
            print("\n".join(summarize_profile(profile, args.top)))
    for name, runs in results.items():
        plain = [r for r in runs if "profile" not in r]
        if plain:
            per = sorted(1e6 * r["cpu_seconds"] / args.connections for r in plain)
            print(
                f"{name}: server CPU per handshake median {statistics.median(per):.0f} µs "
                f"(min {per[0]:.0f}, max {per[-1]:.0f}) over {len(per)} rounds"
            )
    if args.against:
        pairs = [
            b["cpu_seconds"] / a["cpu_seconds"] for a, b in zip(*results.values(), strict=True) if "profile" not in a
        ]
        if pairs:
            print(
                f"against / this tree, paired in the same windows: median {statistics.median(pairs):.3f} "
                f"(min {min(pairs):.3f}, max {max(pairs):.3f})"
            )
    return 0


def round_summary(r: dict[str, Any], round_number: int, args: argparse.Namespace) -> str:
    return (
        f"{'profiled ' if 'profile' in r else ''}round {round_number + 1}: {args.connections} handshakes, "
        f"{1e6 * r['cpu_seconds'] / args.connections:.0f} µs server CPU each "
        f"({100 * r['system_seconds'] / r['cpu_seconds']:.0f} % in the kernel), "
        f"{r['steps'] / args.connections:.1f} steps, {r['tasks_spawned'] / args.connections:.1f} tasks; "
        f"wall {r['client_wall_seconds']:.2f} s ({args.connections / r['client_wall_seconds']:.0f}/s); "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, ref loop {r['reference_ms']:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
