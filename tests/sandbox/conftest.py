"""Fixtures: sandbox servers on loopback with a fixed clock, and an httpx client per server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from sandbox.server import SandboxServer, start_sandbox

NOW = datetime(2025, 3, 1, 12, 0, 0)
WRITE_TIME = datetime(2025, 3, 2, 9, 30, 0)


def fixed_clock() -> datetime:
    return WRITE_TIME


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    """A read-mostly shop shared by a module (tests that write use ``fresh_shop``)."""
    with start_sandbox(products=60, orders=40, seed=7, now=NOW, clock=fixed_clock) as server:
        yield server


@pytest.fixture
def fresh_shop() -> Iterator[SandboxServer]:
    with start_sandbox(
        products=30, orders=20, seed=11, now=NOW, clock=fixed_clock, hang_seconds=0.5
    ) as server:
        yield server


@pytest.fixture
def client(shop: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shop.url, auth=(shop.key, ""), timeout=10) as c:
        yield c


def http(server: SandboxServer, timeout: float = 10) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(server.key, ""), timeout=timeout)
