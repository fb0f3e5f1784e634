"""``omsflow sandbox serve`` as a process: prints URL and key, answers, stops on SIGINT."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import httpx
import pytest


@pytest.mark.slow
def test_sandbox_serve_prints_url_and_key_and_serves() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import cli; cli.main()",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--products",
            "5",
            "--orders",
            "3",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or lines[-1].strip() != "}":
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            lines.append(line)
        info = json.loads("".join(lines))
        assert re.fullmatch(r"[A-Z0-9]{32}", info["key"])
        r = httpx.get(info["api"] + "/products", auth=(info["key"], ""), timeout=10)
        assert r.status_code == 200
        assert r.text.count("<product id=") == 5
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.returncode == 0


SERVE = [sys.executable, "-c", "import cli; cli.main()", "sandbox", "serve", "--port", "0"]
OLD = ["--version", "1.7.7.8"]


@pytest.mark.slow
def test_sandbox_serve_plays_an_older_store_in_three_languages() -> None:
    """``--version 1.7.7.8 --languages 3``: the headers, products and languages of that store."""
    proc = subprocess.Popen(
        [*SERVE, "--products", "4", "--orders", "1", "--languages", "3", *OLD, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or lines[-1].strip() != "}":
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            lines.append(line)
        info = json.loads("".join(lines))
        auth = (info["key"], "")
        r = httpx.get(info["api"] + "/products/1", auth=auth, timeout=10)
        assert r.headers["psws-version"] == "1.7.7.8"
        assert "<product_type>" not in r.text  # 1.7.8.0 added it
        assert "<state>" in r.text  # 1.7.0.0 had it
        langs = httpx.get(info["api"] + "/languages", auth=auth, timeout=10)
        assert langs.text.count("<language id=") == 3
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.returncode == 0


def test_sandbox_serve_refuses_a_version_it_cannot_play_in_one_line() -> None:
    proc = subprocess.run(
        [*SERVE, "--version", "1.6.1.24"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: sandbox: the sandbox plays PrestaShop 1.7.x and 8.x stores, not 1.6.1.24"
    ]


@pytest.mark.slow
def test_sandbox_serve_runs_on_the_shop_clock_it_is_given() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "sandbox", "serve", "--port", "0",
         "--products", "3", "--orders", "3", "--timezone", "Asia/Tokyo", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1].strip() != "}":
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            lines.append(line)
        info = json.loads("".join(lines))
        r = httpx.get(
            info["api"] + "/configurations",
            params={"filter[name]": "[PS_TIMEZONE]", "display": "[name,value]"},
            auth=(info["key"], ""),
            timeout=10,
        )
        assert re.search(r"<value><!\[CDATA\[Asia/Tokyo\]\]></value>", r.text), r.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
