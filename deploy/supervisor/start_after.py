"""A supervisord event listener: `start_after.py FIRST GROUP...` starts the GROUPs once program FIRST exits 0.

deploy/supervisor/storefront.conf runs it as storefront-release: the web and worker programs start only
after the migration (storefront-migrate) succeeded. supervisord has no "after" between programs (its
priorities order starts, they don't wait for an exit), so this is the dependency.

Standard library only: it runs under whatever Python the store has, whether supervisord came from
Debian's package or from PyPI. The protocol is supervisord's event listener protocol (READY, a header
line, a payload, RESULT), the calls its XML-RPC interface at SUPERVISOR_SERVER_URL.
"""

import http.client
import os
import socket
import sys
import xmlrpc.client

# Faults that mean "already as asked" (supervisor.xmlrpc.Faults): a group started twice is not an error.
ALREADY_STARTED = 60


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self._path = path

    def make_connection(self, host):
        return _UnixConnection(self._path)


def supervisor_rpc(url):
    """supervisord's XML-RPC interface at `url` (unix:///path or http://host:port)."""
    if url.startswith("unix://"):
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_UnixTransport(url[len("unix://") :]))
    return xmlrpc.client.ServerProxy(url.rstrip("/") + "/RPC2")


def parse(line):
    """`key:value key:value` (a header or a PROCESS_STATE payload's first line) as a dict."""
    return dict(item.split(":", 1) for item in line.split())


def start_groups(rpc, groups):
    """Start every process of each group (wait=False: a slow start must not hold the listener)."""
    for group in groups:
        try:
            rpc.supervisor.startProcessGroup(group, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != ALREADY_STARTED:
                raise
        log(f"started {group}")


def log(message):
    # stdout is the protocol's channel: the listener's messages go to stderr (its log file).
    print(f"storefront-release: {message}", file=sys.stderr, flush=True)


def handle(event, first, groups, rpc):
    """One PROCESS_STATE_EXITED event: start the groups if it is FIRST exiting as expected (0)."""
    if event.get("processname") != first:
        return
    if event.get("expected") == "1":
        log(f"{first} exited 0: starting {', '.join(groups)}")
        start_groups(rpc, groups)
    else:
        log(f"{first} failed (exit status unexpected): {', '.join(groups)} not started; see {first}'s log")


def main(argv):
    first, groups = argv[1], argv[2:]
    rpc = supervisor_rpc(os.environ["SUPERVISOR_SERVER_URL"])
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = parse(sys.stdin.readline())
        payload = sys.stdin.read(int(header["len"]))
        try:
            handle(parse(payload.split("\n", 1)[0]), first, groups, rpc)
        except (OSError, xmlrpc.client.Error) as error:
            log(f"could not start {', '.join(groups)}: {error}")
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
