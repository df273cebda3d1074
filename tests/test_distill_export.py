"""distill: every attempt re-graded, and the sft / dpo / refine / steps exports built from stored runs."""

from __future__ import annotations

import json

import pytest
from distill_support import KEYS, TASK, sampled_runs, stored_run

from redraft.cli import main
from redraft.distill import ExportOptions, export_runs, load_problem_traces, write_export
from redraft.distill.export import refine_paths
from redraft.store import Store

PROVENANCE = {"run", "problem", "task", "task_options", "model", "model_identity", "strategy", "strategy_options",
              "uses_oracle", "round", "source"}


@pytest.fixture
def store(db_path):
    return Store(db_path)


@pytest.fixture
def runs(store):
    return sampled_runs(store)


def graded_right(problem_id: str, text: str) -> bool:
    [problem] = TASK.problems(ids=[problem_id])
    return TASK.grade(problem, TASK.extract(text, problem), text).correct


def test_every_sampled_output_is_graded_not_only_the_final_answer(store, runs):
    sc, _, _ = runs
    items = load_problem_traces(store, [sc.id])
    assert len(items) == 3
    for item in items:
        # six samples, one a whitespace duplicate: five distinct attempts, three of them right
        assert len(item.attempts) == 5
        assert sum(a.correct for a in item.attempts) == 3
        assert [a.truncated for a in item.attempts] == [False, False, False, True, False]
        assert all(a.round == 0 and a.source == "draft" and a.call == 0 for a in item.attempts)


def test_sft_keeps_distinct_right_untruncated_solutions_with_provenance(store, runs):
    sc, _, refine = runs
    export = export_runs(store, [sc.id, refine.id], "sft")
    by_problem: dict[str, list[dict]] = {}
    for record in export.records:
        by_problem.setdefault(record["provenance"]["problem"], []).append(record)
    assert sorted(by_problem) == ["0", "1", "2"]
    for problem_id, records in by_problem.items():
        texts = [r["completion"][0]["content"] for r in records]
        assert all(graded_right(problem_id, t) for t in texts)
        assert len({" ".join(t.split()) for t in texts}) == len(texts)  # de-duplicated across runs
        assert not any("and more words" in t for t in texts)  # the truncated one is dropped
        # two right drafts from self-consistency, the critique-refined one and the local one from the refine run
        assert len(records) == 4
        assert {r["provenance"]["source"] for r in records} == {"draft", "refine", "local"}
    record = export.records[0]
    assert PROVENANCE <= set(record["provenance"])
    assert record["provenance"]["model_identity"] == "scripted:v1"
    assert record["prompt"] == TASK.messages(TASK.problems(ids=[record["provenance"]["problem"]])[0])
    refined = next(r for r in export.records if r["provenance"]["source"] == "refine")
    assert refined["provenance"]["round"] == 1 and refined["provenance"]["strategy"] == "distill_test_refine"


def test_sft_cap_truncation_switch_and_holdout(store, runs):
    sc, _, _ = runs
    capped = export_runs(store, [sc.id], "sft", ExportOptions(per_problem=1))
    assert len(capped.records) == 3
    with_truncated = export_runs(store, [sc.id], "sft", ExportOptions(keep_truncated=True, per_problem=10))
    assert len(with_truncated.records) == 9
    question = TASK.problems(ids=["1"])[0].question
    held = export_runs(store, [sc.id], "sft", ExportOptions(holdout_questions=frozenset({question})))
    assert "1" not in {r["provenance"]["problem"] for r in held.records}
    assert held.stats["held_out_skipped"] == 1


def test_sft_only_hard_uses_the_greedy_draft_and_needs_one(store, runs):
    sc, cot, _ = runs
    hard = export_runs(store, [sc.id, cot.id], "sft", ExportOptions(only_hard=True))
    assert {r["provenance"]["problem"] for r in hard.records} == {"1", "2"}  # greedy got problem 0 right
    assert hard.stats["sft_easy_skipped"] == 1
    with pytest.raises(ValueError, match="greedy"):
        export_runs(store, [sc.id], "sft", ExportOptions(only_hard=True))


def test_dpo_pairs_a_right_and_a_wrong_solution_of_one_problem_and_says_how(store, runs):
    sc, _, _ = runs
    export = export_runs(store, [sc.id], "dpo", ExportOptions(pairs_per_problem=3))
    assert len(export.records) == 9
    for record in export.records:
        problem_id = record["provenance"]["chosen"]["problem"]
        assert record["provenance"]["rejected"]["problem"] == problem_id
        assert graded_right(problem_id, record["chosen"][0]["content"])
        assert not graded_right(problem_id, record["rejected"][0]["content"])
        assert record["pair"]["correct_candidates"] == 2 and record["pair"]["incorrect_candidates"] == 2
        assert "random" in record["pair"]["rule"]
    strict = export_runs(store, [sc.id], "dpo", ExportOptions(rejected_needs_answer=True))
    assert all(r["pair"]["rejected_answer"] is not None for r in strict.records)
    assert len(strict.records) == 6  # two right x one wrong-with-an-answer, per problem


def test_dpo_never_pairs_across_models(store):
    first = stored_run(store, "cot", identity="model-a")
    second = stored_run(store, "self_consistency", {"n": 6, "max_tokens": 40}, identity="model-b")
    export = export_runs(store, [first.id, second.id], "dpo")
    for record in export.records:
        assert record["provenance"]["chosen"]["model_identity"] == record["provenance"]["rejected"]["model_identity"]


def test_refine_keeps_wrong_to_right_rounds_with_global_and_local_apart(store, runs, tmp_path):
    _, _, refine = runs
    export = export_runs(store, [refine.id], "refine")
    kinds = sorted(r["refinement"] for r in export.records)
    assert kinds == ["global", "global", "global", "local", "local", "local"]
    assert export.stats["refine_other_flips"] == 3  # the global rewrite that stayed wrong, per problem
    for record in export.records:
        problem_id = record["provenance"]["problem"]
        assert not graded_right(problem_id, record["draft"]) and graded_right(problem_id, record["corrected"])
        assert record["question"] == TASK.problems(ids=[problem_id])[0].question
        assert record["critique"] == "Step 2 adds instead of subtracting."
        assert record["provenance"]["round"] == 1
        if record["refinement"] == "local":
            assert record["draft"].startswith("Step 1: take the start.")
            assert record["corrected"].startswith("Step 1: take the start.\nStep 2: so the answer")
            assert record["completion"][0]["content"].startswith("Step 2:")  # only the continuation is trained
    written = write_export(export, tmp_path / "refine.jsonl")
    paths = refine_paths(tmp_path / "refine.jsonl")
    assert written == {str(paths["global"]): 3, str(paths["local"]): 3}
    local = [json.loads(line) for line in paths["local"].read_text().splitlines()]
    assert {r["refinement"] for r in local} == {"local"}


def test_refine_keeps_self_debug_revisions_and_hsr_repairs_as_global_refinements(store):
    run = stored_run(store, "distill_test_revise_repair")
    export = export_runs(store, [run.id], "refine")
    by_source = {}
    for record in export.records:
        by_source.setdefault(record["provenance"]["source"], []).append(record)
    assert sorted(by_source) == ["repair", "revise"] and all(len(v) == 3 for v in by_source.values())
    for record in export.records:
        key = KEYS[record["question"]]
        assert record["refinement"] == "global"
        assert record["draft"] == f"Step 1: add.\nStep 2: \\boxed{{{key + 2}}}."  # the wrong draft it rewrote
        assert graded_right(record["provenance"]["problem"], record["corrected"])
    assert {r["critique"] for r in by_source["revise"]} == {"assert answer == key failed"}
    assert {r["critique"] for r in by_source["repair"]} == {"Peer 1 (score 0.90):\nStep 1: subtract."}


def test_steps_labels_from_values_rollouts_regraded_and_the_final_step_from_the_grader(store, runs):
    _, _, refine = runs
    export = export_runs(store, [refine.id], "steps")
    assert len(export.records) == 9
    by_source: dict[str, list[dict]] = {}
    for record in export.records:
        by_source.setdefault(record["provenance"]["source"], []).append(record)
        assert len(record["completions"]) == len(record["labels"]) == len(record["values"]) == 2
        assert isinstance(record["prompt"], str) and record["prompt"].startswith(
            TASK.problems(ids=[record["provenance"]["problem"]])[0].question)
    verifier = by_source["verifier:rollout"][0]
    assert verifier["values"] == [0.9, 0.0] and verifier["labels"] == [True, False] and verifier["first_error"] == 1
    assert verifier["verifier_values"] == [0.9, 0.2]  # the verifier's belief, kept apart from the labels
    regraded = by_source["grader:rollouts"][0]
    assert regraded["values"] == pytest.approx([2 / 3, 1.0])
    assert regraded["labels"] == [True, True]  # the last step is the whole (right) draft: the grader's verdict
    judged = by_source["verifier:step_judge"][0]  # a right solution the step judge doubted
    assert judged["labels"] == [False, True] and judged["provenance"]["round"] == 1


def test_steps_regrades_the_rollout_verifiers_own_calls_with_the_key(store):
    run = stored_run(store, "distill_test_rollout")
    export = export_runs(store, [run.id], "steps")
    assert len(export.records) == 3
    for record in export.records:
        assert record["provenance"]["source"] == "grader:rollout_calls"
        assert record["completions"][0] == "Step 1: a." and len(record["completions"]) == 3
        assert record["values"] == [0.75, 0.25, 0.0]
        assert record["labels"] == [True, False, False]


def test_distill_command_writes_jsonl_and_reports(store, runs, db_path, tmp_path, capsys):
    sc, _, _ = runs
    out = tmp_path / "sft.jsonl"
    code = main(["distill", sc.id, "--format", "sft", "-o", str(out), "--db", str(db_path), "--per-problem", "1"])
    assert code == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["provenance"]["run"] == sc.id for line in lines)
    assert main(["distill", "no-such-run", "--format", "sft", "-o", str(out), "--db", str(db_path)]) == 2
    assert "no run" in capsys.readouterr().err


def test_keys_fixture_is_consistent():
    assert len(KEYS) == 3  # three distinct generated questions: the fixtures above rely on it
