"""Store keys encrypted at rest (Fernet, from the ``cryptography`` package).

A webservice key can write everything in a merchant's store, so the ``stores`` table holds it
only as a Fernet token (``fernet:`` + token). The encryption key comes from
``OMSFLOW_SECRET_KEY`` (a Fernet key: 32 url-safe base64-encoded bytes, as
``omsflow store secret-key --new`` prints) or, when that is unset, from a key file made on first
use with mode 0600: ``<database file>.key`` beside a SQLite database, ``~/.omsflow/secret.key``
for a server database. Lose that key and the stored webservice keys cannot be read any more:
back the file up with the database (``omsflow store update-key`` sets a new webservice key).

Rows written by an older omsflow hold the key in clear; they keep working and are encrypted the
next time the store is saved (``store update-key``, ``store connect``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url

from engine.errors import ConfigError

SECRET_KEY_ENV = "OMSFLOW_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret
PREFIX = "fernet:"


_EPHEMERAL = Fernet.generate_key()
"""The key of in-memory SQLite databases: they die with the process, and so does this."""


def _in_memory(database_url: str) -> bool:
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def key_file_for(database_url: str) -> Path:
    """Where the key file lives for this database (see the module docstring)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.with_name(db.name + ".key")
    return Path.home() / ".omsflow" / "secret.key"


def _load_or_create(path: Path) -> bytes:
    if path.is_file():
        data = path.read_bytes().strip()
        _check(data, str(path))
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    data = Fernet.generate_key()
    # O_EXCL: two processes making the file at once keep the first one's key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_or_create(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data + b"\n")
    return data


def _check(data: bytes, where: str) -> None:
    try:
        Fernet(data)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{where} is not a Fernet key (fix: 32 url-safe base64 bytes, as "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`)"
        ) from None


class KeyBox:
    """Encrypts and decrypts store keys for one database."""

    def __init__(self, database_url: str, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.database_url = database_url
        self._env_key = env.get(SECRET_KEY_ENV, "").strip() or None
        self._fernet: Fernet | None = None

    @property
    def source(self) -> str:
        """Where the encryption key comes from (for messages; never the key itself)."""
        return SECRET_KEY_ENV if self._env_key else str(key_file_for(self.database_url))

    def _get(self, *, create: bool) -> Fernet | None:
        if self._fernet is None:
            if self._env_key:
                _check(self._env_key.encode(), SECRET_KEY_ENV)
                self._fernet = Fernet(self._env_key.encode())
            elif _in_memory(self.database_url):
                self._fernet = Fernet(_EPHEMERAL)
            else:
                path = key_file_for(self.database_url)
                if not path.is_file() and not create:
                    return None
                self._fernet = Fernet(_load_or_create(path))
        return self._fernet

    def seal(self, plain: str) -> str:
        fernet = self._get(create=True)
        if fernet is None:  # pragma: no cover - create=True always yields a key
            raise ConfigError(f"no secret key at {self.source}")
        return PREFIX + fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str, store_name: str) -> str:
        """The webservice key from its stored form (legacy clear text passes through)."""
        if not stored.startswith(PREFIX):
            return stored
        fernet = self._get(create=False)
        if fernet is None:
            raise ConfigError(
                f"cannot read the key of store {store_name!r}: the secret key file "
                f"{self.source} is missing (fix: restore it from your backup or set "
                f"{SECRET_KEY_ENV}; or `omsflow store update-key {store_name}`)"
            )
        try:
            return fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise ConfigError(
                f"cannot read the key of store {store_name!r} with the secret key from "
                f"{self.source} (fix: use the secret key it was saved with; or "
                f"`omsflow store update-key {store_name}`)"
            ) from None
