"""``redraft probe-train``: fit the ``probe`` verifier on stored runs' graded samples.

    redraft probe-train --db benchmarks/spine.db --run RUN_ID [--run ...] --model qwen2.5-coder-1.5b \\
        -o probes/qwen1.5b-gsm8k.npz

Labels come from grading every stored solver sample of the runs with the run's task (the key is
used here, offline, on a train split; never at test time). Then score with ``probe:path=FILE``.
"""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("probe-train", help="fit a logistic-regression probe verifier on stored runs")
    parser.add_argument("--db", default=None, help="SQLite file (default: $REDRAFT_DB or ./redraft.db)")
    parser.add_argument("--run", action="append", required=True, help="a run id to take samples from (repeatable)")
    parser.add_argument("--model", required=True, help="the solver whose embeddings the probe reads")
    parser.add_argument("-o", "--output", required=True, help="probe file to write (.npz)")
    parser.add_argument("--pooling", default="mean", choices=("mean", "last", "cls"))
    parser.add_argument("--l2", type=float, default=10.0, help="L2 penalty on the standardised weights")
    parser.set_defaults(func=cmd_probe_train)


def cmd_probe_train(args: Any) -> int:
    import sys

    from ..store import Store
    from ..tasks import load_task
    from .probe import ProbeError, collect_examples, llamacpp_embedder, train_probe

    store = Store(args.db)
    try:
        runs = [store.get_run(run_id) for run_id in args.run]
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if len({(r.task, str(r.task_options)) for r in runs}) != 1:
        print("error: the runs must share one task and data file", file=sys.stderr)
        return 2
    task = load_task(runs[0].task, **runs[0].task_options)
    examples = collect_examples(store, [r.id for r in runs], task)
    print(f"{len(examples)} samples from {len({e.problem_id for e in examples})} problems, "
          f"{sum(e.correct for e in examples)} correct; embedding with {args.model}", file=sys.stderr)
    try:
        probe = train_probe(examples, llamacpp_embedder(args.model, args.pooling), model_name=args.model,
                            pooling=args.pooling, l2=args.l2, runs=[r.id for r in runs])
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = probe.save(args.output)
    print(f"wrote {path} (model {probe.meta['model_identity']}, {probe.meta['examples']} examples)")
    return 0
