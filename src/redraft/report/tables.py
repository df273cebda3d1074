"""One row of numbers per run, shared by the Markdown, CSV and HTML tables; and the CSV writer."""

from __future__ import annotations

import csv
import io
from typing import Any

from .metrics import RunMetrics

ORACLE_MARK = "[ORACLE]"


ROLE_COST_FIELDS = ("completion_tokens", "prompt_tokens", "calls", "seconds")
ROLE_NOTES = {"pilot": "pilot", "matched_self_consistency": "matched", "matched_best_of_n": "matched"}


def display_label(metrics: RunMetrics) -> str:
    """The run's label, with its part in the experiment (pilot, matched baseline) and the oracle mark."""
    note = ROLE_NOTES.get(metrics.kind) or ("matched" if metrics.matches else None)
    text = f"{metrics.label} ({note})" if note else metrics.label
    return f"{text} {ORACLE_MARK}" if metrics.uses_oracle else text


def run_row(m: RunMetrics) -> dict[str, Any]:
    """Raw values (fractions, not percents) keyed by column name."""
    verifier = m.verifiers[0] if m.verifiers else None
    matched = {p.other_label.split("(")[0]: p for p in m.versus_matched}
    sc, bon = matched.get("self_consistency"), matched.get("best_of_n")
    return {
        "run": m.run.id, "label": m.label, "kind": m.kind, "oracle": m.uses_oracle, "task": m.group,
        "model": m.run.model, "strategy": m.run.strategy, "budget": m.budget,
        "problems": m.n, "planned": len(m.run.problem_ids),
        "accuracy": m.accuracy if m.n else None, "ci_low": m.interval[0] if m.n else None,
        "ci_high": m.interval[1] if m.n else None,
        "baseline_run": m.paired.other_id if m.paired else None,
        "vs_baseline": m.paired.difference if m.paired else None,
        "vs_baseline_low": m.paired.interval[0] if m.paired else None,
        "vs_baseline_high": m.paired.interval[1] if m.paired else None,
        "vs_baseline_shared": m.paired.shared if m.paired else None,
        "vs_matched_sc": sc.difference if sc else None,
        "vs_matched_sc_low": sc.interval[0] if sc else None, "vs_matched_sc_high": sc.interval[1] if sc else None,
        "vs_matched_bon": bon.difference if bon else None,
        "vs_matched_bon_low": bon.interval[0] if bon else None,
        "vs_matched_bon_high": bon.interval[1] if bon else None,
        "completion_tokens": m.per_problem.get("completion_tokens"),
        "prompt_tokens": m.per_problem.get("prompt_tokens"),
        "calls": m.per_problem.get("calls"), "model_seconds": m.per_problem.get("seconds"),
        "wall_seconds": m.per_problem.get("wall_seconds"),
        "pass_at_k": m.pass_at_k, "mean_k": m.mean_k, "first_sample_accuracy": m.first_sample_accuracy,
        "selection_efficiency": m.selection_efficiency, "draft_accuracy": m.draft_accuracy,
        "right_to_wrong": m.right_to_wrong, "wrong_to_right": m.wrong_to_right,
        "p_stay_right": m.p_stay_right, "p_become_right": m.p_become_right,
        "round_accuracy": " ".join(f"{a:.4f}" for a in m.round_accuracy),
        "verifier": verifier.name if verifier else None, "verifier_auroc": verifier.auroc if verifier else None,
        "verifier_ece": verifier.ece if verifier else None, "verifier_brier": verifier.brier if verifier else None,
        "verifier_pairs": verifier.pairs if verifier else None,
        "matched_n": m.detail.get("n"), "matched_target_tokens": m.detail.get("target_tokens"),
        "errors": m.errors,
    }


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def points(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "–"
    text = f"{100 * value:+.1f}"
    if low is not None and high is not None:
        text += f" ({100 * low:+.1f}, {100 * high:+.1f})"
    return text


def number(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def render_csv(report: Any, per_problem: bool = False) -> str:
    """One row per run (or, with ``per_problem``, one row per run and problem)."""
    buffer = io.StringIO()
    if per_problem:
        fields = ["run", "label", "oracle", "task", "model", "problem", "answer", "reference", "correct",
                  "first_sample_correct", "draft_correct", "any_sample_correct", "samples", "completion_tokens",
                  "prompt_tokens", "calls", "model_seconds", "error"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        for m in report.runs:
            for p in m.problems:
                r = p.record
                writer.writerow({
                    "run": m.run.id, "label": m.label, "oracle": m.uses_oracle, "task": m.group, "model": m.run.model,
                    "problem": r.problem_id, "answer": r.answer, "reference": p.reference, "correct": r.correct,
                    "first_sample_correct": p.first_correct, "draft_correct": p.draft_correct,
                    "any_sample_correct": p.any_correct, "samples": p.samples,
                    "completion_tokens": r.cost.completion_tokens, "prompt_tokens": r.cost.prompt_tokens,
                    "calls": r.cost.calls, "model_seconds": round(r.cost.seconds, 3), "error": r.error})
        return buffer.getvalue()
    rows = [run_row(m) for m in report.runs]
    if not rows:
        return ""
    # cost per problem by role, one column per (role, field) that any run has: a spreadsheet can then sum
    # what the judge, the reviewer or the refiner cost without reading traces
    roles = sorted({role for m in report.runs for role in m.by_role})
    for row, m in zip(rows, report.runs, strict=True):
        for role in roles:
            for name in ROLE_COST_FIELDS:
                row[f"{role}_{name}"] = m.by_role.get(role, {}).get(name)
    fields = list(rows[0])
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()
