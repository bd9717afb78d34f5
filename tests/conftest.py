"""Test session hooks. The fixtures live in tests/support.py, loaded only in a process that runs tests: the xdist
controller runs none, and importing the service there first (~1.2 s) delayed the start of every worker."""
from __future__ import annotations

import gc
import os
import sys

import pytest

# pytest rewrites the asserts of every test module at import; where PYTHONDONTWRITEBYTECODE is set it did so on every
# run and in every xdist worker (~3.5 s of each worker's start). The rewritten modules are kept in __pycache__.
sys.dont_write_bytecode = False
pytest.register_assert_rewrite("tests.support")  # a conftest below may import it before it is loaded as a plugin

LONG_FIRST = ("speech/test_vosk.py", "web/test_admin_browser.py", "web/test_desk_browser.py", "bench/test_nlu.py")


def pytest_configure(config: pytest.Config) -> None:
    distributing = config.getoption("dist", "no") != "no" and config.getoption("tx", None)
    if os.environ.get("PYTEST_XDIST_WORKER") or not distributing or config.getoption("collectonly"):
        config.pluginmanager.import_plugin("tests.support")


def pytest_collection_modifyitems(items):
    """The longest tests start first (the Vosk group, the two browsers, the quick NLU benchmark), so neither xdist
    worker is left alone with one of them at the end."""
    items.sort(key=lambda item: not item.nodeid.startswith(tuple(f"tests/{path}" for path in LONG_FIRST)))


def pytest_collection_finish(session):
    """What importing and collecting built (modules, classes, test items) lives until the end: frozen, the collector's
    full passes during the run no longer walk it."""
    gc.freeze()


def pytest_sessionfinish(session):
    """pytest collects garbage five times as it unconfigures (to surface unraisable exceptions), and each pass walks
    every object the session built: ~2 s per worker. Freezing them first leaves those passes nothing to walk."""
    gc.freeze()
