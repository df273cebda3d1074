"""Helpers for the serve tests: a real uvicorn server on a free loopback port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from redraft.models.base import Model
from redraft.models.scripted import ScriptedModel
from redraft.serve.app import ServeSettings, create_app
from redraft.serve.scheduler import Scheduler
from redraft.store import Store


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` on loopback until the block ends; yields the base URL (``http://127.0.0.1:PORT``)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def answer_42(messages: list[dict[str, str]], params: Any, index: int) -> str:
    return "Six times seven is 42. \\boxed{42}"


@contextmanager
def scripted_server(db: Path, *, models: dict[str, Model] | None = None, max_concurrency: int = 4,
                    **settings: Any) -> Iterator[tuple[str, Any, Store]]:
    """A server with a scripted backend ``scripted`` (unless ``models`` is given); yields (url, app, store)."""
    models = models if models is not None else {"scripted": ScriptedModel(responder=answer_42)}
    store = Store(db)
    app = create_app(models, Scheduler(max_concurrency), store, ServeSettings(**settings))
    try:
        with running(app) as url:
            yield url, app, store
    finally:
        store.close()
