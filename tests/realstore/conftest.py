"""The real PrestaShop 8.2.1 in the suite (``-m realstore``).

One store per test run (``session`` scope: its own database name and free port), started by
``harness.start`` from ``../shared/realps``. Every test gets it back as the installer left it:
``rps`` resets the tables the test changed afterwards. Without PHP/MariaDB/the kit the tests
skip with one line saying what is missing; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import omsflow
from tests.conftest import IN_CI

from . import harness


@pytest.fixture(scope="session")
def realstore_session() -> Iterator[harness.RealStore]:
    reason = harness.missing_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the real PrestaShop cannot run: {reason}")
        pytest.skip(f"real PrestaShop unavailable: {reason}")
    try:
        store = harness.start()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(f"real PrestaShop did not start: {str(exc).splitlines()[0]}")
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def rps(realstore_session: harness.RealStore) -> Iterator[harness.RealStore]:
    """The real store, as installed; whatever the test changes is put back afterwards."""
    yield realstore_session
    realstore_session.reset()


class Cli:
    """``omsflow`` in-process on a fresh SQLite file in the test's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):  # click Result
        res = self.runner.invoke(omsflow, list(args), catch_exceptions=True)
        if ok:
            assert res.exit_code == 0, f"omsflow {' '.join(args)} -> {res.exit_code}\n{res.output}"
        return res

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'omsflow.db'}")
    monkeypatch.setenv("OMSFLOW_WMS_SECRET", "realstore-test-secret-0123456789abcdef")
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path)
