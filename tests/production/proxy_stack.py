"""The shipped proxy configurations (deploy/nginx/storefront.conf, deploy/haproxy/storefront.cfg), run with
Debian's nginx and HAProxy over TLS in a temp directory, in front of the given upstream ports.

Each shipped file is copied as an operator copies it, with only what an operator changes replaced (ports,
certificate and log paths, upstream servers); a replacement that no longer matches fails, so the test keeps
proving the file in the repository.
"""

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from bench.stack import ROOT, stop_process

# Both files log `"<request line>" <status> … upstream=<ip:port> node=<the node cookie>`.
LOG_LINE = re.compile(
    r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) '
    r".* upstream=(?P<upstream>\S+) (?:.* )?node=\{?(?P<node>[^\s}]*)"
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


def edit(shipped, edits):
    """The shipped file with each `old` replaced by `new`; every `old` must be there exactly once."""
    text = shipped.read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, f"{shipped.relative_to(ROOT)} no longer has {old!r} once: update the test"
        text = text.replace(old, new)
    return text


def tls_session(cert):
    """A requests session trusting only this certificate (trust_env off: REQUESTS_CA_BUNDLE would win)."""
    session = requests.Session()
    session.verify, session.trust_env = str(cert), False
    return session


class Proxy:
    """A proxy process on free loopback ports: `url` is https://127.0.0.1:<port>, `http_url` its port 80."""

    name = "proxy"

    def __init__(self, directory, upstream_ports, https_port, http_port):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.upstream_ports = upstream_ports
        self.cert, self.key = self_signed_certificate(self.directory)
        self.url, self.http_url = f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}"
        self.output = self.directory / f"{self.name}.out"
        command = self.configure(https_port, http_port)
        self._output = open(self.output, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._output, stderr=subprocess.STDOUT)
        self._wait_listening(https_port)

    def configure(self, https_port, http_port):
        """Write the configuration; return the command that runs the proxy in the foreground."""
        raise NotImplementedError

    def node_candidates(self, index):
        """Node cookie values to try for a browser whose requests should reach upstream `index`."""
        raise NotImplementedError

    def _wait_listening(self, port, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {port}:\n{self.log_tail()}")

    def log_files(self):
        return [self.output]

    def log_tail(self, lines=30):
        texts = [path.read_text(errors="replace") for path in self.log_files() if path.exists()]
        return "\n".join("\n".join(text.splitlines()[-lines:]) for text in texts)

    def requests_logged(self):
        """The access log's lines as dicts: method, path, status, upstream (the process's address), node."""
        lines = [line for path in self.log_files() if path.exists() for line in path.read_text().splitlines()]
        return [match.groupdict() for match in map(LOG_LINE.search, lines) if match]

    def stop(self):
        stop_process(self.process)
        self._output.close()


class Nginx(Proxy):
    """nginx (`nginx -p DIR -c DIR/nginx.conf`) with the shipped file included in its `http` block."""

    name = "nginx"
    shipped = ROOT / "deploy" / "nginx" / "storefront.conf"

    def configure(self, https_port, http_port):
        directory = self.directory
        (directory / "tmp").mkdir(exist_ok=True)
        conf = edit(
            self.shipped,
            {
                "    listen [::]:80;\n": "",
                "    listen [::]:443 ssl http2;\n": "",
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                "/etc/letsencrypt/live/shop.example.com/fullchain.pem": str(self.cert),
                "/etc/letsencrypt/live/shop.example.com/privkey.pem": str(self.key),
                "/var/log/nginx/storefront.access.log": str(directory / "access.log"),
                "    server 127.0.0.1:5001;\n    server 127.0.0.1:5002;\n": "".join(
                    f"    server 127.0.0.1:{port};\n" for port in self.upstream_ports
                ),
            },
        )
        (directory / "storefront.conf").write_text(conf)
        (directory / "nginx.conf").write_text(self.main_config())
        command = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", f"{directory}/"]
        return command + ["-e", str(directory / "error.log"), "-c", str(directory / "nginx.conf")]

    def main_config(self):
        """Debian's main context, everything in the temp directory, then the shipped file inside `http`."""
        directory, tmp = self.directory, self.directory / "tmp"
        kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        temp_paths = "".join(f"    {kind}_temp_path {tmp / kind};\n" for kind in kinds)
        # Workers run as the master's user: as root (CI), `user root` lets them read the key in a 0700 temp dir.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}worker_processes 1;\ndaemon off;\npid {directory}/nginx.pid;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n    default_type application/octet-stream;\n{temp_paths}"
            f"    include {directory}/storefront.conf;\n}}\n"
        )

    def log_files(self):
        return [self.output, self.directory / "error.log", self.directory / "access.log"]

    def node_candidates(self, index):
        # nginx hashes the node: which process a value reaches is found by trying (the access log says).
        return [secrets.token_hex(16) for _ in range(40)]


class Haproxy(Proxy):
    """HAProxy (`haproxy -db -f DIR/haproxy.cfg`), the shipped file as the whole configuration, logging to stdout."""

    name = "haproxy"
    shipped = ROOT / "deploy" / "haproxy" / "storefront.cfg"

    def configure(self, https_port, http_port):
        pem = self.directory / "storefront.pem"  # HAProxy takes the chain and the key in one file
        pem.write_text(self.cert.read_text() + self.key.read_text())
        servers = {
            f"    server web{i} 127.0.0.1:{5000 + i} check cookie web{i}\n": (
                f"    server web{i} 127.0.0.1:{port} check cookie web{i}\n"
            )
            for i, port in enumerate(self.upstream_ports, start=1)
        }
        conf = edit(
            self.shipped,
            {
                "log /dev/log local0": "log stdout format raw local0",
                "bind :80\n": f"bind 127.0.0.1:{http_port}\n",
                "bind :443 ssl crt /etc/haproxy/certs/shop.example.com.pem": (
                    f"bind 127.0.0.1:{https_port} ssl crt {pem}"
                ),
                **servers,
            },
        )
        (self.directory / "haproxy.cfg").write_text(conf)
        return [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(self.directory / "haproxy.cfg")]

    def node_candidates(self, index):
        # HAProxy's cookie names the server (`cookie web1` on the first server line).
        return [f"web{index + 1}"]


PROXIES = {"nginx": Nginx, "haproxy": Haproxy}
