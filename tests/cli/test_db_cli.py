"""``omsflow db`` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime.db import session as dbsession
from tests.conftest import REPO


@pytest.mark.slow
def test_db_upgrade_command_from_any_folder(tmp_path: Path) -> None:
    """`omsflow db upgrade` finds the migrations from an unrelated working folder."""
    env = {**os.environ, "OMSFLOW_DATABASE_URL": ""}
    env.pop("OMSFLOW_DATABASE_URL")
    proc = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main(['db', 'upgrade'])"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "omsflow.db"
    assert db.is_file()
    engine = dbsession.make_engine(f"sqlite:///{db}")
    try:
        assert dbsession.current_revision(engine) == dbsession.head_revision()
    finally:
        engine.dispose()
