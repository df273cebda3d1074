"""Report metrics from stored traces, checked against what the scripted model is known to do; renderers."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import re

import pytest
from report_fixtures import TEST_REFINE, run_experiment, small_spec

from redraft.cli import main
from redraft.report import build_report, render
from redraft.report.html import _script_json
from redraft.report.metrics import auroc, calibration, pareto_front
from redraft.tasks.arithmetic import ArithmeticTask

KEYS = [int(ArithmeticTask(count=12).reference(p)) for p in ArithmeticTask(count=12).problems()]


def share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    db = tmp_path_factory.mktemp("report") / "runs.db"
    oracle_cell = {"name": TEST_REFINE, "options": {"rounds": 1, "verifier": "oracle"}, "matched_baselines": False}
    spec = small_spec(strategies=[*small_spec()["strategies"], oracle_cell])
    store, runs, _ = run_experiment(db, spec)
    return store, build_report(store, experiment="scripted")


def by_label(report, start):
    return next(m for m in report.runs if m.label.startswith(start))


def test_accuracy_pass_at_k_and_selection_efficiency_match_the_script(experiment):
    _, report = experiment
    even = [k % 2 == 0 for k in KEYS]
    fixed = [k % 4 != 0 and k % 3 == 0 for k in KEYS]  # what refinement makes right
    cot = by_label(report, "cot")
    assert cot.accuracy == pytest.approx(share(even))
    assert cot.pass_at_k == pytest.approx(share(even)) and cot.mean_k == 1
    low, high = cot.interval
    assert low < cot.accuracy < high

    refine = by_label(report, f"{TEST_REFINE}(rounds=2)")
    assert refine.accuracy == pytest.approx(share(fixed))
    assert refine.first_sample_accuracy == pytest.approx(share(even))
    assert refine.pass_at_k == pytest.approx(share(e or f for e, f in zip(even, fixed, strict=True)))
    expected = (refine.accuracy - refine.first_sample_accuracy) / (refine.pass_at_k - refine.first_sample_accuracy)
    assert refine.selection_efficiency == pytest.approx(expected)

    # self-consistency n=3: only sample 0 is ever right, so the vote always loses it; no headroom over it
    sc = by_label(report, "self_consistency(n=3)")
    assert sc.accuracy == 0 and sc.pass_at_k == pytest.approx(share(even)) and sc.mean_k == 3
    assert sc.first_sample_accuracy == sc.pass_at_k and sc.selection_efficiency is None


def test_rounds_flips_and_decomposition(experiment):
    _, report = experiment
    even = [k % 2 == 0 for k in KEYS]
    fixed = [k % 4 != 0 and k % 3 == 0 for k in KEYS]
    refine = by_label(report, f"{TEST_REFINE}(rounds=2)")
    assert refine.round_accuracy == pytest.approx([share(even), share(fixed), share(fixed)])
    assert refine.right_to_wrong == sum(e and not f for e, f in zip(even, fixed, strict=True))
    assert refine.wrong_to_right == sum(f and not e for e, f in zip(even, fixed, strict=True))
    right_drafts = [f for e, f in zip(even, fixed, strict=True) if e]
    wrong_drafts = [f for e, f in zip(even, fixed, strict=True) if not e]
    assert refine.p_stay_right == pytest.approx(share(right_drafts))
    assert refine.p_become_right == pytest.approx(share(wrong_drafts))
    assert by_label(report, "cot").round_accuracy == []  # no round events, no rounds


def test_verifier_auroc_from_the_scores_in_the_trace(experiment):
    _, report = experiment
    refine = by_label(report, f"{TEST_REFINE}(rounds=2)")
    [rating] = refine.verifiers
    # rating 9 (0.889) unless the solution says \boxed{-1} (rating 2); candidates: draft and two refinements
    pairs = []
    for k in KEYS:
        draft = (k % 2 == 0, k % 2 == 0)  # (scored high, right)
        refined = (True, True) if k % 4 != 0 and k % 3 == 0 else (k % 4 == 0, False)
        pairs += [draft, refined, refined]
    assert rating.pairs == len(pairs) == 36
    assert rating.positives == sum(right for _, right in pairs)
    assert rating.auroc == pytest.approx(auroc([(8 / 9 if high else 1 / 9, right) for high, right in pairs]))
    oracle = next(m for m in report.runs if m.uses_oracle)
    assert oracle.verifiers[0].name == "oracle" and oracle.verifiers[0].auroc == 1.0


def test_paired_differences_and_matched_comparisons(experiment):
    _, report = experiment
    even = [k % 2 == 0 for k in KEYS]
    fixed = [k % 4 != 0 and k % 3 == 0 for k in KEYS]
    refine = by_label(report, f"{TEST_REFINE}(rounds=2)")
    assert refine.paired is not None and refine.paired.shared == 12
    assert refine.paired.difference == pytest.approx(share(fixed) - share(even))
    low, high = refine.paired.interval
    assert low <= refine.paired.difference <= high
    assert {p.other_label.split("(")[0] for p in refine.versus_matched} == {"self_consistency", "best_of_n"}
    assert by_label(report, "cot").paired is None  # the baseline is not paired with itself


def test_metric_helpers():
    assert auroc([(0.9, True), (0.1, False)]) == 1.0
    assert auroc([(0.1, True), (0.9, False)]) == 0.0
    assert auroc([(0.5, True), (0.5, False)]) == 0.5
    assert auroc([(0.5, True)]) is None
    ece, brier, bins = calibration([(1.0, True), (1.0, True), (0.0, False), (0.0, True)])
    assert ece == pytest.approx(0.25) and brier == pytest.approx(0.25)
    assert [b["count"] for b in bins] == [2, 0, 0, 0, 2]
    ece, brier, _ = calibration([(3.0, True), (3.0, False), (-1.0, False)])  # out of range: clamped
    assert ece == pytest.approx(1 / 3) and brier == pytest.approx(1 / 3)
    front = pareto_front([("a", 10, 0.5), ("b", 20, 0.5), ("c", 30, 0.7), ("d", 5, 0.2)])
    assert front == {"a", "c", "d"}


def test_markdown_and_csv_mark_oracle_runs(experiment):
    _, report = experiment
    markdown = render(report, "md")
    assert "Matched compute" in markdown and "Refinement rounds" in markdown and "AUROC" in markdown
    # every table names each row's model (a report can hold several models' runs of one strategy)
    headers = [line for line in markdown.splitlines() if line.startswith(("| run |", "| refinement |"))]
    assert len(headers) >= 4 and all(line.split(" | ")[1] == "model" for line in headers)
    oracle_rows = [line for line in markdown.splitlines() if "verifier=oracle" in line]
    assert oracle_rows and all("[ORACLE]" in line for line in oracle_rows)
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert len(rows) == len(report.runs)
    assert {row["oracle"] for row in rows if "oracle" in row["label"]} == {"True"}
    assert float(next(r for r in rows if r["label"] == "cot")["accuracy"]) == pytest.approx(
        share(k % 2 == 0 for k in KEYS))
    # cost by role: a column per role any run has; each run's role columns add up to its totals
    roles = sorted({role for m in report.runs for role in m.by_role})
    assert len(roles) > 1 and all(f"{role}_completion_tokens" in rows[0] for role in roles)
    for row in rows:
        spent = [float(row[f"{role}_completion_tokens"]) for role in roles if row[f"{role}_completion_tokens"]]
        assert sum(spent) == pytest.approx(float(row["completion_tokens"]))


def test_html_is_self_contained_and_carries_every_trace(experiment):
    _, report = experiment
    page = render(report, "html")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)  # nothing loaded from anywhere
    assert "https://" not in page and page.count("http://") == page.count("http://www.w3.org/2000/svg")
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1))
    assert set(data["runs"]) == {m.run.id for m in report.runs}
    assert any(run["oracle"] for run in data["runs"].values())
    packed = dict(re.findall(r'class="trace" data-run="([^"]+)">([^<]+)</script>', page))
    refine = by_label(report, f"{TEST_REFINE}(rounds=2)")
    traces = json.loads(gzip.decompress(base64.b64decode(packed[refine.run.id])))
    assert set(traces) == {str(i) for i in range(12)}
    first = traces["0"]
    assert first["key"] == str(KEYS[0]) and [e["type"] for e in first["events"]].count("round") == 3
    assert all("_grades" in e for e in first["events"] if e["type"] == "round")


def test_script_json_cannot_close_its_element():
    text = _script_json({"answer": "</script><script>alert(1)</script>"})
    assert "</script>" not in text and json.loads(text)["answer"].startswith("</script>")


def test_report_command(experiment, tmp_path, capsys):
    store, _ = experiment
    out = tmp_path / "page.html"
    assert main(["report", "scripted", "--db", str(store.path), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "scripted", "--db", str(store.path), "--format", "md"]) == 0
    assert "## experiment scripted" in capsys.readouterr().out
    run_id = store.list_runs()[0].id
    assert main(["report", run_id, "--db", str(store.path), "--format", "csv", "--per-problem"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 13
    assert main(["report", "no-such-thing", "--db", str(store.path)]) == 2


def test_a_run_whose_task_cannot_be_loaded_still_reports(tmp_path):
    from redraft.accounting import Cost
    from redraft.store import ProblemRecord, Store

    store = Store(tmp_path / "runs.db")
    run = store.create_run(task="gsm8k", task_options={"data": str(tmp_path / "gone.jsonl")}, strategy="cot",
                           strategy_options={}, model="m", model_identity="m", settings={}, problem_ids=["1"],
                           uses_oracle=False)
    cost = Cost()
    cost.add("solver", 1, 10, 20, 0.5, False)
    store.save_result(ProblemRecord(run.id, "1", 0, "4", True, "expected 4", "\\boxed{4}", {},
                                    [{"type": "call", "role": "solver", "outputs": ["\\boxed{4}"]}], cost, 1.0, None))
    report = build_report(store, run_ids=[run.id])
    [metrics] = report.runs
    assert metrics.accuracy == 1.0 and metrics.per_problem["completion_tokens"] == 20
    assert metrics.pass_at_k is None  # samples cannot be graded without the task
    assert any("gone.jsonl" in note for note in report.notes)
    assert "could not load task" in render(report, "md")
    assert render(report, "html").startswith("<!DOCTYPE html>")


def test_a_report_from_a_missing_database_says_which_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "missing.db"
    for target in ("scripted", "all", "20240101-000000-abcdef"):
        assert main(["report", target, "--db", str(missing)]) == 2
        assert str(missing) in capsys.readouterr().err
    spec_file = tmp_path / "grid.yaml"
    spec_file.write_text("tasks: [arithmetic]\nmodels: [m]\nstrategies: [cot]\ndb: gone.db\n")
    assert main(["report", str(spec_file)]) == 2
    assert str(tmp_path / "gone.db") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]


def test_a_baseline_shared_by_two_refinements_is_noted_against_both(tmp_path):
    from redraft.report.html import report_data

    spec = small_spec(strategies=[{"name": TEST_REFINE, "options": {"rounds": 2},
                                   "verifiers": ["rating", "rating:max_tokens=48"]}])
    store, runs, _ = run_experiment(tmp_path / "runs.db", spec)
    report = build_report(store, experiment="scripted")
    [sc] = [m for m in report.runs if m.run.strategy == "self_consistency"]
    refines = {m.run.id for m in report.runs if m.run.strategy == TEST_REFINE}
    assert {to for to, _ in sc.matches} == refines
    shown = report_data(report)["runs"][sc.run.id]
    assert {m["to"] for m in shown["matches"]} == refines
