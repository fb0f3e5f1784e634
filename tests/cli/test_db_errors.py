"""A database that cannot be opened is one line naming the URL (password masked) and why,
in every command, never a traceback (issue 13: a refused port, a wrong role, a missing folder,
a file that is no database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

OMSFLOW = [sys.executable, "-c", "import cli; cli.main()"]


def run(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMSFLOW_DATABASE_URL": url, "OMSFLOW_WMS_SECRET": "x" * 32}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [*OMSFLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def bad_urls(tmp: Path) -> dict[str, tuple[str, str]]:
    (tmp / "notadb.db").write_text("this is not a database\n")
    return {
        "refused port": (
            "postgresql+psycopg://postgres:s3cretpw@127.0.0.1:1/omsflow",
            "Connection refused",
        ),
        "wrong role": (
            "postgresql+psycopg://no_such_role_x:s3cretpw@127.0.0.1:5432/test",
            'role "no_such_role_x" does not exist',
        ),
        "missing folder": (f"sqlite:///{tmp}/no/such/folder/omsflow.db", "no database at"),
        "not a database": (f"sqlite:///{tmp}/notadb.db", "file is not a database"),
    }


def assert_one_line(proc: subprocess.CompletedProcess[str], why: str) -> None:
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 69, proc.stderr
    assert len(err) == 1, proc.stderr
    assert err[0].startswith(("error: cannot open the database ", "error: no database at "))
    assert why in err[0]
    assert "Traceback" not in proc.stderr
    assert "s3cretpw" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "case", ["refused port", "wrong role", "missing folder", "not a database"]
)
@pytest.mark.slow
def test_orders_list_says_which_database_and_why(case: str, tmp_path: Path) -> None:
    if case == "wrong role":
        from tests.conftest import _pg_reason

        if _pg_reason():
            pytest.skip("needs the PostgreSQL server to refuse the role")
    url, why = bad_urls(tmp_path)[case]
    assert_one_line(run(url, "orders", "list", cwd=tmp_path), why)


@pytest.mark.parametrize(
    "args", [("db", "upgrade"), ("run", "--once"), ("serve", "--port", "0"), ("status",)]
)
@pytest.mark.slow
def test_every_kind_of_command_says_it_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    url, why = bad_urls(tmp_path)["refused port"]
    assert_one_line(run(url, *args, cwd=tmp_path), why)


@pytest.mark.slow
def test_a_mistyped_sqlite_path_is_not_a_new_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'omsflwo.db'}"
    proc = run(url, "orders", "list", cwd=tmp_path)
    assert proc.returncode == 69
    assert "no database at" in proc.stderr
    assert "omsflow db upgrade" in proc.stderr
    assert not (tmp_path / "omsflwo.db").exists()
    created = run(url, "--create", "orders", "list", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "omsflwo.db").exists()
    upgraded = run(f"sqlite:///{tmp_path / 'other.db'}", "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr


@pytest.mark.slow
def test_errors_are_json_on_stdout_when_json_is_asked(tmp_path: Path) -> None:
    import json

    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert run(url, "db", "upgrade", cwd=tmp_path).returncode == 0
    missing = run(url, "orders", "show", "NOPE", "--json", cwd=tmp_path)
    assert missing.returncode == 1
    doc = json.loads(missing.stdout)["error"]
    assert doc == {
        "type": "NotFound",
        "message": "order 'NOPE' not found",
        "lines": ["order 'NOPE' not found"],
        "exit_code": 1,
    }
    usage = run(url, "stock", "set", "SKU", "99999999999999999999", "--json", cwd=tmp_path)
    assert usage.returncode == 2
    assert "0<=x<=2147483647" in json.loads(usage.stdout)["error"]["message"]
    plain = run(url, "orders", "shwo", cwd=tmp_path)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [
        "error: No such command 'shwo'. Did you mean 'show'? (see 'omsflow orders --help')"
    ]
