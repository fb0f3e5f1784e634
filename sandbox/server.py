"""Run the sandbox store: uvicorn in a background thread on a loopback port (tests, demo, bench).

``start_sandbox(...)`` generates (or loads) a store, starts the app on a free port and
returns a ``SandboxServer`` once the port answers; ``.url`` is the shop base (the API is at
``.url + "/api"``), ``.key`` the main webservice key, ``.store`` and ``.faults`` the live
objects, ``.stop()`` (or the ``with`` block) shuts it down.
"""

from __future__ import annotations

import secrets
import socket
import string
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from sandbox.app import (
    Permissions,
    SandboxState,
    add_key,
    create_app,
    full_permissions,
)
from sandbox.errors import ConfigError
from sandbox.faults import Faults
from sandbox.schema import DEFAULT_VERSION
from sandbox.store import Clock, SandboxStore

_KEY_ALPHABET = string.ascii_uppercase + string.digits


def generate_key() -> str:
    """A webservice key as the back office makes one: 32 characters [A-Z0-9]."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))


class SandboxServer:
    """A running sandbox; a context manager that stops the server on exit."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        host: str,
        port: int,
        key: str,
        store: SandboxStore,
        faults: Faults,
        state: SandboxState,
    ) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.api_url = self.url + "/api"
        self.key = key
        self.store = store
        self.faults = faults
        self.state = state

    def add_key(self, key: str, permissions: Mapping[str, list[str]]) -> None:
        """Register another key with exactly ``permissions`` (like POST /__sandbox/keys)."""
        add_key(self.state, key, dict(permissions))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_sandbox(
    *,
    products: int = 100,
    orders: int = 50,
    seed: int = 1,
    now: datetime | None = None,
    languages: int = 2,
    version: str = DEFAULT_VERSION,
    repeat_reference_share: float = 0.25,
    no_reference_share: float = 0.25,
    key: str | None = None,
    keys: Mapping[str, Permissions] | None = None,
    latency_ms: float = 0.0,
    error_rate: float = 0.0,
    timeout_rate: float = 0.0,
    malformed_rate: float = 0.0,
    lost_after_commit_rate: float = 0.0,
    hang_seconds: float = 30.0,
    fault_seed: int = 0,
    data: str | Path | None = None,
    store: SandboxStore | None = None,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "critical",
    timezone: str = "UTC",
) -> SandboxServer:
    """Start a sandbox store in a background thread; returns when it accepts connections.

    ``data``: a JSON file loaded when present (else generated and saved), saved after every
    write. ``store``: serve this store instead of generating one. ``keys``: extra keys with
    their permissions. ``clock``: the store's clock for ``date_upd``/``date_add`` of writes
    (UTC instants). ``timezone``: the shop's clock (PS_TIMEZONE) of a generated store, in
    which it writes and filters its dates (a loaded ``data`` file keeps its own).
    ``languages``: how many languages the shop has (1..6). ``version``: the PrestaShop version
    played (``"1.7.7.8"``: no ``product_type``...; see ``schema.resources_for``).
    ``repeat_reference_share`` / ``no_reference_share``: the catalogue shapes of
    ``SandboxStore.generate``. A bad value is a ConfigError (one line).
    """
    if key is None:
        key = generate_key()
    if len(key) != 32:
        raise ConfigError(
            "the sandbox key must be exactly 32 characters ([A-Z0-9] like PrestaShop's)"
        )
    if store is None:
        if data is not None and Path(data).exists():
            store = SandboxStore.load(data, clock=clock)
        else:
            try:
                store = SandboxStore.generate(
                    products=products,
                    orders=orders,
                    seed=seed,
                    now=now,
                    languages=languages,
                    clock=clock,
                    timezone=timezone,
                    version=version,
                    repeat_reference_share=repeat_reference_share,
                    no_reference_share=no_reference_share,
                )
            except ValueError as exc:
                raise ConfigError(f"sandbox: {exc}") from None
            if data is not None:
                store.data_path = Path(data)
                store.save(data)
    faults = Faults(
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        malformed_rate=malformed_rate,
        lost_after_commit_rate=lost_after_commit_rate,
        hang_seconds=hang_seconds,
        seed=fault_seed,
    )
    key_map: dict[str, Permissions] = {key: full_permissions()}
    for k, perms in (keys or {}).items():
        key_map[k] = dict(perms)
    app = create_app(store, faults, key_map)
    if port == 0:
        port = _free_port(host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConfigError(f"the sandbox could not start on {host}:{port}")
        time.sleep(0.01)
    state: Any = app.state.sandbox
    return SandboxServer(server, thread, host, port, key, store, faults, state)
