"""The garbage-collector setting: parsed and checked like every setting, applied once at app startup."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.support.helpers import make_settings
from trio_ticker.app import create_app
from trio_ticker.settings import ConfigError, load_settings


@pytest.fixture
def restore_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_thresholds_parse_from_the_environment_form() -> None:
    assert make_settings(gc_thresholds="700, 1000,100").gc_thresholds == (700, 1000, 100)
    assert make_settings(gc_thresholds="").gc_thresholds is None
    assert load_settings(_env_file=None).gc_thresholds == (10_000, 1000, 100)  # the default


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("700,1000", "three comma-separated whole numbers"),
        ("700,-1,100", "three comma-separated whole numbers"),
        ("fast", "three comma-separated whole numbers"),
        ("0,10,10", "between 1 and 10000000"),
    ],
)
def test_bad_thresholds_name_the_variable(given: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, gc_thresholds=given)
    assert "TICKER_GC_THRESHOLDS" in str(caught.value)
    assert complaint in str(caught.value)


async def test_app_startup_applies_the_thresholds_and_freezes_startup_objects(restore_collector: None) -> None:
    app = create_app(make_settings(gc_thresholds=(900, 1100, 90)))
    assert gc.get_threshold() != (900, 1100, 90)
    async with app.test_app():
        assert gc.get_threshold() == (900, 1100, 90)
        assert gc.get_freeze_count() > 0


async def test_an_empty_setting_leaves_the_collector_alone(restore_collector: None) -> None:
    before = gc.get_threshold()
    async with create_app(make_settings(gc_thresholds=None)).test_app():
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
