"""What serving costs: the server's added latency over calling the strategy in-process, and its
throughput at several numbers of concurrent clients, with the embedded model.

Usage (at scale, the embedded default model):
    python benchmarks/serve_latency.py --model qwen2.5-coder-1.5b --method cot --questions 8 --clients 1,8,32
Smoke (seconds):
    python benchmarks/serve_latency.py --model smollm2-135m --questions 3 --max-tokens 32 --clients 1,8,32 --requests 32

Both sides run in this one process and one event loop, on the same open model, greedy (so both
decode the same tokens) and with the call cache off (so nothing is served from it):

- latency: each question is solved once untimed (so the prompt is in llama.cpp's cache for both
  sides), then ``--reps`` times in-process (``strategy.solve`` on a SolveContext) and through the
  server with the official openai client, in alternating order, so background load and caches
  favour neither side. Reported: the ratio of total server time to total in-process time, the median of the
  per-question ratios and the median milliseconds added per request (medians: one stall of a busy
  machine should not make the number). Whether each pair spent the same tokens is checked and reported.
- throughput: ``--requests`` requests spread over C concurrent clients (questions cycled), for
  each C in ``--clients``: requests/s and completion tokens/s. The server's scheduler bound is
  ``--max-concurrency`` (llama.cpp slots the same).

Prints a markdown table for benchmarks/RESULTS.md and appends one JSON line to
benchmarks/results/serve_latency.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import uvicorn

from redraft.accounting import Budget
from redraft.context import SolveContext
from redraft.models import DEFAULT_MODEL, load_model
from redraft.models.base import Model
from redraft.serve.app import ServeSettings, create_app
from redraft.serve.naming import format_name
from redraft.serve.scheduler import Scheduler
from redraft.serve.task import ServedTask
from redraft.store import Store
from redraft.strategies import make_strategy
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.tasks.base import Problem, TaskView

RESULTS = Path(__file__).resolve().parent / "results" / "serve_latency.jsonl"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def in_process(model: Model, method: str, options: dict[str, Any], question: str,
                     budget: int) -> tuple[float, int]:
    """Seconds and completion tokens of one solve, called directly."""
    strategy = make_strategy(method, options)
    ctx = SolveContext(problem=Problem("direct", question), task=TaskView(ServedTask("math")),
                       models={"solver": model}, budget=Budget(budget))
    started = time.perf_counter()
    await strategy.solve(ctx)
    return time.perf_counter() - started, ctx.cost.completion_tokens


async def served(client: openai.AsyncOpenAI, model_field: str, question: str, budget: int) -> tuple[float, int]:
    started = time.perf_counter()
    reply = await client.chat.completions.create(model=model_field, messages=[{"role": "user", "content": question}],
                                                 extra_body={"redraft": {"budget": budget}})
    return time.perf_counter() - started, reply.usage.completion_tokens


async def throughput(client: openai.AsyncOpenAI, model_field: str, questions: list[str], clients: int,
                     requests: int, budget: int) -> dict[str, Any]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(questions[index % len(questions)])
    tokens = 0

    async def worker() -> None:
        nonlocal tokens
        while not queue.empty():
            question = queue.get_nowait()
            _, spent = await served(client, model_field, question, budget)
            tokens += spent

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return {"clients": clients, "requests": requests, "seconds": round(seconds, 2),
            "requests_per_s": round(requests / seconds, 3), "completion_tok_per_s": round(tokens / seconds, 1)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.max_tokens:
        options["max_tokens"] = args.max_tokens
    questions = [p.question for p in ArithmeticTask(count=args.questions, steps=3, seed=7).problems()]
    model = load_model(args.model, parallel=args.max_concurrency)
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(args.db or Path(scratch) / "serve_bench.db")
        app = create_app({args.model: model}, Scheduler(args.max_concurrency), store,
                         ServeSettings(cache=False, max_budget=args.budget))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        model_field = format_name(args.method, options, args.model)
        try:
            async with openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=3600) as client:
                pairs = []
                for index, question in enumerate(questions):
                    # untimed first solve: llama.cpp keeps the prompt's KV, so neither timed side pays
                    # for prompt processing the other one did not
                    await in_process(model, args.method, options, question, args.budget)
                    for rep in range(args.reps):
                        if (index + rep) % 2 == 0:  # alternate which side goes first
                            direct = await in_process(model, args.method, options, question, args.budget)
                            remote = await served(client, model_field, question, args.budget)
                        else:
                            remote = await served(client, model_field, question, args.budget)
                            direct = await in_process(model, args.method, options, question, args.budget)
                        pairs.append((direct, remote))
                        say(f"latency pair {len(pairs)}/{len(questions) * args.reps}: in-process {direct[0]:.2f} s, "
                            f"served {remote[0]:.2f} s")
                levels = []
                for clients in args.clients:
                    levels.append(await throughput(client, model_field, questions, clients,
                                                   args.requests or max(clients, len(questions)), args.budget))
                    say(f"throughput at {clients} clients: {levels[-1]}")
        finally:
            server.should_exit = True
            await serving
            await model.close()
            store.close()
    direct_total = sum(direct[0] for direct, _ in pairs)
    served_total = sum(remote[0] for _, remote in pairs)
    return {
        "model": args.model, "method": model_field, "questions": len(questions), "reps": args.reps, "max_concurrency":
        args.max_concurrency, "in_process_s": round(direct_total, 3), "served_s": round(served_total, 3),
        "latency_ratio": round(served_total / direct_total, 4),
        "median_pair_ratio": round(statistics.median(r[0] / d[0] for d, r in pairs), 4),  # robust to one stall
        "added_ms_per_request": round(1000 * statistics.median(r[0] - d[0] for d, r in pairs), 1),
        "same_tokens": all(d[1] == r[1] for d, r in pairs), "throughput": levels,
        "cpus": os.cpu_count(), "machine": platform.machine(), "when": time.strftime("%Y-%m-%d %H:%M"),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [f"### serve: {result['method']} ({result['questions']} arithmetic questions, "
             f"{result['cpus']} CPUs, {result['when']})", "",
             "| in-process s | served s | ratio (totals) | median pair ratio | median added ms/request | same tokens |",
             "|---|---|---|---|---|---|",
             f"| {result['in_process_s']} | {result['served_s']} | {result['latency_ratio']} | "
             f"{result['median_pair_ratio']} | {result['added_ms_per_request']} | {result['same_tokens']} |", "",
             "| clients | requests | seconds | requests/s | completion tok/s |", "|---|---|---|---|---|"]
    lines += [f"| {level['clients']} | {level['requests']} | {level['seconds']} | {level['requests_per_s']} | "
              f"{level['completion_tok_per_s']} |" for level in result["throughput"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--method", default="cot", help="a strategy name (greedy ones compare token for token)")
    parser.add_argument("--max-tokens", type=int, default=None, help="the method's max_tokens option")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--reps", type=int, default=2, help="timed in-process/served pairs per question")
    parser.add_argument("--clients", type=lambda text: [int(c) for c in text.split(",")], default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=None,
                        help="requests per throughput level (default: max(clients, questions))")
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--budget", type=int, default=16_384)
    parser.add_argument("--db", default=None, help="keep the served runs here (default: a temporary file)")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as out:
        out.write(json.dumps(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
