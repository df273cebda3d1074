"""The report as Markdown: tables per task for papers and READMEs (oracle runs marked in every row)."""

from __future__ import annotations

import time
from typing import Any

from .metrics import RunMetrics
from .tables import ORACLE_MARK, display_label, number, pct, points


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def clean(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return lines


def _main_row(m: RunMetrics) -> list[str]:
    paired = points(m.paired.difference, *m.paired.interval) + f" on {m.paired.shared}" if m.paired else "–"
    return [display_label(m), m.run.model, f"{m.n}" + (f"/{len(m.run.problem_ids)}" if m.n < len(m.run.problem_ids)
                                                       else ""),
            f"{pct(m.accuracy)} ({pct(m.interval[0])}–{pct(m.interval[1])})" if m.n else "–", paired,
            number(m.per_problem.get("completion_tokens")), number(m.per_problem.get("prompt_tokens")),
            number(m.per_problem.get("calls"), 1), number(m.per_problem.get("seconds"), 1),
            f"{pct(m.pass_at_k)} (k≈{m.mean_k:.1f})" if m.pass_at_k is not None else "–",
            number(m.selection_efficiency, 2)]


def render_markdown(report: Any, heading: str = "##", stamp: bool = True) -> str:
    """``stamp`` adds the generation time (left out where the output is compared, as in RESULTS.md)."""
    lines = [f"{heading} {report.title}", ""]
    generated = time.strftime("%Y-%m-%d %H:%M", time.gmtime(report.generated))
    lines.append(f"Database `{report.db_path}`" + (f"; generated {generated} UTC by `redraft report`" if stamp else "")
                 + ". Accuracy intervals: 95% bootstrap over problems; paired differences"
                 f" are in points against `{report.baseline}` on the problems both runs finished.")
    if report.any_oracle:
        lines.append(f"Runs marked {ORACLE_MARK} used the answer key through the oracle verifier: ceilings,"
                     " not methods.")
    lines += [f"> {note}" for note in report.notes]
    lines.append("")
    for group, runs in report.groups.items():
        lines += [f"{heading}# {group}", ""]
        lines += _table(["run", "model", "problems", "accuracy (95% CI)", f"vs {report.baseline} (pts, 95% CI)",
                         "out tok/p", "in tok/p", "calls/p", "model s/p", "pass@k", "sel. eff."],
                        [_main_row(m) for m in runs])
        lines.append("")

        matched = [m for m in runs if m.versus_matched]
        if matched:
            lines += ["**Matched compute** (baselines' n chosen so their completion tokens/problem match the"
                      " refinement run's; see `redraft.experiment`):", ""]
            rows = []
            by_id = {r.run.id: r for r in runs}
            for m in matched:
                for paired in m.versus_matched:
                    other = by_id.get(paired.other_id)
                    rows.append([display_label(m), m.run.model,
                                 display_label(other) if other else paired.other_label,
                                 number(m.per_problem.get("completion_tokens")),
                                 number(other.per_problem.get("completion_tokens")) if other else "–",
                                 points(paired.difference, *paired.interval) + f" on {paired.shared}",
                                 "refinement loses" if paired.interval[1] < 0 else
                                 "refinement wins" if paired.interval[0] > 0 else "no clear difference"])
            lines += _table(["refinement", "model", "matched baseline", "its out tok/p", "baseline out tok/p",
                             "difference (pts, 95% CI)", "verdict"], rows)
            lines.append("")

        refining = [m for m in runs if m.round_accuracy]
        if refining:
            depth = max(len(m.round_accuracy) for m in refining)
            lines += ["**Refinement rounds** (accuracy after each round; flips against the first draft):", ""]
            rows = [[display_label(m), m.run.model] + [pct(m.round_accuracy[r]) if r < len(m.round_accuracy) else "–"
                                          for r in range(depth)]
                    + [str(m.right_to_wrong), str(m.wrong_to_right), pct(m.p_stay_right), pct(m.p_become_right)]
                    for m in refining]
            lines += _table(["run", "model"] + [f"round {r}" for r in range(depth)]
                            + ["right→wrong", "wrong→right", "P(stays right)", "P(becomes right)"], rows)
            lines.append("")

        verified = [(m, v) for m in runs for v in m.verifiers]
        if verified:
            lines += ["**Verifiers** (their scores against the grader):", ""]
            rows = [[display_label(m), m.run.model, v.name, str(v.pairs), str(v.positives), number(v.auroc, 3),
                     number(v.ece, 3), number(v.brier, 3)] for m, v in verified]
            lines += _table(["run", "model", "verifier", "scored", "right", "AUROC", "ECE", "Brier"], rows)
            lines.append("")

        roles = sorted({role for m in runs for role in m.by_role})
        if len(roles) > 1:
            lines += ["**Completion tokens per problem, by role:**", ""]
            rows = [[display_label(m), m.run.model]
                    + [number(m.by_role.get(role, {}).get("completion_tokens")) for role in roles] for m in runs]
            lines += _table(["run", "model", *roles], rows)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
