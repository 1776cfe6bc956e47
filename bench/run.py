"""Run the standard benchmark cases (docs/benchmarks.md) and print one table.

Each case starts a fresh server (`python -m trio_ticker`, or the naive baseline) on 127.0.0.1:0, runs
bench/loadgen.mjs against it, samples the server's CPU and RSS over the measured window, and stops it.
Every wait is bounded. `python bench/run.py --quick` is the smoke run the tests use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from trio_ticker.protocol.dialects import FULL_PROTOCOL_V1

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 15.0


@dataclass
class Case:
    name: str
    server: str  # "ticker", "naive" or "bare"
    clients: int
    rate: float  # ticks per second on the one symbol
    batch: bool = True
    stalled: int = 0
    idle: bool = False  # memory case: report RSS per connection
    deflate: bool = False  # clients offer permessage-deflate, as browsers do (Hypercorn always accepts it)
    storm: int = 0  # clients that open within half a second once the others stream, and subscribe at once
    churn: int = 0  # connect / subscribe / leave cycles per round (no streaming clients), `rounds` rounds
    rounds: int = 3
    dialect: str = "full"  # "prototype": plain /ws, one price object per frame (single-frame only)
    resume: int = 0  # more clients, unmeasured: batching, they drop together and reconnect with recovery
    resume_every: float = 0.0  # seconds between their drops during the window (0: they never drop)
    resume_plain: bool = False  # they reconnect without `since`: the same handshakes, a snapshot instead of a replay
    warmup: float | None = None  # seconds, when the case needs longer than --warmup
    duration: float | None = None  # measured seconds, when the case needs longer than --duration
    env: dict[str, str] = field(default_factory=dict)


STANDARD_CASES = [
    Case("ticker batch 1000x50", "ticker", 1000, 50),
    Case("naive 1000x50", "naive", 1000, 50),
    Case("ticker batch 3000x20", "ticker", 3000, 20),
    Case("naive 3000x20", "naive", 3000, 20),
    # The floor: Hypercorn and the same flush pacer with no application (bare_server.py), next to the batch case it
    # bounds; trio_ticker's frames/s over this one's is machine-speed independent.
    Case("bare 3000x20", "bare", 3000, 20),
    Case("ticker single 1000x50", "ticker", 1000, 50, batch=False),
    Case("ticker single 3000x20", "ticker", 3000, 20, batch=False),
    # The same two cases without candles (TICKER_HISTORY=off): with the store on, frames/s and p99 stay within 5 %.
    Case("ticker batch 1000x50 history off", "ticker", 1000, 50, env={"TICKER_HISTORY": "off"}),
    Case("ticker batch 3000x20 history off", "ticker", 3000, 20, env={"TICKER_HISTORY": "off"}),
    # The prototypes' dialect is single-frame: it must cost no more per frame than "ticker single 1000x50".
    Case("ticker prototype 1000x50", "ticker", 1000, 50, batch=False, dialect="prototype"),
    # Measured first without the stalled clients (--duration), then from when they stop reading until the default
    # TICKER_WS_READ_TIMEOUT (40 s) has closed them, plus 10 s.
    Case("ticker batch 1000x50 +10 stalled", "ticker", 1000, 50, stalled=10, duration=50),
    Case("ticker idle 10000 (1 tick/10 s)", "ticker", 10_000, 0.1, idle=True),
    # Browsers always offer permessage-deflate and Hypercorn always accepts it: the same cases as browsers see them.
    Case("ticker batch 1000x50 deflate", "ticker", 1000, 50, deflate=True),
    Case("ticker idle 10000 deflate", "ticker", 10_000, 0.1, idle=True, deflate=True),
    # A reconnect storm (every browser after a restart or a network blip) while 1 000 clients stream at 2 ticks/s.
    Case("ticker storm 5000 +1000 streaming", "ticker", 1000, 2, storm=5000),
    Case("ticker storm 2000 +1000 streaming", "ticker", 1000, 2, storm=2000),
    # What a 5 000-client storm leaves behind: 6 000 clients at 2 ticks/s, and the floor (Hypercorn alone) there.
    Case("ticker batch 6000x2", "ticker", 6000, 2),
    Case("bare 6000x2", "bare", 6000, 2),
    # Recovery: 500 clients stream (measured) beside 500 that stay connected, then beside 500 that drop together
    # every 5 s, stay away 2 s and reconnect at once with `since` (each replay ~40 ticks). Target: p99 within 20 %.
    Case("ticker recovery 500 +500 staying", "ticker", 500, 20, resume=500, duration=30),
    Case("ticker recovery 500 +500 reconnecting", "ticker", 500, 20, resume=500, resume_every=5.0, duration=30),
    # The same reconnects with a plain subscribe (a snapshot each): what the handshakes cost, apart from the replays.
    Case(
        "ticker recovery 500 +500 reconnecting plain",
        "ticker",
        500,
        20,
        resume=500,
        resume_every=5.0,
        resume_plain=True,
        duration=30,
    ),
    # The same three at 5 ticks/s, where the server has room to spare (about 60 % of a core while they stay).
    Case("ticker recovery 500 +500 staying 5/s", "ticker", 500, 5, resume=500, duration=30),
    Case("ticker recovery 500 +500 reconnecting 5/s", "ticker", 500, 5, resume=500, resume_every=5.0, duration=30),
    Case(
        "ticker recovery 500 +500 reconnecting plain 5/s",
        "ticker",
        500,
        5,
        resume=500,
        resume_every=5.0,
        resume_plain=True,
        duration=30,
    ),
    # Both again with every client offering permessage-deflate, as browsers do (Hypercorn always accepts it).
    Case("ticker recovery 500 +500 staying deflate", "ticker", 500, 20, resume=500, deflate=True, duration=30),
    Case(
        "ticker recovery 500 +500 reconnecting deflate",
        "ticker",
        500,
        20,
        resume=500,
        resume_every=5.0,
        deflate=True,
        duration=30,
    ),
    # Churn: what the server holds (sockets, memory) after 3 rounds of 5 000 connect / subscribe / leave cycles.
    Case("ticker churn 5000 x3", "ticker", 0, 2, churn=5000),
]
QUICK_READ_TIMEOUT = {"TICKER_WS_PING_INTERVAL": "0.5", "TICKER_WS_READ_TIMEOUT": "1.5"}  # stalled closed in seconds
QUICK_CASES = [
    Case("ticker batch 5x20", "ticker", 5, 20),
    Case("ticker single 5x20", "ticker", 5, 20, batch=False),
    Case("ticker prototype 5x20", "ticker", 5, 20, batch=False, dialect="prototype"),
    Case("naive 5x20", "naive", 5, 20),
    Case("bare 5x20", "bare", 5, 20),
    Case("ticker batch 5x20 +2 stalled", "ticker", 5, 20, stalled=2, duration=3, env=QUICK_READ_TIMEOUT),
    Case("ticker storm 50 +5 streaming", "ticker", 5, 20, storm=50),
    Case("ticker recovery 5 +5 reconnecting", "ticker", 5, 20, resume=5, resume_every=2.5, duration=5),
    Case("ticker churn 100 x2", "ticker", 0, 20, churn=100, rounds=2),
]


ONE_SYMBOL_ON_PORT_0 = {
    "TICKER_HOST": "127.0.0.1",
    "TICKER_PORT": "0",
    "TICKER_STOCK_SYMBOLS": "",
    "TICKER_CRYPTO_SYMBOLS": "BTCUSDT",
    "TICKER_DEFAULT_SYMBOL": "BTCUSDT",
    "TICKER_LOG_LEVEL": "INFO",
}
"""The bench's trio_ticker settings: BTCUSDT alone, on a free port of 127.0.0.1."""


def server_command(
    case: Case, feed: str, upstream_url: str | None, upstream_env: str
) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if case.server == "naive":
        command = [sys.executable, str(BENCH / "naive_server.py"), "--port", "0", "--interval", str(1 / case.rate)]
        return command, env
    if case.server == "bare":
        command = [sys.executable, str(BENCH / "bare_server.py"), "--port", "0", "--interval", str(1 / case.rate)]
        return command, env
    env.update(
        ONE_SYMBOL_ON_PORT_0,
        # A client that stops reading: evicted 5 s after its outbox fills, its socket aborted by the
        # kernel 5 s after its buffers fill (TCP_USER_TIMEOUT), which frees Hypercorn's pinned send.
        TICKER_SLOW_CLIENT_TIMEOUT="5",
        TICKER_SEND_STALL_TIMEOUT="5",
    )
    if feed == "binance" and upstream_url:
        # The fake upstream streams only: no klines backfill (it would ask the real Binance).
        env.update(DEMO_MODE="false", TICKER_BACKFILL="false", **{upstream_env: upstream_url})
    else:
        env.update(DEMO_MODE="true", TICKER_DEMO_INTERVAL=str(1 / case.rate))
    env.update(case.env)
    return [sys.executable, "-m", "trio_ticker"], env


class Server:
    """A server subprocess: started, its URL read from its log, sampled through /proc, stopped."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self._log = log_path.open("w")
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        self.log_path = log_path
        self.http_url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        try:
            return wait_for_serving(self.process, self.log_path)
        except RuntimeError:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def statistics(self) -> dict[str, int] | None:
        try:
            with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=10) as response:
                return json.load(response)["statistics"]  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError):
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SERVER_STOP_TIMEOUT)
        self._log.close()


def wait_for_serving(process: subprocess.Popen[bytes], log_path: Path) -> str:
    """The URL a starting server logs (`event=serving urls=...`); RuntimeError if it exits or takes too long."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(r"event=serving urls=(http://[^,\s]+)", log_path.read_text())
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"server did not log event=serving within {SERVER_START_TIMEOUT} s")


def reference_loop_ms() -> float:
    """Milliseconds a fixed pure-Python workload takes now: the speed the machine runs at.

    On the 2-core VM the same work took 190 to 320 ms from one minute to the next (host load, not
    visible as steal time), which moves every number in the table; each case reports it.
    """
    start = time.perf_counter()
    for _ in range(10):
        table = {}
        for number in range(200_000):
            table[number % 1000] = str(number)
    return 1000 * (time.perf_counter() - start)


def run_case(case: Case, args: argparse.Namespace, upstream_url: str | None) -> dict[str, object]:
    if case.churn:
        return run_churn_case(case, args)
    reference_before = reference_loop_ms()
    command, env = server_command(case, args.feed, upstream_url, args.upstream_env)
    slug = re.sub(r"[^a-z0-9]+", "-", case.name.lower())
    data_dir = Path(args.logs) / "data" / slug  # every run starts with an empty candle store
    shutil.rmtree(data_dir, ignore_errors=True)
    env["TICKER_DATA_DIR"] = str(data_dir)
    server = Server(command, env, Path(args.logs) / f"{slug}.log")
    try:
        time.sleep(1.0)  # let the server settle before measuring its baseline memory
        rss_before = server.rss_kib()
        url = server.http_url.replace("http://", "ws://") + "/ws" + ("?batch=1" if case.batch else "")
        full_protocol = case.server == "ticker" and case.dialect == "full"  # the baselines know no subprotocol
        warmup = args.warmup if case.warmup is None else case.warmup
        duration = args.duration if case.duration is None else case.duration
        baseline = args.duration if case.stalled else 0.0  # the readers alone, before the stalled clients
        loadgen = subprocess.Popen(
            [
                "node", str(BENCH / "loadgen.mjs"), "--url", url, "--clients", str(case.clients),
                "--stalled", str(case.stalled), "--warmup", str(warmup), "--baseline", str(baseline),
                "--duration", str(duration), "--connect-timeout", str(args.connect_timeout), "--hold",
                *(["--deflate"] if case.deflate else []), "--storm", str(case.storm),
                "--dialect", case.dialect, *(["--subprotocol", FULL_PROTOCOL_V1] if full_protocol else []),
                "--resume", str(case.resume), "--resume-every", str(case.resume_every),
                *(["--resume-plain"] if case.resume_plain else []),
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert loadgen.stderr is not None and loadgen.stdout is not None
        samples: dict[str, object] = {}
        # Stalled clients connect after the baseline window, within a second connect timeout.
        connect_time = args.connect_timeout * (2 if case.stalled else 1)
        deadline = time.monotonic() + connect_time + warmup + baseline + duration + 60
        for line in loadgen.stderr:  # the load generator marks its phases on stderr
            if "event=subscribed" in line:
                samples["rss_subscribed"] = server.rss_kib()
            elif "event=window_start" in line:
                samples.update(cpu_start=server.cpu_seconds(), stats_start=server.statistics())
            elif "event=window_end" in line:
                samples.update(cpu_end=server.cpu_seconds(), stats_end=server.statistics())
                break  # communicate() closes the load generator's stdin: its clients may go now (--hold)
            elif time.monotonic() > deadline:
                break
        try:
            output, errors = loadgen.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            loadgen.kill()
            output, errors = loadgen.communicate()
        if loadgen.returncode != 0 or not output.strip():
            raise RuntimeError(f"load generator failed ({loadgen.returncode}): {errors[-2000:]}")
        result: dict[str, object] = {"case": case.name, "idle": case.idle, **json.loads(output)}
        if result["subscribed"] != case.clients:
            raise RuntimeError(f"only {result['subscribed']} of {case.clients} clients subscribed")
        result["server_cpu_seconds"] = float(samples["cpu_end"]) - float(samples["cpu_start"])  # type: ignore[arg-type]
        result["rss_kib_before"] = rss_before
        result["rss_kib_subscribed"] = samples.get("rss_subscribed")
        start, end = samples.get("stats_start"), samples.get("stats_end")
        if isinstance(start, dict) and isinstance(end, dict):
            result["server_stats"] = {key: end[key] - start.get(key, 0) for key in end}
            result["server_clients_at_end"] = end["clients"]
            result["server_evicted_total"] = end["evicted"]
        result["loadavg"] = os.getloadavg()
        result["reference_ms"] = [reference_before, reference_loop_ms()]
        if case.stalled:  # before the shutdown closes whatever is left
            result["stalled_closed"] = stalled_closes(server.log_path.read_text(), result["stalled_clients"])  # type: ignore[arg-type]
        return result
    finally:
        server.stop()


class Sampler:
    """The server's open file descriptors and RSS every `period` seconds, in a thread, until stopped."""

    def __init__(self, server: Server, period: float = 0.1) -> None:
        self.samples: list[tuple[float, int, int]] = []  # (epoch seconds, fds, RSS KiB)
        self._server, self._period, self._stop = server, period, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.samples.append((time.time(), self._server.open_fds(), self._server.rss_kib()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, epoch: float) -> tuple[float, int, int]:
        """The first sample at or after `epoch` (the last one if none is)."""
        return next((sample for sample in self.samples if sample[0] >= epoch), self.samples[-1])


def run_churn_case(case: Case, args: argparse.Namespace) -> dict[str, object]:
    """Rounds of connect / subscribe / leave cycles; the server's fds and RSS before, during and after each."""
    reference_before = reference_loop_ms()
    command, env = server_command(case, "demo", None, args.upstream_env)
    server = Server(command, env, Path(args.logs) / f"{re.sub(r'[^a-z0-9]+', '-', case.name.lower())}.log")
    try:
        time.sleep(1.0)
        fds_before, rss_before = server.open_fds(), server.rss_kib()
        sampler = Sampler(server)
        pause = 2.0 if args.quick else 10.0
        url = server.http_url.replace("http://", "ws://") + "/ws?batch=1"
        completed = subprocess.run(
            [
                "node", str(BENCH / "loadgen.mjs"), "--url", url,
                "--churn", str(case.churn), "--churn-rounds", str(case.rounds), "--churn-pause", str(pause),
                "--subprotocol", FULL_PROTOCOL_V1,
                "--connect-timeout", str(args.connect_timeout),
            ],
            capture_output=True, text=True, timeout=case.rounds * (args.connect_timeout + pause) + 60, check=False,
        )  # fmt: skip
        sampler.stop()
        if completed.returncode != 0 or not completed.stdout.strip():
            raise RuntimeError(f"load generator failed ({completed.returncode}): {completed.stderr[-2000:]}")
        report = json.loads(completed.stdout)
        rounds = []
        for churned in report["churn"]["rounds"]:
            started, ended = churned["started_ms"] / 1000, churned["ended_ms"] / 1000
            during = [sample for sample in sampler.samples if started <= sample[0] <= ended] or [sampler.at(ended)]
            back = next((t for t, fds, _ in sampler.samples if t >= ended and fds <= fds_before), None)
            rounds.append({
                "round": churned["round"], "seconds": churned["seconds"], "completed": churned["completed"],
                "peak_fds": max(fds for _, fds, _ in during), "fds_at_end": sampler.at(ended)[1],
                "fds_back_seconds": None if back is None else round(back - ended, 2),
                "rss_kib_at_end": sampler.at(ended)[2], "rss_kib_after_pause": sampler.at(ended + pause - 0.2)[2],
            })  # fmt: skip
        return {
            "case": case.name, "churn": case.churn, "rounds": rounds, "fds_before": fds_before,
            "fds_after": server.open_fds(), "rss_kib_before": rss_before, "rss_kib_after": server.rss_kib(),
            "errors": report["errors"], "loadavg": os.getloadavg(),
            "reference_ms": [reference_before, reference_loop_ms()],
        }  # fmt: skip
    finally:
        server.stop()


def churn_summary(r: dict[str, object]) -> str:
    """Per round: how long it took, how many fds the server held, how soon they were back, and its RSS."""
    rounds: list[dict[str, int | float | None]] = r["rounds"]  # type: ignore[assignment]
    per_round = "; ".join(
        f"round {c['round']}: {c['completed']} cycles in {c['seconds']:.1f} s, fds peak {c['peak_fds']}, "
        f"{c['fds_at_end']} at its end, back to {r['fds_before']} after {cell(c['fds_back_seconds'], 1)} s, "
        f"RSS {int(c['rss_kib_after_pause'] or 0) // 1024} MiB"
        for c in rounds
    )
    return (
        f"{r['case']}: RSS {int(r['rss_kib_before']) // 1024} MiB before; {per_round}; "  # type: ignore[call-overload]
        f"errors {r['errors'] or 'none'}; ref loop ms {'/'.join(cell(ms) for ms in r['reference_ms'])}"  # type: ignore[attr-defined]
    )


CLOSED_LINE = re.compile(
    r"^ts=(?P<ts>\S+ \S+) .*event=client_closed client=\d+ peer=127\.0\.0\.1:(?P<port>\d+) .*?code=(?P<code>\S+)", re.M
)


def stalled_closes(server_log: str, stalled_clients: list[dict[str, int | None]]) -> list[dict[str, object]]:
    """When the server ended each stalled client's session, from its log, in seconds after the client paused."""
    closed = {
        int(match["port"]): (datetime.strptime(match["ts"], "%Y-%m-%d %H:%M:%S,%f").timestamp(), match["code"])
        for match in CLOSED_LINE.finditer(server_log)
    }
    found = []
    for client in stalled_clients:
        port, paused_at = client["port"], client["paused_at_ms"]
        if port in closed and paused_at is not None:
            closed_at, code = closed[port]
            found.append({"port": port, "after_seconds": round(closed_at - paused_at / 1000, 2), "code": code})
    return found


def start_upstream(rate: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_upstream.py"), "--rate", str(rate)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # bounded: the upstream prints its URL first or exits
    match = re.search(r"url=(\S+)", line)
    if not match:
        process.kill()
        raise RuntimeError("fake upstream did not start")
    return process, match.group(1)


def cell(value: object, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(results: list[dict[str, object]]) -> None:
    headers = [
        "case", "ticks/s", "updates/s", "frames/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "p99 1st/2nd half", "gaps (clients)", "srv CPU %", "us/frame", "us/update", "loadgen CPU %", "KiB/conn",
        "evicted (clients at end)", "ref loop ms before/after",
    ]  # fmt: skip
    rows = []
    for r in results:
        if "churn" in r:
            continue  # no streaming clients: its own summary line below
        if "error" in r:
            rows.append([str(r["case"]), f"ERROR: {r['error']}"] + [""] * (len(headers) - 2))
            continue
        latency: dict[str, int] = r["latency_ms"]  # type: ignore[assignment]
        window = float(r["window_seconds"])  # type: ignore[arg-type]
        cpu = float(r["server_cpu_seconds"])  # type: ignore[arg-type]
        frames, updates = int(r["frames"]), int(r["updates"])  # type: ignore[call-overload]
        per_conn = None
        if r.get("idle") and r.get("rss_kib_subscribed"):
            per_conn = (int(r["rss_kib_subscribed"]) - int(r["rss_kib_before"])) / max(1, int(r["subscribed"]))  # type: ignore[call-overload]
        rows.append([
            str(r["case"]), cell(r["ticks_per_second"], 1), cell(r["updates_per_second"]), cell(r["frames_per_second"]),
            cell(latency["p50"]), cell(latency["p90"]), cell(latency["p99"]), cell(latency["max"]),
            f"{cell(latency['p99_first_half'])}/{cell(latency['p99_second_half'])}",
            f"{cell(r['missed_updates'])} ({cell(r['clients_with_gaps'])})",
            cell(100 * cpu / window), cell(1e6 * cpu / frames if frames else None),
            cell(1e6 * cpu / updates if updates else None, 1),
            cell(100 * float(r["loadgen_cpu_seconds"]) / window),  # type: ignore[arg-type]
            cell(per_conn, 1),
            f"{cell(r.get('server_evicted_total'))} ({cell(r.get('server_clients_at_end'))})",
            "/".join(cell(ms) for ms in r["reference_ms"]),  # type: ignore[attr-defined]
        ])  # fmt: skip
    widths = [max([len(headers[i]), *(len(row[i]) for row in rows)]) for i in range(len(headers))]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in results:
        if r.get("stalled") and "error" not in r:
            print(stalled_summary(r))
        if r.get("storm") and "error" not in r:
            print(storm_summary(r))
        if "churn" in r and "error" not in r:
            print(churn_summary(r))
        if r.get("resume") and "error" not in r:
            print(resume_summary(r))


def resume_summary(r: dict[str, object]) -> str:
    """What the recovering clients got (recovered, holes, repeats) and the streaming readers' p99 meanwhile."""
    resume: dict[str, object] = r["resume"]  # type: ignore[assignment]
    latency: dict[str, int | None] = r["latency_ms"]  # type: ignore[assignment]
    return (
        f"{r['case']}: {resume['clients']} recovering clients, {resume['cycles']} drop/reconnect cycles "
        f"(all back in {resume['all_reconnected_ms']} ms); recovered {resume['recovered']}, not recovered "
        f"{resume['not_recovered']}; their ticks {resume['ticks']}, holes {resume['holes']}, repeats "
        f"{resume['repeats']}; readers' p99 {cell(latency['p99'])} ms, max {cell(latency['max'])} ms"
    )


def stalled_summary(r: dict[str, object]) -> str:
    """The readers' p99 without and with the stalled clients, and when the server closed each of those."""
    baseline: dict[str, dict[str, int]] = r["baseline"]  # type: ignore[assignment]
    before, during = baseline["latency_ms"]["p99"], r["latency_ms"]["p99"]  # type: ignore[index]
    closed: list[dict[str, object]] = r["stalled_closed"]  # type: ignore[assignment]
    times = sorted(float(c["after_seconds"]) for c in closed)  # type: ignore[arg-type]
    codes = ", ".join(sorted({str(c["code"]) for c in closed}))
    change = f" ({100 * (during - before) / before:+.0f} %)" if before else ""
    when = f", {times[0]:.1f} to {times[-1]:.1f} s after they stopped reading (code {codes})" if times else ""
    return (
        f"{r['case']}: readers' p99 {cell(before)} ms alone, {cell(during)} ms with the stalled clients{change}; "
        f"stalled clients closed by the server: {len(closed)} of {r['stalled']}{when}"
    )


def storm_summary(r: dict[str, object]) -> str:
    """How many storm clients opened (and subscribed) within the deadline, how long it took, and the readers' p99."""
    storm: dict[str, object] = r["storm"]  # type: ignore[assignment]
    opened_ms: dict[str, int | None] = storm["open_ms"]  # type: ignore[assignment]
    subscribed_ms: dict[str, int | None] = storm["subscribe_ms"]  # type: ignore[assignment]
    latency: dict[str, int | None] = r["latency_ms"]  # type: ignore[assignment]
    deadline = storm["deadline_seconds"]
    return (
        f"{r['case']}: {storm['clients']} clients opened within {storm['spread_seconds']} s; "
        f"open within {deadline} s: {storm['opened_within_deadline']}, subscribed within {deadline} s: "
        f"{storm['subscribed_within_deadline']} (all open after {cell(storm['all_opened_seconds'], 2)} s; the last "
        f"attempt began {cell(storm['started_ms']['max'])} ms in); "  # type: ignore[index]
        f"open ms p50 {cell(opened_ms['p50'])} / p99 {cell(opened_ms['p99'])} / max {cell(opened_ms['max'])}, "
        f"subscribed ms p99 {cell(subscribed_ms['p99'])} / max {cell(subscribed_ms['max'])}; "
        f"readers' p99 {cell(latency['p99'])} ms, max {cell(latency['max'])} ms during it; "
        # On a shared machine the server may get a fraction of a core: what it was given says how far to read the times.
        f"server CPU {float(r['server_cpu_seconds']):.1f} s in the {float(r['window_seconds']):.0f} s window"  # type: ignore[arg-type]
    )


def floor_ratios(results: list[dict[str, object]]) -> list[str]:
    """`ticker batch NxR` frames/s as a share of `bare NxR` (the floor) run in the same round: the VM's speed moves
    both, so the share says what the application costs whatever the machine's speed was at the time."""
    measured = {str(r["case"]): float(r["frames_per_second"]) for r in results if "frames_per_second" in r}  # type: ignore[arg-type]
    lines = []
    for name, frames in measured.items():
        base, _, round_suffix = name.partition(" #")
        if not base.startswith("ticker batch "):
            continue
        bare = f"bare {base.removeprefix('ticker batch ')}" + (f" #{round_suffix}" if round_suffix else "")
        if measured.get(bare):  # only plain batching cases have a twin ("bare 5x20 +2 stalled" is no case)
            lines.append(f"{name}: {frames:,.0f} frames/s, {100 * frames / measured[bare]:.0f} % of the floor ({bare})")
    return lines


def history_ratios(results: list[dict[str, object]]) -> list[str]:
    """`ticker batch NxR` (candles on, the default) next to `... history off` of the same round."""
    measured = {str(r["case"]): r for r in results if "error" not in r}
    lines = []
    for name, result in measured.items():
        base, _, round_suffix = name.partition(" #")
        off = measured.get(f"{base} history off" + (f" #{round_suffix}" if round_suffix else ""))
        if off is None:
            continue
        frames = float(result["frames_per_second"]) / float(off["frames_per_second"])  # type: ignore[arg-type]
        p99 = float(result["latency_ms"]["p99"]) / max(1.0, float(off["latency_ms"]["p99"]))  # type: ignore[index]
        lines.append(f"{name}: history on / off: frames/s {100 * frames:.1f} %, p99 {100 * p99:.1f} %")
    return lines


def repeat_summary(name: str, runs: list[dict[str, object]]) -> str:
    """One case over its rounds: the machine's speed moves single runs by ±25 %, so give the spread."""
    measured = [r for r in runs if "error" not in r]
    if not measured:
        return f"{name}: no successful run of {len(runs)}"
    p99s = sorted(int(r["latency_ms"]["p99"]) for r in measured)  # type: ignore[index]
    frames = sorted(float(r["frames_per_second"]) for r in measured)  # type: ignore[arg-type]
    return (
        f"{name}: {len(measured)} of {len(runs)} runs; "
        f"p99 ms min {p99s[0]} / median {statistics.median(p99s):.0f} / max {p99s[-1]}; "
        f"frames/s min {frames[0]:,.0f} / median {statistics.median(frames):,.0f} / max {frames[-1]:,.0f}"
    )


def machine_description() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    memory = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({model.group(1) if model else 'unknown'}), "
        f"{int(memory.group(1)) // 1024 if memory else '?'} MiB RAM, Python {sys.version.split()[0]}, node {node}, "
        f"loadavg {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny N for a few seconds (the smoke test)")
    parser.add_argument("--cases", help="comma-separated substrings selecting cases by name")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after all clients subscribed")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--feed", choices=["demo", "binance"], default="demo")
    parser.add_argument("--upstream-env", default="TICKER_BINANCE_WS_URL", help="setting naming the Binance URL")
    parser.add_argument("--logs", default=str(ROOT / "test-artifacts" / "bench"), help="server logs go here")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the selected cases this many rounds (interleaved) and summarise p99"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = min(args.duration, 2.0), min(args.warmup, 1.0)
    cases = QUICK_CASES if args.quick else STANDARD_CASES
    if args.cases:
        wanted = [part.strip() for part in args.cases.split(",")]
        exact = [case for case in cases if case.name in wanted]  # an exact name selects just that case
        cases = exact or [case for case in cases if any(part in case.name for part in wanted)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65_536)), hard))  # 10k sockets per process
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_description()}; feed: {args.feed}", flush=True)
    results: list[dict[str, object]] = []
    for round_number, case in ((number, case) for number in range(1, args.repeat + 1) for case in cases):
        upstream = None
        try:
            if args.feed == "binance" and case.server == "ticker":
                upstream = start_upstream(case.rate)
            results.append(run_case(case, args, upstream[1] if upstream else None))
        except (RuntimeError, OSError, KeyError) as error:
            message = str(error).splitlines()[0][:200] if str(error) else repr(error)
            results.append({"case": case.name, "error": message})
        finally:
            if upstream:
                upstream[0].terminate()
                upstream[0].wait(SERVER_STOP_TIMEOUT)
        if args.repeat > 1:
            results[-1]["case"] = f"{case.name} #{round_number}"
        loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"done: {case.name} (loadavg {loadavg})", file=sys.stderr, flush=True)
    print_table(results)
    for line in floor_ratios(results) + history_ratios(results):
        print(line)
    if args.repeat > 1:
        for case in (case for case in cases if not case.churn):  # a churn case's summary line is per run
            print(repeat_summary(case.name, [r for r in results if str(r["case"]).rsplit(" #", 1)[0] == case.name]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if any("error" in result for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
