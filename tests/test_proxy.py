"""The shipped reverse-proxy configuration (deploy/nginx.conf) in front of the real web
service: slow headers are cut off, and the client address the web service rate-limits
on is the one nginx saw, never one the client wrote into X-Forwarded-For."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.settings import ROOT
from bot.web.app import make_app
from tests.conftest import free_port, unavailable
from tests.test_security import settings_for

HOST = "support.makana.example"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
async def proxied(aiohttp_server, tmp_path):
    """The web service (assistant down; not needed here) behind nginx with the shipped config."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        unavailable("nginx is not installed (make test installs it)")
    from bot.migrations import upgrade

    settings = settings_for(
        tmp_path, trusted_proxies=1, allowed_hosts=HOST, rate_per_client=60, rate_burst_client=3,
    )
    await asyncio.to_thread(upgrade, settings.database_url)
    server = await aiohttp_server(make_app(settings))
    cert, key = self_signed(tmp_path)
    http_port, https_port = free_port(), free_port()
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in (
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{server.port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/makana/fullchain.pem", str(cert)),
        ("/etc/ssl/makana/privkey.pem", str(key)),
        ("worker_processes auto;", "worker_processes 1;"),
    ):
        assert old in config, old  # the test follows the shipped file
        config = config.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(config)
    (tmp_path / "logs").mkdir()
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", f"daemon off; pid {tmp_path}/nginx.pid; "
         f"error_log {tmp_path}/logs/error.log;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", https_port)) == 0:
                break
        await asyncio.sleep(0.05)
    yield https_port
    process.terminate()
    process.wait(timeout=10)


def tls_connection(port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return context.wrap_socket(raw, server_hostname=HOST)


def get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    with tls_connection(port) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


async def test_the_proxy_cuts_off_a_client_that_sends_its_headers_slowly(proxied):
    def slowloris() -> float:
        with tls_connection(proxied) as conn:
            conn.sendall(f"GET /api/status HTTP/1.1\r\nHost: {HOST}\r\n".encode())  # and never the blank line
            started = time.monotonic()
            conn.settimeout(30)
            try:
                while conn.recv(4096):
                    pass
            except (ConnectionError, ssl.SSLError, TimeoutError):
                pass
            return time.monotonic() - started

    waited = await asyncio.to_thread(slowloris)
    assert waited < 20  # client_header_timeout 10s; without it the connection stays open


async def test_forwarded_for_written_by_the_client_does_not_dodge_the_rate_limit(proxied):
    def chat_burst() -> list[int]:
        out = []
        for i in range(4):
            body = f'{{"sender": "w-{"b" * 30}{i}", "message": "hi"}}'
            with tls_connection(proxied) as conn:
                conn.sendall(
                    f"POST /api/chat HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                    f"X-Forwarded-For: 203.0.113.{i}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
                    .encode()
                )
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            out.append(int(data.split(b" ", 2)[1]))
        return out

    statuses = await asyncio.to_thread(chat_burst)
    # Four different forged addresses, one real client: the burst of 3 is spent, the fourth waits.
    assert statuses[:3] == [503, 503, 503] and statuses[3] == 429


async def test_the_proxy_hides_its_version(proxied):
    status, data = await asyncio.to_thread(get, proxied, "/api/status")
    assert status == 200
    headers = data.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert "server: nginx\r\n" in headers + "\r\n" and "nginx/" not in headers
