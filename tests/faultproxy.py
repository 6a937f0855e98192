"""A small real TCP proxy on 127.0.0.1 that a test can cut and restore.

Put it between a process and the shared PostgreSQL server to make that database "unreachable" or
"restart" for that process alone, without touching the server other engineers' tests use::

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/mydb"
        ...
        proxy.cut()      # live connections are reset; new ones are refused (port closed)
        proxy.restore()  # the same port listens again and forwards as before

``cut`` closes the listening socket as well as every live connection, so a client sees what it
would see while a server restarts: its open sessions die, and connecting is refused until it is
back.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_BUFFER = 65536


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._live: set[socket.socket] = set()
        self._accepting: threading.Thread | None = None
        self.connections = 0  # accepted and forwarded, over the proxy's life

    # --- control -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        with self._lock:
            self._listener = listener
        self._accepting = threading.Thread(
            target=self._accept, args=(listener,), name=f"faultproxy:{self.port}", daemon=True
        )
        self._accepting.start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every live one."""
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._live = self._live, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        for sock in live:
            _reset(sock)

    def restore(self) -> None:
        """Listen on the same port again."""
        if self._listener is None:
            self.start()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def stop(self) -> None:
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- forwarding ----------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _reset(client)
                    _reset(upstream)
                    return
                self._live.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_BUFFER)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with self._lock:
                done = source in self._live and sink in self._live
                if done:
                    self._live.discard(source)
                    self._live.discard(sink)
            if done:
                source.close()
                sink.close()


def _reset(sock: socket.socket) -> None:
    """End the connection at once, as a dying server's kernel would.

    shutdown() first: a bare close() does not end a connection while a pump thread is blocked
    in recv() on it (Linux keeps the socket until that call returns), so the far end would
    never hear of it. Then close with SO_LINGER 0, which sends RST if anything is left.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
