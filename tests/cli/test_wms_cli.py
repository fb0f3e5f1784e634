"""``omsflow serve``, ``wms send`` and ``wms apply``: the receiver as a real background
process on loopback, commands through click's CliRunner and ``main()`` (the error boundary),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from cli import main, omsflow
from engine.runtime import service
from engine.runtime.db import session as dbsession
from engine.runtime.db.tables import InboundEventRow, OrderRow
from engine.runtime.inventory import set_on_hand
from engine.runtime.service import NewLine, NewOrder
from engine.runtime.settings import Settings
from engine.runtime.specs import load_bundle

SECRET = "cli-wms-secret-do-not-print-4242"
REPO = Path(__file__).resolve().parent.parent.parent
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("OMSFLOW_DATABASE_URL", db_url)
    dbsession.ensure_schema(db_url)  # as `omsflow db upgrade` would: the commands open it
    monkeypatch.setenv("OMSFLOW_WMS_SECRET", SECRET)
    monkeypatch.delenv("OMSFLOW_WMS_RECEIVER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return {**os.environ, "OMSFLOW_DATABASE_URL": db_url, "OMSFLOW_WMS_SECRET": SECRET}


def _run(*args: str) -> Result:
    return CliRunner().invoke(omsflow, list(args), catch_exceptions=True)


def _orders(*refs: str, release: tuple[str, ...] = ()) -> None:
    """Orders created straight through the service in the CLI's database."""
    bundle = load_bundle()
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        for ref in refs:
            with sessions.begin() as s:
                set_on_hand(s, f"SKU-{ref}", 3, at=T0)
            order = NewOrder(reference=ref, ordered_at=T0, lines=[NewLine(f"SKU-{ref}", 1)])
            service.create_order(sessions, bundle, order, idempotency_key=f"t:{ref}", at=T0)
            if ref in release:
                service.apply_inbound(
                    sessions,
                    bundle,
                    reference=ref,
                    trigger="release",
                    source="user",
                    idempotency_key=f"t:{ref}:release",
                    at=T0,
                )
    finally:
        engine.dispose()


def _state(ref: str) -> tuple[str, bool, str | None]:
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        with sessions() as s:
            row = s.scalars(select(OrderRow).where(OrderRow.reference == ref)).one()
            return row.state, row.needs_attention, row.attention_reason
    finally:
        engine.dispose()


def test_wms_apply_moves_the_order_once_per_event_id(env: dict[str, str]) -> None:
    _orders("C1", release=("C1",))
    first = _run("wms", "apply", "picked", "C1", "--event-id", "e-1", "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert (doc["outcome"], doc["from_state"], doc["state"]) == ("applied", "RFP", "Ready_to_Ship")
    assert "push_status" in doc["effects"]
    fixed = ("--occurred-at", "2025-03-01T10:00:00Z")
    assert _run("wms", "apply", "packed", "C1", "--event-id", "e-2", *fixed).exit_code == 0
    again = _run("wms", "apply", "packed", "C1", "--event-id", "e-2", *fixed)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("replay: event e-2 was answered before: acknowledged")
    reused = _run("wms", "apply", "picked", "C1", "--event-id", "e-2", *fixed)
    assert reused.exit_code == 1
    assert reused.stderr.startswith("refused: event id 'e-2' reused")
    assert _state("C1")[0] == "Ready_to_Ship"
    engine, sessions = dbsession.open_database(Settings.from_env())
    try:
        with sessions() as s:
            keys = list(
                s.scalars(
                    select(InboundEventRow.idempotency_key).where(InboundEventRow.source == "wms")
                )
            )
    finally:
        engine.dispose()
    assert keys == ["wms:e-1", "wms:e-2"]


def test_wms_apply_refused_exits_1_with_the_reason_and_flags_the_order(
    env: dict[str, str],
) -> None:
    _orders("C2")
    res = _run("wms", "apply", "picked", "C2")
    assert res.exit_code == 1
    assert res.stderr.startswith("refused: order C2 stays New")
    state, flagged, reason = _state("C2")
    assert (state, flagged) == ("New", True)
    assert reason
    assert reason in res.stderr


def test_wms_apply_errors_are_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["wms", "apply", "teleported", "C3"])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "type: unknown WMS event type 'teleported'" in err[0]
    with pytest.raises(SystemExit) as info:
        main(["wms", "apply", "picked", "NO-SUCH"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: order 'NO-SUCH' not found"]
    assert info.value.code != 0


def test_serve_and_send_need_the_secret_and_say_so_in_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OMSFLOW_WMS_SECRET")
    for argv in (["serve"], ["wms", "send", "picked", "X"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "OMSFLOW_WMS_SECRET is not set" in err[0]


def test_send_to_a_receiver_that_is_not_running_fails_in_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SystemExit) as info:
        main(["wms", "send", "picked", "X", "--url", f"http://127.0.0.1:{port}"])
    assert info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unreachable" in err[0]


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``omsflow serve --port 0`` as a background process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "serve", "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("wms receiver: "):
        proc.kill()
        pytest.fail(f"serve did not start: {first!r} {proc.stderr.read() if proc.stderr else ''}")
    url = first.split()[2].removesuffix("/wms/events")
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_serve_in_the_background_and_send_signed_events(
    env: dict[str, str],
    served: tuple[str, subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, proc = served
    _orders("S1", "S2", release=("S1",))
    res = _run("wms", "send", "picked", "S1", "--url", url, "--event-id", "ev-s1", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["status"], doc["outcome"], doc["state"]) == (202, "applied", "Ready_to_Ship")
    assert _state("S1")[0] == "Ready_to_Ship"
    replay = _run("wms", "send", "picked", "S1", "--url", url, "--event-id", "ev-s1")
    assert replay.exit_code == 1  # another occurred_at: another body under the same id
    assert replay.stdout.startswith("409 reused")
    at = ("--occurred-at", "2025-03-01T10:00:00Z")
    sent = _run("wms", "send", "packed", "S1", "--url", url, "--event-id", "ev-p", *at)
    resent = _run("wms", "send", "packed", "S1", "--url", url, "--event-id", "ev-p", *at)
    assert (sent.exit_code, resent.exit_code) == (0, 0)
    assert sent.stdout == resent.stdout
    assert resent.stdout.startswith("200 acknowledged: order S1")  # packed after picked
    refused = _run("wms", "send", "picked", "S2", "--url", url)
    assert refused.exit_code == 1
    assert refused.stdout.startswith("409 refused: order S2")
    missing = _run("wms", "send", "picked", "S404", "--url", url)
    assert (missing.exit_code, missing.stdout[:17]) == (1, "404 unknown_order")
    monkeypatch.setenv("OMSFLOW_WMS_SECRET", "not-the-receivers-secret")
    forged = _run("wms", "send", "handed_over", "S1", "--url", url)
    assert forged.exit_code == 1
    assert forged.stdout.startswith("401 unauthenticated")
    assert _state("S1")[0] == "Ready_to_Ship"
    # stop it the way a service manager does; the secret never appeared in its output
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode is not None
    assert SECRET not in out + err
    assert "wms event ev-s1 picked S1 -> applied" in err  # one log line per event
    assert "refused (401 bad_signature)" in err


# --------------------------------------------------------------------------- operator story


def _omsflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One ``omsflow`` command as its own process, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=env["PWD"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _background(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=env["PWD"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.communicate()


@pytest.mark.slow
def test_the_operator_story_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README "Fulfilment from the command line", every command a real process (SQLite)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PWD": str(tmp_path),
        "OMSFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'omsflow.db'}",
        "OMSFLOW_WMS_SECRET": SECRET,
        "OMSFLOW_LABEL_DIR": str(tmp_path / "labels"),
    }
    env.pop("OMSFLOW_WMS_URL", None)
    sandbox = _background(
        env,
        "sandbox",
        "serve",
        "--port",
        "0",
        "--products",
        "12",
        "--orders",
        "30",
        "--seed",
        "2",
    )
    receiver: subprocess.Popen[str] | None = None
    try:
        assert sandbox.stdout is not None
        first = sandbox.stdout.readline().split()  # "sandbox store: URL  (webservice: ...)"
        key = sandbox.stdout.readline().split()[1]  # "key: KEY"
        assert first[:2] == ["sandbox", "store:"], first
        shop = first[2]

        done = _omsflow(env, "store", "connect", "--url", shop, "--key", key)
        assert done.returncode == 0, done.stderr
        assert key not in done.stdout + done.stderr
        done = _omsflow(env, "sync", "orders")
        assert done.returncode == 0, done.stderr
        done = _omsflow(env, "orders", "list", "--state", "New", "--json")
        assert done.returncode == 0, done.stderr
        ref = json.loads(done.stdout)["orders"][0]["reference"]

        done = _omsflow(env, "orders", "fire", ref, "release")
        assert done.returncode == 0, done.stderr
        receiver = _background(env, "serve", "--port", "0")
        assert receiver.stdout is not None
        url = receiver.stdout.readline().split()[2].removesuffix("/wms/events")

        done = _omsflow(env, "wms", "send", "picked", ref, "--url", url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("202 applied")
        assert "state Ready_to_Ship" in done.stdout
        for _ in range(3):  # each pass delivers what is due (follow-ups included)
            done = _omsflow(env, "outbox", "run", "--once", "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            if json.loads(done.stdout)["leased"] == 0:
                break

        done = _omsflow(env, "orders", "show", ref, "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["state"] == "Ready_to_Ship"
        (shipment,) = doc["shipments"]
        assert Path(shipment["label_path"]).read_bytes().startswith(b"%PDF")
        assert all(e["state"] == "done" for e in doc["effects"])
        human = _omsflow(env, "orders", "show", ref).stdout
        assert f"shipment: AWB {shipment['awb']}\ttracking {shipment['tracking_id']}" in human

        # the store (another process) shows Shipped and the tracking number, over HTTP
        from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter

        bundle = load_bundle()
        with PrestaShopAdapter.from_channel(shop, key, bundle.channel) as adapter:
            ids, _ = adapter.resolve_states(["Shipped"])
            order = adapter.get_order(int(doc["external_id"]))
            assert order.current_state == ids["Shipped"]
            carriers = adapter.client.get(
                "order_carriers",
                params={"filter[id_order]": f"[{doc['external_id']}]", "display": "full"},
            )
            assert [c["tracking_number"] for c in carriers] == [shipment["tracking_id"]]
    finally:
        out, err = _stop(receiver) if receiver is not None else ("", "")
        _stop(sandbox, signal.SIGINT)  # Ctrl-C, as its banner says
    assert SECRET not in out + err


def _readme_block(language: str, marker: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    return next(b for b in blocks if marker in b)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="curl/openssl")
@pytest.mark.slow
def test_the_readme_wms_examples_work_against_omsflow_serve(
    env: dict[str, str], served: tuple[str, subprocess.Popen[str]]
) -> None:
    """The README's curl and Python examples, as written (URL swapped), against the real
    receiver: picked is applied, its resend gets the same answer, packed is acknowledged."""
    url, _proc = served
    _orders("XKBKNABJK", release=("XKBKNABJK",))
    shell = _readme_block("bash", "openssl dgst").replace("http://127.0.0.1:8000", url)
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            ["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    body, status = outputs[0].strip().rsplit("\n", 1)
    assert status == "202"
    answer = json.loads(body)
    assert (answer["outcome"], answer["state"]) == ("applied", "Ready_to_Ship")
    assert outputs[1] == outputs[0]  # a resend (new signature, same body): the same answer
    script = _readme_block("python", "urllib.request").replace("http://127.0.0.1:8000", url)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("200 {'outcome': 'acknowledged'"), done.stdout
    assert _state("XKBKNABJK") == ("Ready_to_Ship", False, None)
