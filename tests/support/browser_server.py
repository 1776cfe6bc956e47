"""`python -m trio_ticker` as a real child process in demo mode, for the browser tests.

It binds port 0 (or a given port, to restart on the same address) and reports its URL from the
`event=serving urls=...` log line; stderr is drained by a thread so the pipe never fills. Each one has a data
directory of its own (its candles and its numbering: seqs from 1 in a new epoch) unless `env` names one.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING_LINE = re.compile(r"event=serving urls=(http://127\.0\.0\.1:(\d+))")
LOG_TIME = re.compile(r"^ts=(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class ServerProcess:
    def __init__(self, *, port: int = 0, demo_interval: float = 0.2, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.demo_interval = demo_interval
        self.extra_env = env or {}
        self.url = ""
        self.serving_since_ms: float | None = None  # epoch ms of the serving line: when it began to listen
        self.log: deque[str] = deque(maxlen=200)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start the server and wait until it serves; returns its base URL."""
        env = {
            **os.environ,
            "DEMO_MODE": "true",
            "TICKER_HOST": "127.0.0.1",
            "TICKER_PORT": str(self.port),
            "TICKER_DEMO_INTERVAL": str(self.demo_interval),
            "TICKER_LOG_LEVEL": "INFO",
            "TICKER_DATA_DIR": tempfile.mkdtemp(prefix="server-", dir=os.environ.get("TICKER_DATA_DIR")),
            **self.extra_env,
        }
        self._process = process = subprocess.Popen(
            [sys.executable, "-m", "trio_ticker"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        urls: queue.Queue[str] = queue.Queue(maxsize=1)
        threading.Thread(target=self._drain, args=(process, urls), daemon=True).start()
        try:
            self.url = urls.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.kill()
            raise RuntimeError(self._failure(f"server did not report serving in {START_TIMEOUT} s")) from None
        if not self.url:
            raise RuntimeError(self._failure(f"server exited with code {process.wait()}"))
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def _drain(self, process: subprocess.Popen[str], urls: queue.Queue[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.log.append(line.rstrip())
            match = SERVING_LINE.search(line)
            if match and urls.empty():
                if stamp := LOG_TIME.match(line):  # the log's local time, as the browser's Date.now() reads it
                    self.serving_since_ms = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000
                urls.put(match.group(1))
        if urls.empty():
            urls.put("")  # stderr closed before the serving line: the server exited

    def _failure(self, what: str) -> str:
        return what + "; last log lines:\n" + "\n".join(self.log)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing its WebSockets (clients see 1006)."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the server closes clients with 1001 and exits."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
