"""The synthetic fleet the benchmarks serve: a console that quits mid-request is no error."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from bench.fleet import Fleet


def test_a_reset_connection_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(3).start()
    handled = threading.Event()
    server = fleet._server
    original = server.shutdown_request

    def shutdown_request(request: socket.socket) -> None:
        original(request)
        handled.set()

    server.shutdown_request = shutdown_request  # type: ignore[method-assign]
    try:
        client = socket.create_connection(("127.0.0.1", fleet.port))
        client.sendall(b"GET /api/v1/query?query=x HTTP/1.1\r\n")  # half a request...
        # ...then a reset (RST, not FIN), as a process that quits mid-request leaves it
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        assert handled.wait(30)
    finally:
        fleet.stop()
    assert "Traceback" not in capsys.readouterr().err
