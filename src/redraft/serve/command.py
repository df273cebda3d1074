"""``redraft serve``: open the backends, build the app, run it on uvicorn until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
from collections.abc import Iterator

from rich.console import Console

from ..models import BUILTIN_MODELS, DEFAULT_MODEL, load_model
from ..models.base import Model
from ..store import Store
from .scheduler import Scheduler
from .task import TASK_FORMATS

console = Console(stderr=True)


def _uvicorn_server(config: object) -> object:
    import uvicorn

    class QuietExitServer(uvicorn.Server):
        """uvicorn re-raises a caught Ctrl-C after its graceful shutdown; for a server that is the
        normal way to stop, so it ends here with exit code 0 instead of an interrupt."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()

    return QuietExitServer(config)


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve methods behind the OpenAI chat-completions API",
        description="Serve redraft's methods as an OpenAI-compatible API. A request's model is "
                    "METHOD[@K=V,...]:BACKEND (e.g. self_consistency@n=8:qwen2.5-coder-1.5b) or a bare BACKEND "
                    "(the default method). See docs/serve.md.")
    serve.add_argument("--model", action="append", metavar="M",
                       help=f"a backend to offer (repeat for more): {', '.join(BUILTIN_MODELS)}, a .gguf path, "
                            f"or openai:MODEL (default: {DEFAULT_MODEL})")
    serve.add_argument("--base-url", help="OpenAI-compatible server for openai:MODEL backends (or OPENAI_BASE_URL)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key-env", metavar="VAR",
                       help="name of the environment variable holding the key clients must send as a Bearer token")
    serve.add_argument("--max-budget", type=int, default=16_384,
                       help="most completion tokens one request may spend (a request asking for more gets 400)")
    serve.add_argument("--default-budget", type=int, default=None,
                       help="budget of a request that states none (default: --max-budget)")
    serve.add_argument("--max-concurrency", type=int, default=8,
                       help="generations decoded at once across all requests (a call with n samples counts n)")
    serve.add_argument("--parallel", type=int, default=None,
                       help="llama.cpp parallel slots (default: --max-concurrency)")
    serve.add_argument("--max-body-bytes", type=int, default=1_000_000, help="largest request body accepted")
    serve.add_argument("--default-method", default="cot", help="method for a bare backend name")
    serve.add_argument("--method", action="append", dest="methods", metavar="NAME",
                       help="offer only these methods (repeat; default: every registered strategy)")
    serve.add_argument("--task", default="math", choices=TASK_FORMATS,
                       help="answer format of a request that states none (see docs/serve.md)")
    serve.add_argument("--no-cache", action="store_true", help="do not reuse identical deterministic calls")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--db", default=None, help="SQLite file for served runs (default: $REDRAFT_DB or ./redraft.db)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=run_serve)


def _api_key(variable: str | None) -> str | None:
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        raise ValueError(f"--api-key-env {variable}: that environment variable is not set or is empty")
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import ServeSettings, create_app, default_budget_of

    default_budget_of(args.max_budget, args.default_budget)  # refuse bad budgets before loading a model
    key = _api_key(args.api_key_env)
    if key is None and not _is_loopback(args.host):
        console.print(f"[yellow]warning: serving on {args.host} with no API key; anyone who can reach it can "
                      "spend this machine's compute (use --api-key-env)[/yellow]")
    for name, value in (("--max-concurrency", args.max_concurrency), ("--max-body-bytes", args.max_body_bytes)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    names = args.model or [DEFAULT_MODEL]
    if len(set(names)) != len(names):
        raise ValueError("a --model is given twice")
    parallel = args.parallel or args.max_concurrency
    models: dict[str, Model] = {}
    store = Store(args.db)
    try:
        for name in names:
            models[name] = load_model(name, base_url=args.base_url, parallel=parallel,
                                      say=lambda message: console.print(f"[dim]{message}[/dim]"))
        settings = ServeSettings(
            api_key=key, max_body_bytes=args.max_body_bytes, max_budget=args.max_budget,
            default_budget=args.default_budget, default_method=args.default_method, default_task=args.task,
            methods=args.methods, cache=not args.no_cache, seed=args.seed)
        app = create_app(models, Scheduler(args.max_concurrency), store, settings)
        # our request lines at the chosen level; other libraries' chatter (HTTP clients) only when it matters
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("redraft").setLevel(args.log_level.upper())
        console.print(f"serving {', '.join(names)} on http://{args.host}:{args.port}/v1 "
                      f"({'key required' if key else 'no key'}; runs stored in {store.path})")
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                timeout_graceful_shutdown=5)
        await _uvicorn_server(config).serve()
    finally:
        for model in models.values():
            await model.close()
        store.close()
    return 0
