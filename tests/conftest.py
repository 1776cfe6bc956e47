from __future__ import annotations

import pytest

from tests.support.helpers import make_settings
from trio_ticker.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()
