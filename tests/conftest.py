from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import make_settings
from trio_ticker.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture(autouse=True, scope="session")
def candle_files_in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers the tests start (in-process and child processes) keep their candle file out of the repository."""
    previous = os.environ.get("TICKER_DATA_DIR")
    os.environ["TICKER_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    yield
    if previous is None:
        del os.environ["TICKER_DATA_DIR"]
    else:
        os.environ["TICKER_DATA_DIR"] = previous
