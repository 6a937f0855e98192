"""Browser tests: dash[testing]'s ``dash_duo`` on Debian's chromium and chromedriver, headless.

Every test here is marked ``browser``. Without chromium the tests skip locally and fail in CI
(``skip_or_fail``). Headless is forced so CI needs no ``--headless`` flag.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selenium.webdriver.chrome.options import Options

from tests.conftest import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "headless"):
        config.option.headless = True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def pytest_setup_options() -> Options:
    """Chrome options for dash[testing] (its ``pytest_setup_options`` hook)."""
    options = Options()
    options.binary_location = CHROMIUM
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    return options


@pytest.fixture(autouse=True)
def _chromium_present() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        skip_or_fail(f"not installed: {', '.join(missing)}")
