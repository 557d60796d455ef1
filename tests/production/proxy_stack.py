"""nginx (Debian's package) serving the shipped deploy/nginx/storefront.conf over TLS, in a temp prefix.

The shipped file is copied as an operator copies it, with only what an operator changes replaced (the
ports, the certificate and log paths, the upstream servers); a replacement that no longer matches fails,
so the test keeps proving the file in the repository.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from bench.stack import ROOT

SHIPPED = ROOT / "deploy" / "nginx" / "storefront.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LOG_LINE = re.compile(
    r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) .* upstream=(?P<upstream>\S+) .* node=(?P<node>\S+)$'
)


def self_signed_certificate(directory):
    """A certificate for 127.0.0.1 (an IP subjectAltName, which TLS clients check) and its key."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def render(directory, *, https_port, http_port, upstream_ports, cert, key):
    """The shipped file with an operator's edits for this machine: loopback ports, these paths."""
    text = SHIPPED.read_text()
    edits = {
        "    listen [::]:80;\n": "",
        "    listen [::]:443 ssl http2;\n": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/shop.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/shop.example.com/privkey.pem": str(key),
        "/var/log/nginx/storefront.access.log": str(Path(directory) / "access.log"),
        "    server 127.0.0.1:5001;\n    server 127.0.0.1:5002;\n": "".join(
            f"    server 127.0.0.1:{port};\n" for port in upstream_ports
        ),
    }
    for old, new in edits.items():
        assert text.count(old) == 1, f"deploy/nginx/storefront.conf no longer has {old!r} once: update the test"
        text = text.replace(old, new)
    return text


def main_config(directory):
    """The nginx.conf of the temp prefix: Debian's main context, with everything in `directory`, then the file."""
    tmp = Path(directory) / "tmp"
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "".join(f"    {kind}_temp_path {tmp / kind};\n" for kind in kinds)
    # Workers run as the master's user: as root (CI), `user root` lets them read the key in a 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
        f"events {{ worker_connections 1024; }}\n"
        f"http {{\n    default_type application/octet-stream;\n{temp_paths}"
        f"    include {directory}/storefront.conf;\n}}\n"
    )


class Nginx:
    """nginx in front of the given upstream ports, on free loopback ports: `url` is https://127.0.0.1:<port>."""

    def __init__(self, directory, upstream_ports, https_port, http_port):
        self.directory = Path(directory)
        (self.directory / "tmp").mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed_certificate(self.directory)
        conf = render(
            self.directory,
            https_port=https_port,
            http_port=http_port,
            upstream_ports=upstream_ports,
            cert=self.cert,
            key=key,
        )
        (self.directory / "storefront.conf").write_text(conf)
        (self.directory / "nginx.conf").write_text(main_config(self.directory))
        self.url, self.http_url = f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}"
        self.access_log = self.directory / "access.log"
        command = [NGINX, "-p", f"{self.directory}/", "-e", str(self.directory / "error.log")]
        command += ["-c", str(self.directory / "nginx.conf")]
        self._output = open(self.directory / "nginx.out", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._output, stderr=subprocess.STDOUT)
        self._wait_listening(https_port)

    def _wait_listening(self, port, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.error_tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not listen on {port}:\n{self.error_tail()}")

    def error_tail(self, lines=30):
        texts = [p.read_text(errors="replace") for p in (self.directory / "nginx.out", self.directory / "error.log")]
        return "\n".join("\n".join(t.splitlines()[-lines:]) for t in texts if t)

    def requests_logged(self):
        """The access log's lines as dicts: method, path, status, upstream (the process's address), node."""
        if not self.access_log.exists():
            return []
        return [m.groupdict() for m in map(LOG_LINE.search, self.access_log.read_text().splitlines()) if m]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._output.close()


def tls_session(cert):
    """A requests session trusting only this certificate (trust_env off: REQUESTS_CA_BUNDLE would win)."""
    session = requests.Session()
    session.verify, session.trust_env = str(cert), False
    return session
