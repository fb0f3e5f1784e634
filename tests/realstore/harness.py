"""A real, unmodified PrestaShop 8.2.1 for tests and benchmarks: start, reset, stop.

``../shared/realps/setup.sh`` installs the official release into the MariaDB every machine of
this project runs (127.0.0.1:3306) and serves it with ``php -S`` on a loopback port. Nothing of
PrestaShop is copied into this repository: the harness points at ``../shared/realps`` (or
``OMSFLOW_REALPS_DIR``).

One ``RealStore`` per test run: its own database name and free port. After the install the
harness copies every ``ps_*`` table into a snapshot database; ``reset()`` restores only the
tables whose ``CHECKSUM TABLE`` moved since, so a test that changed the store leaves nothing
behind for the next one (well under a second). ``stop()`` kills the server's process group and
drops both databases.

No pytest here: ``bench/`` uses it too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
MYSQL_HOST = os.environ.get("OMSFLOW_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("OMSFLOW_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("OMSFLOW_TEST_MYSQL_USER", "root")
PHP_MODULES = ("pdo_mysql", "intl", "gd", "zip", "SimpleXML", "mbstring", "curl", "dom")


def realps_dir() -> Path:
    """Where ``setup.sh`` lives: ``OMSFLOW_REALPS_DIR`` or ``../shared/realps``."""
    env = os.environ.get("OMSFLOW_REALPS_DIR")
    return Path(env) if env else REPO.parent / "shared" / "realps"


def _php_missing() -> str | None:
    php = shutil.which("php")
    if php is None:
        return "php is not installed (../shared/realps/setup.sh installs it with apt as root)"
    out = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout
    have = {line.strip() for line in out.splitlines()}
    lacking = [m for m in PHP_MODULES if m not in have]
    return f"php lacks the modules {', '.join(lacking)}" if lacking else None


def missing_reason() -> str | None:
    """Why a real store cannot be started here (None: it can)."""
    setup = realps_dir() / "setup.sh"
    if not setup.is_file():
        return f"no real PrestaShop kit at {setup.parent} (../shared/realps)"
    if shutil.which("mysql") is None:
        return "the mysql client is not installed (apt-get install mariadb-client)"
    try:
        with socket.create_connection((MYSQL_HOST, MYSQL_PORT), timeout=3):
            pass
    except OSError as exc:
        return f"MariaDB not reachable at {MYSQL_HOST}:{MYSQL_PORT} ({type(exc).__name__})"
    reason = _php_missing()
    if reason and os.geteuid() != 0:
        return reason
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mysql(database: str | None, sql: str, *, timeout: float = 120) -> list[list[str]]:
    """Run SQL through the ``mysql`` client; rows as lists of strings (tab-separated output)."""
    cmd = ["mysql", "-h", MYSQL_HOST, "-P", str(MYSQL_PORT), "-u", MYSQL_USER, "-N", "-B"]
    if database:
        cmd.append(database)
    proc = subprocess.run(
        cmd, input=sql, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mysql failed: {proc.stderr.strip()[:500]}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


@dataclass
class RealStore:
    """One running PrestaShop: ``url`` (shop base), ``key``, ``database``."""

    url: str
    key: str
    database: str
    pid: int
    root: Path
    port: int
    version: str = ""
    _checksums: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def snapshot_db(self) -> str:
        return f"{self.database}_snap"

    # -- SQL -------------------------------------------------------------------------

    def sql(self, statement: str) -> list[list[str]]:
        return mysql(self.database, statement)

    def scalar(self, statement: str) -> str | None:
        rows = self.sql(statement)
        return rows[0][0] if rows and rows[0] else None

    def tables(self) -> list[str]:
        return [r[0] for r in self.sql("SHOW TABLES")]

    def _checksum(self, tables: Sequence[str]) -> dict[str, str]:
        if not tables:
            return {}
        rows = self.sql("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))
        return {r[0].split(".", 1)[1]: r[1] for r in rows}

    def snapshot(self) -> None:
        """Copy every table into the snapshot database (the state ``reset`` returns to)."""
        snap = self.snapshot_db
        tables = self.tables()
        parts = [f"DROP DATABASE IF EXISTS `{snap}`; CREATE DATABASE `{snap}`;"]
        for t in tables:
            parts.append(
                f"CREATE TABLE `{snap}`.`{t}` LIKE `{t}`; "
                f"INSERT INTO `{snap}`.`{t}` SELECT * FROM `{t}`;"
            )
        self.sql("\n".join(parts))
        self._checksums = self._checksum(tables)

    def reset(self) -> list[str]:
        """Put back every table a test changed (compared by checksum); drop tables a test
        created. Returns the names of the restored tables."""
        tables = self.tables()
        now = self._checksum(tables)
        changed = [t for t in tables if t in self._checksums and now[t] != self._checksums[t]]
        extra = [t for t in tables if t not in self._checksums]
        parts = ["SET FOREIGN_KEY_CHECKS=0;"]
        for t in changed:
            parts.append(
                f"DELETE FROM `{t}`; INSERT INTO `{t}` SELECT * FROM `{self.snapshot_db}`.`{t}`;"
            )
        for t in extra:
            parts.append(f"DROP TABLE `{t}`;")
        if len(parts) > 1:
            self.sql("\n".join(parts))
        return changed + extra

    def set_config(self, name: str, value: str) -> None:
        """Set a ``ps_configuration`` value (global scope), as the back office would."""
        safe = value.replace("\\", "\\\\").replace("'", "\\'")
        self.sql(
            f"UPDATE ps_configuration SET value='{safe}', date_upd=NOW() "
            f"WHERE name='{name}' AND id_shop IS NULL AND id_shop_group IS NULL"
        )

    # -- HTTP ------------------------------------------------------------------------

    def client(self, **kw: Any) -> httpx.Client:
        """An httpx client on the webservice with the key (tests' own view of the store)."""
        return httpx.Client(base_url=self.api_url, auth=(self.key, ""), timeout=60, **kw)

    # -- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(RuntimeError):
            mysql(
                None,
                f"DROP DATABASE IF EXISTS `{self.database}`; "
                f"DROP DATABASE IF EXISTS `{self.snapshot_db}`;",
            )
        shutil.rmtree(self.root.parent, ignore_errors=True)


def start(
    *,
    timezone: str | None = None,
    fixtures: bool = True,
    language: str = "en",
    log: Any = None,
) -> RealStore:
    """Install and serve a fresh PrestaShop (about 35-60 s); raises RuntimeError with the
    installer's tail when it fails."""
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    work = Path(tempfile.mkdtemp(prefix="omsflow-realps-"))
    root = work / "www"
    port = free_port()
    database = f"omsflow_rps_{uuid.uuid4().hex[:10]}"
    key = uuid.uuid4().hex[:32].upper()
    env = {
        **os.environ,
        "PORT": str(port),
        "DB_NAME": database,
        "WS_KEY": key,
        "FIXTURES": "1" if fixtures else "0",
        "LANGUAGE": language,
    }
    if timezone:
        env["TIMEZONE"] = timezone
    proc = subprocess.run(
        ["bash", str(realps_dir() / "setup.sh"), str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if log is not None:
        log(proc.stdout)
    match = re.search(r"^PID: (\d+)", proc.stdout, re.M)
    if proc.returncode != 0 or match is None:
        with contextlib.suppress(RuntimeError):
            mysql(None, f"DROP DATABASE IF EXISTS `{database}`")
        shutil.rmtree(work, ignore_errors=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise RuntimeError("realps setup.sh failed:\n" + "\n".join(tail))
    version = re.search(r"PrestaShop (\S+) is up", proc.stdout)
    store = RealStore(
        url=f"http://127.0.0.1:{port}",
        key=key,
        database=database,
        pid=int(match.group(1)),
        root=root,
        port=port,
        version=version.group(1) if version else "",
    )
    try:
        store.snapshot()
    except BaseException:
        store.stop()
        raise
    return store


@contextlib.contextmanager
def running(**kw: Any) -> Iterator[RealStore]:
    store = start(**kw)
    try:
        yield store
    finally:
        store.stop()


def leftover_databases() -> list[str]:
    """Databases of earlier runs that were not dropped (a crash, a kill -9)."""
    return [r[0] for r in mysql(None, "SHOW DATABASES LIKE 'omsflow\\_rps\\_%'")]
