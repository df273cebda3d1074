"""The report as one self-contained HTML file: inline CSS, JS and SVG, nothing fetched from a network.

The summary (every metric of every run, every problem's grade) is embedded as JSON; each run's
traces are embedded gzip-compressed and base64-encoded, and unpacked in the browser only when a
problem is opened (prompts repeat a lot, so this keeps a large experiment's page small).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

from .metrics import ProblemMetrics, RunMetrics, pareto_front
from .tables import run_row

ASSETS = Path(__file__).parent / "assets"


def _problem_summary(p: ProblemMetrics) -> dict[str, Any]:
    r = p.record
    return {"id": r.problem_id, "pos": r.position, "answer": r.answer, "key": p.reference, "correct": r.correct,
            "detail": r.grade_detail, "tok": r.cost.completion_tokens, "ptok": r.cost.prompt_tokens,
            "calls": r.cost.calls, "secs": round(r.cost.seconds, 2), "error": r.error, "samples": p.samples,
            "any": p.any_correct, "first": p.first_correct, "draft": p.draft_correct,
            "rounds": len(p.round_correct)}


def _trace(p: ProblemMetrics) -> dict[str, Any]:
    r = p.record
    events = []
    for index, event in enumerate(r.trace):
        shown = dict(event)
        if index in p.trace_grades:
            shown["_grades"] = p.trace_grades[index]
        if index in p.trace_answers:
            shown["_answers"] = p.trace_answers[index]
        if index in p.round_answer_grades:
            shown["_answer_grade"] = p.round_answer_grades[index]
            shown["_answer"] = p.round_answers.get(index)
        events.append(shown)
    return {"question": p.question, "key": p.reference, "answer": r.answer, "correct": r.correct,
            "detail": r.grade_detail, "text": r.text, "info": r.info, "error": r.error, "events": events,
            "cost": r.cost.to_dict(), "wall": round(r.wall_seconds, 2)}


def _run_data(m: RunMetrics) -> dict[str, Any]:
    row = run_row(m)
    row.update({
        "id": m.run.id, "options": m.run.strategy_options, "settings": m.run.settings, "task_name": m.run.task,
        "task_options": {k: v for k, v in m.run.task_options.items() if k != "data"},
        "model_identity": m.run.model_identity, "created": m.run.created, "finished": m.run.finished,
        "paired_label": m.paired.other_label if m.paired else None,
        "matched": [{"id": p.other_id, "label": p.other_label, "diff": p.difference, "lo": p.interval[0],
                     "hi": p.interval[1], "shared": p.shared} for p in m.versus_matched],
        "matched_to": m.matched_to, "detail": m.detail, "rounds": m.round_accuracy, "by_role": m.by_role,
        "matches": [{"to": to, "n": detail.get("n"), "target_tokens": detail.get("target_tokens")}
                    for to, detail in m.matches],
        "verifiers": [vars(v) for v in m.verifiers], "problems": [_problem_summary(p) for p in m.problems],
    })
    return row


def _pack(value: Any) -> str:
    raw = json.dumps(value, default=str, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode()


def _script_json(value: Any) -> str:
    # inside <script> the only sequence to keep out is "</" (it could close the element)
    return json.dumps(value, default=str, separators=(",", ":")).replace("</", "<\\/")


def report_data(report: Any) -> dict[str, Any]:
    groups = []
    for name, runs in report.groups.items():
        front = pareto_front((m.run.id, m.per_problem.get("completion_tokens", 0.0), m.accuracy)
                             for m in runs if m.n and not m.uses_oracle)
        groups.append({"name": name, "runs": [m.run.id for m in runs], "pareto": sorted(front)})
    return {
        "title": report.title, "db": report.db_path, "experiment": report.experiment, "baseline": report.baseline,
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.generated)), "notes": report.notes,
        "spec": report.spec, "any_oracle": report.any_oracle, "groups": groups,
        "runs": {m.run.id: _run_data(m) for m in report.runs},
    }


def render_html(report: Any) -> str:
    data = report_data(report)
    traces = "\n".join(
        f'<script type="application/octet-stream" class="trace" data-run="{m.run.id}">'
        f"{_pack({p.record.problem_id: _trace(p) for p in m.problems})}</script>"
        for m in report.runs)
    parts = {"/*CSS*/": (ASSETS / "report.css").read_text(encoding="utf-8"),
             "/*JS*/": (ASSETS / "report.js").read_text(encoding="utf-8"),
             "<!--TITLE-->": _escape(report.title), "/*DATA*/": _script_json(data), "<!--TRACES-->": traces}
    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    # one pass, so text inside the data can never be taken for a placeholder
    return re.sub("|".join(re.escape(k) for k in parts), lambda match: parts[match.group(0)], template)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
