"""Lean asyncio clients for the load generator: keep-alive HTTP/1.1 and Socket.IO tabs over WebSocket.

Thousands of python-socketio clients would need a thread each and would measure themselves; these
speak the same protocol (Engine.IO 4 over WebSocket via wsproto, Socket.IO 5 packets) on one event
loop, and stamp every push with time.monotonic() the moment its bytes are read.
"""

import asyncio
import json
import time

from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError


class HttpError(Exception):
    """The connection broke or the answer could not be read."""


class Http:
    """One keep-alive HTTP/1.1 connection; requests on it run one at a time."""

    def __init__(self, host, port, cookie=None):
        self.host, self.port, self.cookie = host, port, cookie
        self._reader = self._writer = None
        self._lock = asyncio.Lock()

    async def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes); a JSON-able `body` is sent as JSON."""
        async with self._lock:
            for attempt in (1, 2):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
                try:
                    return await self._exchange(method, path, body, headers or {})
                except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                    self.close()
                    if attempt == 2:
                        raise
        raise HttpError("unreachable")

    async def json(self, method, path, body=None, headers=None):
        status, _, raw = await self.request(method, path, body, headers)
        return status, json.loads(raw) if raw else None

    async def _exchange(self, method, path, body, headers):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(data)}"]
        if body is not None and "Content-Type" not in headers:
            lines.append("Content-Type: application/json")
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        answer_headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                answer_headers.setdefault(name.strip().lower(), value.strip())
                if name.strip().lower() == "set-cookie" and self.cookie is None:
                    self.cookie = value.strip().split(";", 1)[0]
        payload = await self._body(answer_headers)
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split()[1]), answer_headers, payload

    async def _body(self, headers):
        if "content-length" in headers:
            return await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
            await self._reader.readuntil(b"\r\n")
            return b"".join(chunks)
        raise HttpError("an answer with neither Content-Length nor chunked encoding")

    def close(self):
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class Tab:
    """A Socket.IO connection as a browser tab holds it: calls `on_event(tab, name, data, t)` for each event."""

    def __init__(self, host, port, cookie=None, query="", on_event=None):
        self.host, self.port, self.cookie, self.query = host, port, cookie, query
        self.on_event = on_event
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.error = None
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._writer = None
        self._task = None
        self._partial = []

    async def connect(self, timeout=30.0):
        """Open the WebSocket and the Socket.IO session; raises if the server refuses."""
        self._task = asyncio.create_task(self._run())
        connected = asyncio.create_task(self.connected.wait())
        closed = asyncio.create_task(self.closed.wait())
        try:
            await asyncio.wait({connected, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            closed.cancel()
        if not self.connected.is_set():
            raise ConnectionError(self.error or "the tab did not connect in time")
        return self

    async def _run(self):
        try:
            reader, self._writer = await asyncio.open_connection(self.host, self.port)
            headers = [("Cookie", self.cookie)] if self.cookie else []
            target = f"/socket.io/?EIO=4&transport=websocket{self.query}"
            self._send(Request(host=f"{self.host}:{self.port}", target=target, extra_headers=headers))
            while data := await reader.read(65536):
                stamp = time.monotonic()
                self._ws.receive_data(data)
                self._handle(stamp)
        except (OSError, asyncio.IncompleteReadError, LocalProtocolError, RemoteProtocolError) as err:
            self.error = self.error or f"{type(err).__name__}: {err}"
        finally:
            self.closed.set()
            if self._writer is not None:
                self._writer.close()

    def _send(self, event):
        if isinstance(event, TextMessage) and self._ws.state is not ConnectionState.OPEN:
            return  # closing: nothing more to say
        self._writer.write(self._ws.send(event))

    def _handle(self, stamp):
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._partial.append(event.data)
                if event.message_finished:
                    message, self._partial = "".join(self._partial), []
                    self._packet(message, stamp)
            elif isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, RejectConnection):
                self.error = f"WebSocket refused with {event.status_code}"
                self._writer.close()
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._send(event.response())
                self._writer.close()
            elif isinstance(event, AcceptConnection):
                pass

    def _packet(self, message, stamp):
        kind = message[:1]
        if kind == "0":
            self._send(TextMessage(data="40"))
        elif kind == "2":
            self._send(TextMessage(data="3"))
        elif message.startswith("40"):
            self.connected.set()
        elif message.startswith("44"):
            self.error = f"Socket.IO connection refused: {message[2:]}"
        elif message.startswith("42") and self.on_event is not None:
            name, *args = json.loads(message[2:])
            self.on_event(self, name, args[0] if args else None, stamp)

    async def close(self):
        """Leave as a closing tab does."""
        if self._writer is not None and not self.closed.is_set():
            try:
                self._send(TextMessage(data="41"))
                self._send(CloseConnection(code=1000))
            except Exception:  # noqa: BLE001 - the connection may already be half gone
                self._writer.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
