"""Decode throughput of one stream against n samples decoded together (llama.cpp parallel slots).

Usage: python benchmarks/decode_throughput.py --model qwen2.5-coder-1.5b [--n 8] [--tokens 192] [--reps 2]
Prints one JSON line: tokens/s of each mode and their ratio, measured in the same process.
``--table FILE.jsonl`` prints the stored lines as a Markdown table instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time

from redraft.models import GenerationParams, load_model

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper and a storm."}]


async def measure(model_name: str, n: int, tokens: int, reps: int) -> dict:
    model = load_model(model_name, parallel=n)
    try:
        await model.generate(PROMPT, GenerationParams(max_tokens=8))  # warm up the prompt cache
        rates = {"single": [], "together": []}
        for rep in range(reps):
            for mode, count in (("single", 1), ("together", n)):
                started = time.perf_counter()
                outs = await model.generate(PROMPT, GenerationParams(n=count, temperature=0.8, max_tokens=tokens,
                                                                     seed=1000 * rep))
                seconds = time.perf_counter() - started
                rates[mode].append(sum(c.completion_tokens for c in outs) / seconds)
    finally:
        await model.close()
    single = sum(rates["single"]) / reps
    together = sum(rates["together"]) / reps
    return {"model": model_name, "n": n, "max_tokens": tokens, "reps": reps,
            "single_tok_s": round(single, 1), "together_tok_s": round(together, 1),
            "ratio": round(together / single, 2), "cpus": os.cpu_count(), "machine": platform.machine()}


def table(path: str) -> str:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    lines = ["| model | n | max tokens | reps | 1 stream tok/s | n together tok/s | ratio |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['n']} | {r['max_tokens']} | {r['reps']} | {r['single_tok_s']} | "
              f"{r['together_tok_s']} | {r['ratio']}x |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", metavar="FILE.jsonl", help="print stored measurements as Markdown")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=192)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    print(json.dumps(asyncio.run(measure(args.model, args.n, args.tokens, args.reps))))


if __name__ == "__main__":
    main()
