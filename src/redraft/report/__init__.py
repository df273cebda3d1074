"""Reports of stored runs and experiments: metrics from the traces, as HTML, Markdown or CSV.

``build_report(store, experiment=...)`` (or ``run_ids=[...]``) computes every metric once;
``write_report(report, path, "html" | "md" | "csv")`` renders it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import Store
from .metrics import Grader, RunMetrics, pair_runs, run_metrics

FORMATS = ("html", "md", "csv")


@dataclass
class Report:
    title: str
    db_path: str
    runs: list[RunMetrics]
    baseline: str = "cot"
    experiment: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    generated: float = field(default_factory=time.time)
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> dict[str, list[RunMetrics]]:
        grouped: dict[str, list[RunMetrics]] = {}
        for metrics in self.runs:
            grouped.setdefault(metrics.group, []).append(metrics)
        return grouped

    @property
    def any_oracle(self) -> bool:
        return any(m.uses_oracle for m in self.runs)


def build_report(store: Store, *, experiment: str | None = None, run_ids: list[str] | None = None,
                 baseline: str | None = None, title: str | None = None) -> Report:
    """Metrics for an experiment's runs (one per cell of its file as last run: ``experiment_runs``),
    the given runs, or (neither given) every run in the store."""
    from ..experiment import experiment_runs, experiment_spec

    grader = Grader()
    spec: dict[str, Any] = {}
    if experiment is not None:
        spec = experiment_spec(store, experiment)
        members = experiment_runs(store, experiment)
        runs = [run_metrics(store, m.run, grader, label=m.label if m.kind == "cell" else None, kind=m.kind,
                            matched_to=m.matched_to, detail=m.detail,
                            matches=[(match.refinement, match.detail) for match in m.matches]) for m in members]
    else:
        chosen = [store.get_run(run_id) for run_id in run_ids] if run_ids else store.list_runs()
        runs = [run_metrics(store, run, grader) for run in chosen]
    baseline = baseline or str(spec.get("baseline", "cot"))
    pair_runs(runs, baseline)
    notes = [f"could not load task {failure}: its samples are not graded" for failure in grader.failures.values()]
    name = title or (f"experiment {experiment}" if experiment else
                     f"run {runs[0].run.id}" if len(runs) == 1 else f"runs in {store.path.name}")
    return Report(name, str(store.path), runs, baseline, experiment, spec, notes=notes)


def render(report: Report, fmt: str) -> str:
    if fmt == "html":
        from .html import render_html

        return render_html(report)
    if fmt == "md":
        from .markdown import render_markdown

        return render_markdown(report)
    if fmt == "csv":
        from .tables import render_csv

        return render_csv(report)
    raise ValueError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def write_report(report: Report, path: str | Path, fmt: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, fmt), encoding="utf-8")
    return path


__all__ = ["FORMATS", "Report", "RunMetrics", "build_report", "render", "write_report"]
