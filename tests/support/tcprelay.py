"""A TCP relay in front of PostgreSQL that a test can cut: the database "goes away" for
the process behind the relay (connections reset, new ones refused) while it keeps
running for everyone else, and comes back on :meth:`Relay.restore`.

Listens on 127.0.0.1 and forwards to the database of a URL (a unix socket directory for
the embedded server, or host:port), so ``url`` is the same database through the relay.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict


class Relay:
    """Use as a context manager; :attr:`url` reaches the database through the relay."""

    def __init__(self, db_url: str) -> None:
        info = conninfo_to_dict(db_url)
        host = str(info.get("host") or "127.0.0.1")
        port = int(info.get("port") or 5432)
        if host.startswith("/"):
            self._target: Any = os.path.join(host, f".s.PGSQL.{port}")
            self._family = socket.AF_UNIX
        else:
            self._target = (host, port)
            self._family = socket.AF_INET
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = 0
        self._listen()
        user = quote(str(info.get("user") or "postgres"), safe="")
        password = info.get("password")
        auth = f"{user}:{quote(str(password), safe='')}" if password else user
        self.url = f"postgresql://{auth}@127.0.0.1:{self.port}/{info.get('dbname') or 'postgres'}"

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(self._family, socket.SOCK_STREAM)
                upstream.connect(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuses new connections and resets every open one."""
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not, and
            # the port would keep accepting.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            socks, self._open = self._open, set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        """Listens again on the same port."""
        if self._listener is None:
            self._listen()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
