"""The small things of the command and the server: bare help, --version, the read token, a busy port, offline /docs."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from tokencost.cli import main
from tokencost.server import create_app

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "gpt-4o", "prompt_tokens": 100, "completion_tokens": 10}


def test_bare_command_prints_its_help() -> None:
    """`tokencost` alone lists the commands on stdout and exits 0 (it used to be an error)."""
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0, result.output
    assert "Commands:" in result.stdout
    assert "report" in result.stdout
    assert result.stderr == ""


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("tokencost ")
    assert "tokencost-ledger" in result.stdout


def test_the_refusal_to_listen_beyond_loopback_says_what_the_token_protects(tmp_path: Path) -> None:
    result = CliRunner(env={"TOKENCOST_SERVER_TOKEN": None}).invoke(
        main, ["serve", "--store", f"sqlite:///{tmp_path / 'x.db'}", "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "protects writes only" in result.stderr
    assert "--read-token" in result.stderr


def test_a_read_token_protects_reads_and_the_dashboard() -> None:
    """With a read token every read but /health needs it (or the write token); the dashboard keeps it in a cookie."""
    with TestClient(create_app("memory://", token="w-secret", read_token="r-secret")) as c:
        assert c.get("/health").status_code == 200
        for path in ("/summary", "/recent", "/budgets", "/models", "/", "/dashboard/fragment", "/calls"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"Authorization": "Bearer r-secret"}).status_code == 200, path
            assert c.get(path, headers={"Authorization": "Bearer w-secret"}).status_code == 200, path
            assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        # The read token does not write.
        assert c.post("/track", json=BODY, headers={"Authorization": "Bearer r-secret"}).status_code == 401
        assert c.post("/track", json=BODY, headers={"Authorization": "Bearer w-secret"}).status_code == 200
        page = c.get("/", params={"token": "r-secret"})
        assert page.status_code == 200
        assert "tokencost_read" in page.headers["set-cookie"]
        assert "HttpOnly" in page.headers["set-cookie"]
        assert c.get("/dashboard/fragment").status_code == 200  # the cookie the page got
        assert c.get("/calls").status_code == 200  # where its bars lead
    with TestClient(create_app("memory://")) as c:
        assert c.get("/summary").status_code == 200  # no read token: reads are open


def test_docs_work_offline() -> None:
    """/docs is a page of its own that loads nothing from elsewhere (Swagger UI came from a CDN)."""
    with TestClient(create_app("memory://")) as c:
        page = c.get("/docs")
    assert page.status_code == 200
    text = page.text
    assert "<script" not in text
    assert "cdn" not in text.lower()
    assert "src=" not in text
    for route in ("/summary", "/track", "/recent", "/budgets", "SummaryOut", "prompt_tokens"):
        assert route in text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_a_busy_port_fails_before_saying_it_serves(tmp_path: Path) -> None:
    """With the port taken, serve exits 2 with one line naming the address, and never printed "serving at"."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("TOKENCOST_STORE", "TOKENCOST_NAME")}
        env["PYTHONPATH"] = str(ROOT)
        done = subprocess.run(
            [sys.executable, "-m", "tokencost.cli", "serve", "--store", "sqlite:///x.db", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
    assert done.returncode == 2, done.stderr
    assert "serving" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
