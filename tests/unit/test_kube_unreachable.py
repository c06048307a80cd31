"""The operator while the API server is away: an Event that cannot be posted is lost
quietly, and best-effort work that fails is logged as a warning, not as a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client
from urllib3.exceptions import HTTPError

from kascade.operator.background import start_background
from kascade.operator.kube import Kube, passing

BODY = {"metadata": {"name": "r", "namespace": "ns", "uid": "u"}}


@pytest.fixture
def hanging_up() -> Iterator[str]:
    """A loopback server that accepts each connection and closes it without an answer,
    as a kube-apiserver does when it is stopped mid-request."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    server.close()


def _kube(host: str) -> Kube:
    settings = client.Configuration()
    settings.host = host
    settings.retries = 0
    return Kube(client.ApiClient(settings), concurrency=2)


def test_an_event_is_lost_without_an_error_when_the_api_server_hangs_up(
    hanging_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    kube = _kube(hanging_up)
    with caplog.at_level(logging.DEBUG, "kascade.operator"):
        asyncio.run(kube.event(BODY, "Run", "Running", "RUNNING: started"))
    assert any("event-lost" in record.getMessage() for record in caplog.records)


def test_a_write_to_an_api_server_that_hangs_up_still_fails(hanging_up: str) -> None:
    kube = _kube(hanging_up)
    with pytest.raises(HTTPError) as raised:
        asyncio.run(kube.patch_status("runs", "ns", "r", {"phase": "RUNNING"}))
    assert passing(raised.value)  # worth retrying: the reconcile loop tries again


def test_failed_background_work_is_logged_as_a_warning_not_left_to_asyncio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def away() -> None:
        raise ConnectionResetError("connection reset by peer")

    async def broken() -> None:
        raise ValueError("a mistake")

    async def main() -> None:
        tasks: set[asyncio.Task[None]] = set()
        first = start_background(tasks, away(), "run-event")
        second = start_background(tasks, broken(), "run-event")
        await asyncio.wait({first, second})
        await asyncio.sleep(0)
        assert not tasks

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    levels = {
        record.getMessage().split(" error=")[1]: record.levelno
        for record in caplog.records
        if "background-failed" in record.getMessage()
    }
    assert levels == {"connection reset by peer": logging.WARNING, "a mistake": logging.ERROR}
    assert not any("never retrieved" in record.getMessage() for record in caplog.records)
