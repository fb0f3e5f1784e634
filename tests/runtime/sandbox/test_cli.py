"""``omsflow sandbox serve`` as a process: prints URL and key, answers, stops on SIGINT."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import httpx


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
