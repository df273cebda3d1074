"""The ASGI app: OpenAI chat completions in front of redraft's methods.

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream: true``), ``GET /v1/models``
(methods x backends on offer), ``GET /health`` (no auth: for load balancers and probes).

Every request to ``/v1/*`` needs ``Authorization: Bearer <key>`` when the server has a key
(compared in constant time). The body is read up to ``max_body_bytes`` and no further (413).
Errors are ``{"error": {"message", "type", "param", "code"}}`` with 400 (bad request), 401
(key), 404 (unknown method or model, or path), 405, 413 (body too large), 500 (our fault) or
502 (the backend failed; the message says how).

While the method works, the endpoint also listens for the client going away: a disconnect
cancels the work (no further model calls; the waiting or running generation gives back its
scheduler units) and the request is stored with ``error = "cancelled: ..."``.

Streaming (SSE, ``data: <chunk>`` lines, ending ``data: [DONE]``) follows OpenAI's chunk format:
a first chunk with ``delta.role``, then progress chunks whose ``delta`` is empty and whose
extension field ``redraft.event`` holds one trace event (``call_started``, ``generation_started``, ``call`` with
the drafts' texts and token counts, and every decision a strategy notes: votes, scores,
critiques, rounds), then the final solution text as ``delta.content``, a chunk with
``finish_reason`` and ``redraft`` = the same summary a plain reply has, and the usage chunk when
``stream_options.include_usage`` asked for it. Ordinary clients ignore the extension field. A
backend failure after the stream began is sent as a chunk ``{"error": {...}}``, which the
official client raises as an APIError.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..models.base import Model, ModelError
from ..store import Store
from ..strategies import STRATEGIES, load_builtins
from .errors import ApiError
from .protocol import Offer, chunk_body, completion_body, now, parse_chat_request, usage_of
from .records import ServedRuns
from .scheduler import Scheduler
from .service import Job, Outcome, RefinementService

log = logging.getLogger("redraft.serve")

KEEPALIVE_SECONDS = 15.0
CONTENT_PIECE = 400  # characters per content chunk of the streamed answer


@dataclass
class ServeSettings:
    api_key: str | None = None
    max_body_bytes: int = 1_000_000
    max_budget: int = 16_384
    default_budget: int | None = None  # None: the maximum
    default_method: str = "cot"
    default_task: str = "math"
    methods: list[str] | None = None  # None: every registered strategy
    cache: bool = True
    seed: int = 0
    extra_settings: dict[str, Any] = field(default_factory=dict)  # stored with each run


def default_budget_of(max_budget: int, default_budget: int | None) -> int:
    """The budget of a request that states none. ValueError, naming the ``serve`` flags, unless both
    are positive integers and the default is at most the maximum."""
    for flag, value in (("--max-budget", max_budget), ("--default-budget", default_budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{flag} must be a positive integer, not {value!r}")
    if default_budget is None:
        return max_budget
    if default_budget > max_budget:
        raise ValueError(f"--default-budget {default_budget} is more than --max-budget {max_budget}")
    return default_budget


def create_app(models: dict[str, Model], scheduler: Scheduler, store: Store,
               settings: ServeSettings | None = None) -> Starlette:
    """The server for ``models`` (backend name -> open model), sharing ``scheduler``, storing into ``store``.

    The caller owns the models and the store (it opened them, it closes them)."""
    settings = settings or ServeSettings()
    load_builtins()
    methods = sorted(settings.methods if settings.methods is not None else STRATEGIES)
    unknown = [m for m in [*methods, settings.default_method] if m not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}: choose from {', '.join(sorted(STRATEGIES))}")
    if not models:
        raise ValueError("the server needs at least one model")
    max_budget = settings.max_budget
    default_budget = default_budget_of(max_budget, settings.default_budget)
    offer = Offer(frozenset(methods), frozenset(models), settings.default_method, settings.default_task,
                  max_budget, default_budget)
    session = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    runs = ServedRuns(store, session, {"max_budget": max_budget, "default_budget": default_budget,
                                       **settings.extra_settings})
    service = RefinementService(models, scheduler, runs, cache=settings.cache, seed=settings.seed)
    started = time.time()
    key = settings.api_key.encode() if settings.api_key else None

    def authorize(headers: dict[str, str]) -> None:
        if key is None:
            return
        given = headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
        if not hmac.compare_digest(token.strip().encode(), key):
            raise ApiError(401, "incorrect API key", code="invalid_api_key")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "uptime_seconds": round(time.time() - started, 1),
                             "models": sorted(models), "scheduler": scheduler.stats(),
                             "requests": {"active": service.active, "finished": service.served},
                             "session": session})

    async def list_models(request: Request) -> Response:
        try:
            authorize(_headers(request.scope))
        except ApiError as exc:
            return _error_response(exc)
        created = int(started)
        # every method:backend pair, and each bare backend (its default method) for clients that
        # check their configured model id against this list
        pairs = [(f"{method}:{backend}", method, backend) for method in methods for backend in sorted(models)]
        pairs += [(backend, settings.default_method, backend) for backend in sorted(models)]
        data = [{"id": model_id, "object": "model", "created": created, "owned_by": "redraft",
                 "redraft": {"method": method, "backend": backend}} for model_id, method, backend in pairs]
        return JSONResponse({"object": "list", "data": data})

    chat = ChatCompletions(service, offer, authorize, settings.max_body_bytes)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return _error_response(ApiError(404, f"no such endpoint: {request.url.path}", code="not_found"))
        if status == 405:
            return _error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}",
                                            code="method_not_allowed"))
        return _error_response(ApiError(status, str(getattr(exc, "detail", exc)), code="http_error"))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return _error_response(ApiError(500, f"internal error: {type(exc).__name__}", code="internal_error"))

    app = Starlette(
        routes=[Route("/health", health, methods=["GET"]), Route("/v1/models", list_models, methods=["GET"]),
                Route("/v1/chat/completions", chat, methods=["POST"])],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.service = service
    app.state.scheduler = scheduler
    app.state.runs = runs
    return app


class ChatCompletions:
    """``POST /v1/chat/completions`` as a plain ASGI app: it needs ``receive`` after the body, to
    hear a disconnect while the method works."""

    def __init__(self, service: RefinementService, offer: Offer,
                 authorize: Callable[[dict[str, str]], None], max_body_bytes: int) -> None:
        self.service = service
        self.offer = offer
        self.authorize = authorize
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            self.authorize(_headers(scope))
            raw = await self._read_body(scope, receive)
            if raw is None:
                return  # the client left while sending
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                message = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
                raise ApiError(400, f"the request body is not valid JSON: {message}", code="invalid_json") from None
            request = parse_chat_request(body, self.offer)
            job = self.service.prepare(request)
        except ApiError as exc:
            log.info("chat %s %s: %s", exc.status, exc.code, exc.message)
            await _error_response(exc)(scope, receive, send)
            return
        model_field = str(body.get("model"))
        headers = {"x-redraft-run": job.run.id, "x-redraft-problem": job.problem.id,
                   "x-redraft-trace": f"{job.run.id} {job.problem.id}"}
        if request.stream:
            status = await self._stream(job, model_field, headers, receive, send)
        else:
            status = await self._plain(job, model_field, headers, scope, receive, send)
        log.info("chat %s %s run=%s problem=%s %.2fs", status, model_field, job.run.id, job.problem.id,
                 time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = _headers(scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:  # a chunked body with no length: stop reading at the limit
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _race_disconnect(self, work: asyncio.Future[Any], receive: Receive) -> bool:
        """Wait for ``work``; if the client disconnects first, cancel it. True if the client stayed."""
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        done: set[asyncio.Future[Any]] = set()
        try:
            done, _ = await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
        return work in done

    async def _plain(self, job: Job, model_field: str, headers: dict[str, str], scope: Scope,
                     receive: Receive, send: Send) -> int | str:
        work = asyncio.ensure_future(self.service.solve(job))
        if not await self._race_disconnect(work, receive):
            return "cancelled"
        try:
            outcome = work.result()
        except Exception as exc:
            error = _failure(exc)
            await _error_response(error, headers)(scope, receive, send)
            return error.status
        cost = outcome.ctx.cost
        body = completion_body(f"chatcmpl-{job.problem.id}", model_field, now(), outcome.result.text,
                               outcome.finish_reason, usage_of(cost.prompt_tokens, cost.completion_tokens),
                               outcome.extension)
        await _json(body, headers)(scope, receive, send)
        return 200

    async def _stream(self, job: Job, model_field: str, headers: dict[str, str], receive: Receive,
                      send: Send) -> int | str:
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        work = asyncio.ensure_future(self.service.solve(job, events.put_nowait))
        work.add_done_callback(lambda _: events.put_nowait(None))
        completion_id, created = f"chatcmpl-{job.problem.id}", now()

        def chunk(delta: dict[str, Any] | None, **extra: Any) -> bytes:
            body = chunk_body(completion_id, model_field, created, delta, **extra)
            return b"data: " + json.dumps(body, default=str).encode() + b"\n\n"

        async def pump() -> int:
            await send({"type": "http.response.start", "status": 200, "headers": _raw_headers(
                {**headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                 "x-accel-buffering": "no"})})
            await _send_body(send, chunk({"role": "assistant", "content": ""}, extension={
                "event": {"type": "started", "run": job.run.id, "problem": job.problem.id,
                          "method": job.strategy.name, "backend": job.request.name.backend,
                          "budget": job.request.budget}}))
            while True:
                try:
                    # not wait_for: in 3.11 it can swallow a cancel that lands as the event arrives,
                    # and a disconnected client would then keep the method running
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        event = await events.get()
                except TimeoutError:
                    await _send_body(send, b": keep-alive\n\n")  # SSE comment: clients skip it
                    continue
                if event is None:
                    break
                await _send_body(send, chunk({}, extension={"event": event}))
            try:
                outcome: Outcome = work.result()
            except Exception as exc:
                error = _failure(exc)
                await _send_body(send, b"data: " + json.dumps(error.body()).encode() + b"\n\n")
                await _send_body(send, b"data: [DONE]\n\n", more=False)
                return error.status
            text = outcome.result.text
            for start in range(0, len(text), CONTENT_PIECE):
                await _send_body(send, chunk({"content": text[start:start + CONTENT_PIECE]}))
            cost = outcome.ctx.cost
            usage = usage_of(cost.prompt_tokens, cost.completion_tokens)
            await _send_body(send, chunk({}, finish_reason=outcome.finish_reason,
                                         extension={**outcome.extension, "usage": usage}))
            if job.request.include_usage:
                await _send_body(send, chunk(None, usage=usage))
            await _send_body(send, b"data: [DONE]\n\n", more=False)
            return 200

        streaming = asyncio.ensure_future(pump())
        try:
            stayed = await self._race_disconnect(streaming, receive)
        finally:
            if not work.done():  # the stream ended early (client gone, or a send failed): stop the method
                work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        if not stayed or streaming.cancelled():
            return "cancelled"
        try:
            return streaming.result()
        except OSError:  # the client went away between two sends
            return "cancelled"


def _failure(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ModelError):
        return ApiError(502, f"the backend failed: {exc}", code="backend_error")
    log.error("method failed", exc_info=exc)
    return ApiError(500, f"the method failed: {type(exc).__name__}: {exc}", code="internal_error")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is over this server's limit of {limit} bytes", code="request_too_large")


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def _json(body: dict[str, Any], headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status_code=status, headers=headers,
                    media_type="application/json")


def _error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    extra = {"www-authenticate": "Bearer"} if error.status == 401 else {}
    return _json(error.body(), {**(headers or {}), **extra}, error.status)


__all__ = ["ServeSettings", "create_app"]
