"""One expert-iteration round end to end (STaR / rejection-sampling fine-tuning), on this machine.

sample k solutions per train problem -> grade them with the task's key -> SFT (LoRA) on the correct
ones -> greedy accuracy on held-out problems before and after, with 95% intervals.

Train and held-out problems are the ``arithmetic`` task under different generator seeds (so the
same ids name different problems); any held-out question that also occurs in the train set is
dropped from training. Sampling uses the sampler model (default: smollm2-135m in llama.cpp, the
same weights as the GGUF the base is dequantized from); both evaluations use the transformers
backend (``hf:smollm2-135m`` before, ``hf:DIR`` after), so the only difference is the training.

    .venv/bin/python benchmarks/expert_iteration.py            # the full round (see --help)
    .venv/bin/python benchmarks/expert_iteration.py --tiny     # plumbing check: 3 problems, 2 training steps
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from redraft.distill import ExportOptions, export_runs, write_export
from redraft.distill.train import TrainOptions, train
from redraft.models import load_model
from redraft.runner import execute_run, summarize
from redraft.stats import bootstrap_interval, wilson_interval
from redraft.store import RunInfo, Store
from redraft.strategies import make_strategy, options_of
from redraft.tasks import load_task


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="smollm2-135m", help="built-in model trained and evaluated (hf:BASE)")
    p.add_argument("--sampler", default="smollm2-135m", help="model that samples the train solutions")
    p.add_argument("--train-problems", type=int, default=100)
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--heldout-problems", type=int, default=100)
    p.add_argument("--heldout-seed", type=int, default=2)
    p.add_argument("--ops", type=int, default=2, help="arithmetic: operations per problem")
    p.add_argument("--k", type=int, default=4, help="samples per train problem")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-tokens", type=int, default=192)
    p.add_argument("--per-problem", type=int, default=2, help="at most this many correct solutions per problem")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for evaluation and training: on a shared 2-core machine one thread was "
                        "~15x faster than two (OpenMP threads spin against the other processes)")
    p.add_argument("--keep-truncated", action="store_true",
                   help="also train on right answers cut off at --max-tokens (plumbing checks only)")
    p.add_argument("--out", default="benchmarks/results/expert_iteration", help="directory for db, data, model")
    p.add_argument("--tiny", action="store_true",
                   help="plumbing check: 3 train / 3 held-out one-operation problems, k=4, 2 training steps")
    p.add_argument("--summarize", action="store_true",
                   help="only rewrite OUT/summary.md from OUT/summary.json (no sampling, training or evaluation)")
    return p


def parse() -> argparse.Namespace:
    args = parser().parse_args()
    if args.tiny:
        args.train_problems, args.heldout_problems, args.k, args.ops = 3, 3, 4, 1
        args.max_steps, args.max_tokens, args.batch_size = 2, 96, 2
        args.out = args.out.rstrip("/") + "-tiny"
    return args


def create_run(store: Store, task_options: dict[str, Any], strategy: str, options: dict[str, Any],
               model_name: str, identity: str, problem_ids: list[str]) -> RunInfo:
    chosen = make_strategy(strategy, options)
    config = dict(task="arithmetic", task_options=task_options, strategy=chosen.name,
                  strategy_options=options_of(chosen), model_identity=identity, settings={"seed": 0},
                  problem_ids=problem_ids)
    return store.find_latest(config) or store.create_run(model=model_name, uses_oracle=False, **config)


async def run_strategy(store: Store, task_options: dict[str, Any], strategy: str, options: dict[str, Any],
                       model_name: str, concurrency: int) -> RunInfo:
    """Run (or resume) a strategy over every problem of the task, with the model opened by name."""
    task = load_task("arithmetic", **task_options)
    model = load_model(model_name, parallel=4)
    try:
        run = create_run(store, task_options, strategy, options, model_name, model.identity,
                         [p.id for p in task.problems()])
        await execute_run(store, run, task, make_strategy(strategy, options), {"solver": model},
                          concurrency=concurrency)
    finally:
        await model.close()
    return run


def accuracy(store: Store, run: RunInfo) -> dict[str, Any]:
    summary = summarize(store, run)
    low, high = wilson_interval(summary.correct, summary.problems)
    return {"run": run.id, "model": run.model, "correct": summary.correct, "problems": summary.problems,
            "accuracy": summary.accuracy, "ci95": [low, high],
            "completion_tokens_per_problem": summary.per_problem(summary.cost.completion_tokens)}


def main() -> None:
    args = parse()
    if args.summarize:
        result = json.loads((Path(args.out) / "summary.json").read_text())
        (Path(args.out) / "summary.md").write_text(markdown(result, argparse.Namespace(**result["config"])))
        print((Path(args.out) / "summary.md").read_text())
        return
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(out / "runs.db")
    train_options = {"count": args.train_problems, "steps": args.ops, "seed": args.train_seed}
    heldout_options = {"count": args.heldout_problems, "steps": args.ops, "seed": args.heldout_seed}
    heldout_questions = frozenset(p.question for p in load_task("arithmetic", **heldout_options).problems())
    timings: dict[str, float] = {}
    greedy = {"max_tokens": args.max_tokens}

    started = time.perf_counter()
    sampled = asyncio.run(run_strategy(store, train_options, "self_consistency",
                                       {"n": args.k, "temperature": args.temperature, "max_tokens": args.max_tokens},
                                       args.sampler, concurrency=2))
    timings["sample"] = time.perf_counter() - started

    export = export_runs(store, [sampled.id], "sft",
                         ExportOptions(per_problem=args.per_problem, holdout_questions=heldout_questions,
                                       keep_truncated=args.keep_truncated))
    data = out / "sft.jsonl"
    write_export(export, data)
    print(f"sampled {args.k} x {args.train_problems} train problems: {export.stats}", flush=True)
    if not export.records:
        raise SystemExit("no correct sample to train on: raise --k or lower --ops")

    started = time.perf_counter()
    before = asyncio.run(run_strategy(store, heldout_options, "cot", greedy, f"hf:{args.base}", concurrency=16))
    timings["eval_before"] = time.perf_counter() - started

    started = time.perf_counter()
    model_dir = out / "model"
    meta = train(TrainOptions(format="sft", data=str(data), base=args.base, output=str(model_dir),
                              epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.learning_rate,
                              batch_size=args.batch_size, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                              max_length=args.max_tokens + 160, threads=args.threads),
                 say=lambda m: print(m, flush=True))
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    after = asyncio.run(run_strategy(store, heldout_options, "cot", greedy, f"hf:{model_dir}", concurrency=16))
    timings["eval_after"] = time.perf_counter() - started

    by_problem_before = {r.problem_id: r.correct for r in store.results(before.id)}
    by_problem_after = {r.problem_id: r.correct for r in store.results(after.id)}
    differences = [float(by_problem_after[p]) - float(by_problem_before[p]) for p in by_problem_before]
    result = {
        "config": vars(args), "train_task": train_options, "heldout_task": heldout_options,
        "sft_records": len(export.records), "export_stats": export.stats,
        "train": {k: meta[k] for k in ("steps", "train_loss", "seconds", "records", "data_sha256")},
        "before": accuracy(store, before), "after": accuracy(store, after),
        "difference": sum(differences) / len(differences) if differences else 0.0,
        "difference_ci95": list(bootstrap_interval(differences)),
        "flips": {"wrong_to_right": sum(d > 0 for d in differences), "right_to_wrong": sum(d < 0 for d in differences)},
        "seconds": {k: round(v, 1) for k, v in timings.items()}, "total_seconds": round(sum(timings.values()), 1),
    }
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    report = markdown(result, args)
    (out / "summary.md").write_text(report)
    print(report)
    print(f"summary in {out / 'summary.json'} and {out / 'summary.md'}")


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line of this round: every option that differs from its default (threads aside:
    they change only the time)."""
    defaults = vars(parser().parse_args([]))
    changed = [f"--{key.replace('_', '-')} {value}" for key, value in vars(args).items()
               if key in defaults and key not in ("threads", "summarize", "tiny") and value != defaults[key]]
    if getattr(args, "tiny", False):
        changed = ["--tiny"]
    return " ".join([".venv/bin/python benchmarks/expert_iteration.py", *changed])


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    """The round as a Markdown section (benchmarks/results.yaml can include it with ``markdown:``)."""
    b, a = result["before"], result["after"]
    low, high = result["difference_ci95"]

    def row(name: str, r: dict[str, Any]) -> str:
        return (f"| {name} | `{r['model']}` | {r['correct']}/{r['problems']} | {100 * r['accuracy']:.1f}% | "
                f"{100 * r['ci95'][0]:.1f}–{100 * r['ci95'][1]:.1f}% | {r['completion_tokens_per_problem']:.0f} |")

    stats = result["export_stats"]
    timing = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in result["seconds"].items())
    lines = [
        f"One expert-iteration round: `{args.sampler}` samples k={args.k} solutions (T={args.temperature}) for each "
        f"of {args.train_problems} `arithmetic` train problems (seed {args.train_seed}, {args.ops} operations); "
        f"the grader keeps {stats['attempts_correct']} correct of {stats['attempts']} distinct samples on "
        f"{stats['sft_problems_with_correct']} problems; {result['sft_records']} SFT records (at most "
        f"{args.per_problem} per problem) train a LoRA (r={args.lora_r}) on `{args.base}` for "
        f"{result['train']['steps']} steps (loss {result['train']['train_loss']:.3f}). Greedy accuracy on "
        f"{b['problems']} held-out problems (seed {args.heldout_seed}), both through the transformers backend:",
        "",
        "| | model | correct | accuracy | 95% CI (Wilson) | out tok/problem |",
        "|---|---|---|---|---|---|",
        row("before", b), row("after", a),
        "",
        f"Paired difference {100 * result['difference']:+.1f} points (95% bootstrap {100 * low:+.1f} to "
        f"{100 * high:+.1f}); wrong→right {result['flips']['wrong_to_right']}, right→wrong "
        f"{result['flips']['right_to_wrong']}. Time: {timing} (total {result['total_seconds'] / 60:.1f} min).",
        "",
        f"Reproduce: `{reproduce_command(args)}` (`--help` for the knobs).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
