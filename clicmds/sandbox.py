"""The ``omsflow sandbox`` commands: serve a generated PrestaShop store."""

from __future__ import annotations

import sys

import click

from clicmds.common import (
    emit_json,
)

# ================ sandbox + store (issue 3)
# ---- sandbox


@click.group("sandbox")
def sandbox_group() -> None:
    """The PrestaShop webservice sandbox store (demo, tests, benchmarks)."""


@sandbox_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: a free one).")
@click.option("--products", default=200, show_default=True, type=int, help="Products to generate.")
@click.option("--orders", default=100, show_default=True, type=int, help="Orders to generate.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the generated shop.")
@click.option("--key", default=None, help="Webservice key (32 chars); generated when absent.")
@click.option("--latency-ms", default=0.0, type=float, help="Added latency per API request.")
@click.option("--error-rate", default=0.0, type=float, help="Share of requests answered 5xx.")
@click.option("--timeout-rate", default=0.0, type=float, help="Share of requests that hang.")
@click.option("--malformed-rate", default=0.0, type=float, help="Share of bodies truncated.")
@click.option(
    "--lost-after-commit-rate",
    default=0.0,
    type=float,
    help="Share of writes applied, then answered 500 or dropped.",
)
@click.option(
    "--data",
    default=None,
    type=click.Path(dir_okay=False),
    help="JSON file: loaded on start if present, saved after every write.",
)
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="The shop's clock (PS_TIMEZONE, e.g. Europe/Paris): dates are written in it.",
)
@click.option(
    "--languages",
    default=2,
    show_default=True,
    type=click.IntRange(1, 6),
    help="Languages of the generated shop (en, fr, de, es, it, nl).",
)
@click.option(
    "--version",
    "ps_version",
    default="8.2.1",
    show_default=True,
    help="PrestaShop version to play (8.x, or 1.7.x: no product_type...).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the URL and key as one JSON line.")
def sandbox_serve(
    host: str,
    port: int,
    products: int,
    orders: int,
    seed: int,
    key: str | None,
    latency_ms: float,
    error_rate: float,
    timeout_rate: float,
    malformed_rate: float,
    lost_after_commit_rate: float,
    data: str | None,
    languages: int,
    ps_version: str,
    as_json: bool,
    timezone: str = "UTC",
) -> None:
    """Serve a generated PrestaShop store on HTTP until Ctrl-C; prints its URL and key."""
    import time

    from engine.errors import ConfigError
    from sandbox.errors import ConfigError as SandboxConfigError
    from sandbox.server import start_sandbox

    try:
        server = start_sandbox(
            products=products,
            orders=orders,
            seed=seed,
            key=key,
            latency_ms=latency_ms,
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            malformed_rate=malformed_rate,
            lost_after_commit_rate=lost_after_commit_rate,
            data=data,
            languages=languages,
            version=ps_version,
            host=host,
            port=port,
            log_level="warning",
            timezone=timezone,
        )
    except SandboxConfigError as exc:  # the sandbox shares no error class with the engine
        raise ConfigError(str(exc)) from None
    # The sandbox's own key is not a user secret: printing it is how the user connects.
    if as_json:
        emit_json({"url": server.url, "api": server.api_url, "key": server.key})
    else:
        click.echo(f"sandbox store: {server.url}  (webservice: {server.api_url})")
        click.echo(f"key: {server.key}")
        click.echo(f"next: omsflow store connect --url {server.url} --key {server.key}")
        click.echo("Ctrl-C to stop")
    sys.stdout.flush()
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
