"""Refinement strategies vs self-consistency and best-of-N at matched token budgets, on a GSM8K slice.

Every run is an ordinary ``redraft run ... --resume`` into its own database, so a killed benchmark
continues where it stopped and repeated calls come from the call cache. Order:

1. ``cot`` (greedy): T_draft, the completion tokens of one draft per problem;
   ``best_of_n n=1`` (one sampled draft + one rating): T_candidate.
2. each refinement strategy, all under the same per-problem budget ``--budget`` (a hard cap);
3. for each refinement run, matched baselines on the same problems, model and budget:
   ``self_consistency`` with n = round(T_ref / T_draft) and ``best_of_n`` (rating verifier) with
   n = round(T_ref / T_candidate), T_ref being the refinement run's measured mean completion tokens
   per problem (all roles). Equal n's are run once.
4. ``benchmarks/summarize_refinement.py`` writes the table (accuracy, CI, tokens, calls, accuracy
   per round, flips, paired differences against the matched baselines).

Usage (repo root):
    .venv/bin/python benchmarks/strategies_gsm8k.py --model qwen2.5-coder-1.5b --limit 100 --budget 4000
Proof on a tiny slice (one configuration per strategy):
    .venv/bin/python benchmarks/strategies_gsm8k.py --model qwen2.5-coder-0.5b --limit 2 --budget 400 \\
        --max-tokens 200 --one-config --db /tmp/strategies_gsm8k_proof.db \\
        --out benchmarks/results/strategies_gsm8k_proof.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from redraft.runner import summarize  # noqa: E402
from redraft.store import Store  # noqa: E402
from redraft.strategies import make_strategy, options_of  # noqa: E402
from redraft.tasks import load_task  # noqa: E402

# (strategy, options): the configurations measured; max_tokens is added from --max-tokens
REFINEMENT = [
    ("self_refine", {}),
    ("self_refine", {"verifier": "rating"}),
    ("sequential_refine", {"rounds": 3}),
    ("pdr", {"p": 4, "rounds": 2}),
    ("pdr", {"p": 4, "rounds": 2, "vote": "inverse_entropy", "distill": "extract"}),
    ("try_again", {"verifier": "rating"}),
    ("try_again", {"verifier": "rating", "temperature_step": 0.3, "forbid_tried": True}),
    ("tick", {"n": 4, "rounds": 2}),
    ("iot", {"mode": "aiot"}),
    ("iot", {"mode": "giot"}),
]


def redraft_run(args: argparse.Namespace, strategy: str, options: dict[str, object]) -> None:
    command = [str(REPO / ".venv" / "bin" / "redraft"), "run", "--task", "gsm8k", "--data", args.data,
               "--db", args.db, "--resume", "--quiet", "--model", args.model, "--limit", str(args.limit),
               "--offset", str(args.offset), "--concurrency", str(args.concurrency), "--strategy", strategy]
    if args.budget:
        command += ["--budget", str(args.budget)]
    for key, value in options.items():
        command += ["-o", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    print("+", " ".join(command), flush=True)
    if not args.dry_run:
        subprocess.run(command, check=True, cwd=REPO)


def mean_tokens(args: argparse.Namespace, strategy: str, options: dict[str, object]) -> float | None:
    """Mean completion tokens per problem of the newest run of this strategy and options (None if absent)."""
    ids = [p.id for p in load_task("gsm8k", data=args.data).problems(limit=args.limit, offset=args.offset)]
    store = Store(args.db)
    try:
        wanted = options_of(make_strategy(strategy, {k: str(v).lower() if isinstance(v, bool) else str(v)
                                                     for k, v in options.items()}))
        for run in reversed(store.list_runs()):
            same_setting = run.model == args.model and run.settings.get("budget_tokens") == args.budget
            if run.strategy == strategy and same_setting and run.problem_ids == ids and run.strategy_options == wanted:
                summary = summarize(store, run)
                return summary.per_problem(summary.cost.completion_tokens) if summary.problems else None
    finally:
        store.close()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--data", default="../shared/data/gsm8k/train.jsonl")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--budget", type=int, default=4000, help="completion tokens per problem, every run")
    parser.add_argument("--max-tokens", type=int, default=512, help="per generated solution")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--db", default="benchmarks/strategies_gsm8k.db")
    parser.add_argument("--out", default="benchmarks/results/strategies_gsm8k.md")
    parser.add_argument("--only", help="comma-separated strategy names to run (default: all)")
    parser.add_argument("--one-config", action="store_true",
                        help="only the first configuration of each strategy (a quick proof)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands; matched n needs stored runs")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    solution = {"max_tokens": args.max_tokens}
    configs = [(s, o) for s, o in REFINEMENT if only is None or s in only]
    if args.one_config:
        configs = [(s, o) for i, (s, o) in enumerate(configs) if s not in {t for t, _ in configs[:i]}]

    redraft_run(args, "cot", solution)
    redraft_run(args, "best_of_n", {"n": 1, **solution})
    for strategy, options in configs:
        redraft_run(args, strategy, {**options, **solution})

    draft = mean_tokens(args, "cot", solution)
    candidate = mean_tokens(args, "best_of_n", {"n": 1, **solution})
    sc_ns: set[int] = set()
    bon_ns: set[int] = set()
    matches = {}
    for strategy, options in configs:
        spent = mean_tokens(args, strategy, {**options, **solution})
        if spent is None or not draft or not candidate:
            continue
        sc_n, bon_n = max(1, round(spent / draft)), max(1, round(spent / candidate))
        sc_ns.add(sc_n)
        bon_ns.add(bon_n)
        matches[f"{strategy} {json.dumps(options, sort_keys=True)}"] = {"tokens": spent, "self_consistency_n": sc_n,
                                                                       "best_of_n_n": bon_n}
    print(json.dumps({"T_draft": draft, "T_candidate": candidate, "matches": matches}, indent=1), flush=True)
    for n in sorted(sc_ns):
        redraft_run(args, "self_consistency", {"n": n, **solution})
    for n in sorted(bon_ns - {1}):
        redraft_run(args, "best_of_n", {"n": n, **solution})
    if not args.dry_run:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(REPO / args.out, "w", encoding="utf-8") as out:
            subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize_refinement.py"), "--db", args.db,
                            "--title", f"GSM8K dev (train.jsonl) problems {args.offset}-{args.offset + args.limit - 1},"
                            f" {args.model}, budget {args.budget} tokens/problem"],
                           check=True, cwd=REPO, stdout=out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
