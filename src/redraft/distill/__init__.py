"""Stored runs as training data (``sft``, ``dpo``, ``refine``, ``steps``), and training on it.

    from redraft.distill import ExportOptions, export_runs, write_export
    export = export_runs(Store("redraft.db"), ["RUN_ID"], "sft", ExportOptions(per_problem=2))
    write_export(export, "sft.jsonl")

Training (``redraft.distill.train``) needs the ``train`` extra and is imported on demand.
"""

from __future__ import annotations

from .attempts import Attempt, ProblemTrace, load_problem_traces
from .export import FORMATS, Export, ExportOptions, export_runs, write_export, write_jsonl

__all__ = ["FORMATS", "Attempt", "Export", "ExportOptions", "ProblemTrace", "export_runs", "load_problem_traces",
           "write_export", "write_jsonl"]
