"""Without TICKER_REDIS_URL nothing of the scale-out path is loaded or run."""

from __future__ import annotations

import subprocess
import sys

from tests.support.helpers import make_settings
from trio_ticker.app import assemble
from trio_ticker.ingest.local import LocalIngest


def test_a_single_process_server_does_not_import_the_redis_client() -> None:
    code = (
        "import sys, trio_ticker.app, trio_ticker.__main__\n"
        "print(sorted(m for m in sys.modules if 'coredis' in m or 'scaleout' in m))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_the_service_runs_its_sources_itself_without_redis() -> None:
    assert isinstance(assemble(make_settings()).ingest, LocalIngest)
