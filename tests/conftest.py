from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.helpers import make_settings
from trio_ticker.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture(autouse=True, scope="session")
def history_kept_to_the_test_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers the tests start (in-process and child processes) keep their candle file out of the repository,
    and never backfill from, or fetch catalogues of, the real Binance and Finnhub: the backfill and catalogue
    tests point them at the fake ones."""
    environment = {
        "TICKER_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "TICKER_BACKFILL": "false",
        "TICKER_CATALOGUE_FETCH": "false",
    }
    previous = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    yield
    for name, value in previous.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value
