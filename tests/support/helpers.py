"""Shared test helpers: settings without a developer's `.env`, and a live-task counter."""

from __future__ import annotations

from typing import Any

import trio

from trio_ticker.settings import Settings


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: defaults plus overrides, ignoring any developer `.env` file."""
    overrides.setdefault("demo_seed", 7)
    overrides.setdefault("gc_thresholds", None)  # tests leave the pytest process's collector alone
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def count_tasks() -> int:
    """Every task currently alive in this trio run (walks the task tree from the root)."""
    total = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        total += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return total
