"""``redraft distill RUN... --format F -o FILE.jsonl`` and ``redraft train --format F DATA --base M -o DIR``."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from ..store import Store
from .export import FORMATS, ExportOptions, export_runs, write_export
from .train import TRAIN_FORMATS, TrainOptions, train

console = Console(stderr=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    distill = subparsers.add_parser("distill", help="turn stored runs into a training set (JSONL)")
    distill.add_argument("runs", nargs="+", metavar="RUN", help="run ids (or unique parts of them)")
    distill.add_argument("--format", required=True, choices=FORMATS)
    distill.add_argument("-o", "--output", required=True, metavar="FILE.jsonl",
                         help="refine writes FILE.global.jsonl and FILE.local.jsonl")
    distill.add_argument("--db", default=None, help="SQLite file (default: $REDRAFT_DB or ./redraft.db)")
    distill.add_argument("--per-problem", type=int, default=4, help="sft: at most this many solutions per problem")
    distill.add_argument("--only-hard", action="store_true",
                         help="sft: only problems whose greedy draft was wrong (needs a greedy run among RUNs)")
    distill.add_argument("--pairs-per-problem", type=int, default=4, help="dpo: at most this many pairs per problem")
    distill.add_argument("--rejected-needs-answer", action="store_true",
                         help="dpo: a rejected solution must give a wrong answer, not none")
    distill.add_argument("--sources", help="comma-separated attempt sources to keep (draft, refine, global, "
                                           "local, final, ...); default all")
    distill.add_argument("--keep-truncated", action="store_true", help="keep outputs cut off at max_tokens")
    distill.add_argument("--holdout-run", action="append", default=[], metavar="RUN",
                         help="never export a problem whose question appears in this run (repeatable)")
    distill.add_argument("--step-threshold", type=float, default=0.5, help="steps: value at or above = good step")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--allow-test-split", action="store_true",
                         help="export runs on a known test split too (refused by default: labels must come "
                              "from a train split)")
    distill.set_defaults(func=cmd_distill)

    trainer = subparsers.add_parser("train", help="fine-tune a model on a distilled set with TRL + LoRA (CPU)")
    trainer.add_argument("data", metavar="DATA.jsonl")
    trainer.add_argument("--format", required=True, choices=TRAIN_FORMATS)
    trainer.add_argument("--base", required=True, help="built-in model name, a .gguf file or a model directory")
    trainer.add_argument("-o", "--output", required=True, metavar="DIR", help="where the merged model is saved")
    defaults = TrainOptions("sft", "", "", "")
    for name, kind in (("epochs", float), ("max_steps", int), ("learning_rate", float), ("batch_size", int),
                       ("grad_accum", int), ("lora_r", int), ("lora_alpha", int), ("lora_dropout", float),
                       ("max_length", int), ("beta", float), ("nll_weight", float), ("seed", int),
                       ("threads", int)):
        trainer.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(defaults, name))
    trainer.set_defaults(func=cmd_train)


def cmd_distill(args: argparse.Namespace) -> int:
    store = Store(args.db)
    holdout: set[str] = set()
    if args.holdout_run:
        from .attempts import load_problem_traces

        holdout = {item.problem.question for item in load_problem_traces(store, args.holdout_run)}
    options = ExportOptions(
        sources=tuple(s.strip() for s in args.sources.split(",")) if args.sources else None,
        keep_truncated=args.keep_truncated, holdout_questions=frozenset(holdout), seed=args.seed,
        per_problem=args.per_problem, only_hard=args.only_hard, pairs_per_problem=args.pairs_per_problem,
        rejected_needs_answer=args.rejected_needs_answer, step_threshold=args.step_threshold,
    )
    export = export_runs(store, args.runs, args.format, options, allow_test_split=args.allow_test_split)
    for warning in export.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    written = write_export(export, args.output)
    for path, count in written.items():
        console.print(f"{count} {args.format} records -> {path}")
    console.print(f"[dim]{json.dumps(export.stats)}[/dim]", highlight=False)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    options = TrainOptions(format=args.format, data=args.data, base=args.base, output=args.output,
                           epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.learning_rate,
                           batch_size=args.batch_size, grad_accum=args.grad_accum, lora_r=args.lora_r,
                           lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, max_length=args.max_length,
                           beta=args.beta, nll_weight=args.nll_weight, seed=args.seed, threads=args.threads)
    meta = train(options, say=lambda message: console.print(f"[dim]{message}[/dim]"))
    console.print(f"saved to {args.output} ({meta['steps']} steps, loss {meta['train_loss']:.4f}); "
                  f"evaluate it with --model hf:{args.output}")
    return 0
