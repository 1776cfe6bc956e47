"""Smoke runs of the benchmark (bench/run.py --quick: 5 clients, a few seconds; bench/dialect_cost.py, tiny) so
the scripts cannot rot.

It asserts that the tooling works end to end (servers start, clients subscribe, ticks arrive, the report is
complete, stalled clients' closes are found in the server's log), never on speed. bench/run.py's is skipped without
node, except under CI=true, where node is required.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def require_node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are required for the benchmark smoke test under CI")
        pytest.skip("node/npm not installed: the benchmark's load generator needs them")
    if not (BENCH / "node_modules" / "ws").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=BENCH, check=True, timeout=180)
    return node


@pytest.mark.slow
def test_the_quick_benchmark_runs_every_case_and_reports_them(tmp_path: Path) -> None:
    require_node()
    report = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--json", str(report), "--logs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(report.read_text())
    assert [result["case"] for result in results] == [
        "ticker batch 5x20",
        "ticker single 5x20",
        "ticker prototype 5x20",
        "naive 5x20",
        "bare 5x20",
        "ticker batch 5x20 +2 stalled",
        "ticker storm 50 +5 streaming",
        "ticker recovery 5 +5 reconnecting",
        "ticker churn 100 x2",
    ]
    *streaming, churn = results
    for result in streaming:
        assert result["subscribed"] == 5
        assert result["closed_during_run"] == 0
        assert result["updates"] > 0
        assert result["per_client_updates"]["min"] > 0
        assert result["latency_ms"]["p50"] is not None
        assert result["server_cpu_seconds"] >= 0
    recovery = results[7]["resume"]  # every recovering client came back recovered, and saw each seq once
    assert recovery["cycles"] >= 1 and recovery["recovered"] == 5 * recovery["cycles"]
    assert (recovery["not_recovered"], recovery["holes"], recovery["repeats"]) == (0, 0, 0)
    batch = results[0]
    assert batch["missed_updates"] == 0  # a batching client that keeps up gets every tick
    assert batch["server_stats"]["encodes"] == batch["server_stats"]["ticks_in"]  # once per tick, not per client
    assert "ticker batch 5x20" in completed.stdout  # the table
    prototype = results[2]  # the prototypes' dialect: its price object too is encoded once per tick
    assert prototype["server_stats"]["encodes"] == 2 * prototype["server_stats"]["ticks_in"]
    bare = results[4]  # the floor: same pacing, no application; every batching client gets every tick
    assert bare["missed_updates"] == 0
    share = 100 * batch["frames_per_second"] / bare["frames_per_second"]
    assert f"ticker batch 5x20: {batch['frames_per_second']:,.0f} frames/s, {share:.0f} % of the floor (bare 5x20)" in (
        completed.stdout
    )
    stalled = results[5]  # read timeout 1.5 s: the server closes both stalled clients; the readers stay
    assert stalled["baseline"]["latency_ms"]["p99"] is not None
    assert [closed["code"] for closed in stalled["stalled_closed"]] == ["1006", "1006"]
    assert all(1.0 <= closed["after_seconds"] <= 4.0 for closed in stalled["stalled_closed"])
    assert stalled["server_clients_at_end"] == 5
    assert "stalled clients closed by the server: 2 of 2" in completed.stdout
    stormed = results[6]  # 50 more clients open in half a second while 5 stream; each is timed
    storm = stormed["storm"]
    assert storm["opened"] == storm["subscribed"] == 50
    assert storm["open_ms"]["max"] is not None and storm["subscribe_ms"]["max"] >= storm["subscribe_ms"]["p50"]
    assert stormed["server_clients_at_end"] == 55
    assert "ticker storm 50 +5 streaming: 50 clients opened within 0.5 s" in completed.stdout
    assert [(r["round"], r["completed"]) for r in churn["rounds"]] == [(1, 100), (2, 100)]
    assert all(r["fds_back_seconds"] is not None for r in churn["rounds"])  # every socket given back in the pause
    assert "ticker churn 100 x2: RSS" in completed.stdout


@pytest.mark.slow
def test_the_dialect_cost_probe_measures_both_dialects() -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCH / "dialect_cost.py"), "--rounds", "2", "--clients", "20", "--seconds", "0.5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    runs = re.findall(r"^round (\d) (full|prototype) +([\d.]+) us/frame +([\d,]+) frames/s", completed.stdout, re.M)
    assert sorted((number, dialect) for number, dialect, _, _ in runs) == [
        ("1", "full"),
        ("1", "prototype"),
        ("2", "full"),
        ("2", "prototype"),
    ]
    assert all(float(cost) > 0 and int(frames.replace(",", "")) > 0 for _, _, cost, frames in runs)
    assert "prototype / full, round by round:" in completed.stdout


def test_the_delivery_cpu_benchmark_counts_every_frame() -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCH / "delivery_cpu.py"), "--clients", "5", "--ticks", "4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.startswith("delivery batch 5x20: 20 frames, ")  # every tick to every client
    assert completed.stdout.rstrip().endswith(" us CPU/frame")
