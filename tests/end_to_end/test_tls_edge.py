"""The README's recipe for sharing: the shipped nginx edge with TLS in front of a real Ruang
(browsers publish a microphone only from https pages or localhost). A self-signed certificate
made with openssl, the edge rendered with it, and a page and a listen_url fetched over https
with the certificate as the only trusted root."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from ruangtest import RuangServer, free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
KEY = "tls-test-key-" + "k" * 40


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key (the README's command)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_pages_and_listening_over_https(server_factory, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    origin: RuangServer = server_factory(
        args=("--public-url", public, "--trusted-proxy", "127.0.0.1"),
        env={"RUANG_TICKET_KEY": KEY},
    )
    origin.start()
    prefix = tmp_path / "nginx"
    for sub in ("cache", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = subprocess.run(
        [str(ROOT / "deploy/nginx/render"), f"127.0.0.1:{port}", f"127.0.0.1:{origin.port}"]
        + [str(prefix / "cache"), str(prefix)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "RUANG_TLS_CERT": str(cert), "RUANG_TLS_KEY": str(key)},
    ).stdout
    assert "ssl_certificate " in conf
    (prefix / "nginx.conf").write_text(
        conf.replace("worker_processes auto;", "worker_processes 1;\nuser root;")
    )
    edge = subprocess.Popen(
        [NGINX, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"],
        env={**os.environ, "RUANG_TICKET_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=public, verify=str(cert), timeout=10) as api:
            deadline = time.monotonic() + 10
            while True:
                try:
                    api.get("/healthz")
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, (prefix / "error.log").read_text()
                    time.sleep(0.1)
            space = api.post("/api/spaces", json={"title": "Over TLS"}).json()
            assert space["page_url"] == f"{public}/s/{space['id']}"
            page = api.get(space["page_url"])
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            joined = api.post(f"/api/spaces/{space['id']}/join", json={}).json()
            assert joined["listen_url"].startswith(f"{public}/hls/")
            playlist = api.get(joined["listen_url"])
            assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
        # curl, as the README shows it, trusting only that certificate
        curl = subprocess.run(
            ["curl", "-sS", "--cacert", str(cert), "-o", "/dev/null", "-w", "%{http_code}"]
            + [space["page_url"]],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert curl.stdout == "200", curl.stderr
        untrusted = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", space["page_url"]], capture_output=True, timeout=20
        )
        assert untrusted.returncode != 0  # a self-signed certificate is not trusted by default
    finally:
        edge.terminate()
        edge.wait(timeout=10)
