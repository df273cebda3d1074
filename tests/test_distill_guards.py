"""distill's guards: test splits refused, oracle runs flagged, ambiguous run ids refused, refinements and
rollouts attributed to the solution they were made from, step values consistent with their labels."""

from __future__ import annotations

import json

import pytest
from distill_support import KEYS, TASK, stored_run

from redraft.cli import main
from redraft.distill import export_runs
from redraft.distill.attempts import RunError, known_test_split
from redraft.store import AmbiguousRunError, Store


@pytest.fixture
def store(db_path):
    return Store(db_path)


def _bare_run(store: Store, task: str, task_options: dict) -> str:
    return store.create_run(task=task, task_options=task_options, strategy="cot", strategy_options={},
                            model="scripted", model_identity="scripted:v1", settings={}, problem_ids=[],
                            uses_oracle=False).id


GSM8K_LINE = json.dumps({"question": "Ada has 2 apples and gets 3 more. How many?", "answer": "2 + 3 = 5\n#### 5"})


@pytest.mark.parametrize(("task", "options", "refused"), [
    ("gsm8k", {}, True),  # no --data: the hub's test split
    ("gsm8k", {"data": "../shared/data/gsm8k/train.jsonl"}, False),
    ("gsm8k", {"data": "/data/gsm8k-test.jsonl"}, True),
    ("gsm8k", {"data": "/data/test/latest.jsonl"}, False),  # only the file's name counts, "latest" is not "test"
    ("math", {"data": "/data/MATH-500.jsonl"}, True),
    ("math", {"data": "/data/math500.jsonl"}, True),
    ("math", {"data": "/data/math_train.jsonl"}, False),
    ("humaneval", {}, True),
    ("mbpp", {}, True),
    ("mbpp", {"data": "hub:full:train"}, False),
    ("mbpp", {"data": "hub:sanitized"}, True),
    ("arithmetic", {"count": 3, "steps": 2, "seed": 1}, False),
])
def test_split_rule(task, options, refused):
    assert (known_test_split(task, options) is not None) == refused


def test_test_split_runs_are_refused_unless_allowed(store, tmp_path, capsys):
    data = tmp_path / "gsm8k_test.jsonl"
    data.write_text(GSM8K_LINE + "\n")
    run_id = _bare_run(store, "gsm8k", {"data": str(data)})
    with pytest.raises(RunError, match=f"run {run_id}: .*test split"):
        export_runs(store, [run_id], "sft")
    allowed = export_runs(store, [run_id], "sft", allow_test_split=True)
    assert any(run_id in warning and "test split" in warning for warning in allowed.warnings)
    out = tmp_path / "sft.jsonl"
    args = ["distill", run_id, "--format", "sft", "-o", str(out), "--db", str(store.path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert run_id in err and "--allow-test-split" in err and "Traceback" not in err
    assert main([*args, "--allow-test-split"]) == 0
    assert "test split" in capsys.readouterr().err
    train = _bare_run(store, "gsm8k", {"data": str(tmp_path / "train.jsonl")})
    (tmp_path / "train.jsonl").write_text(GSM8K_LINE + "\n")
    assert export_runs(store, [train], "sft").warnings == []


def test_oracle_runs_are_labelled_and_warned_about(store, tmp_path, capsys):
    oracle = stored_run(store, "self_consistency", {"n": 6, "max_tokens": 40}, uses_oracle=True)
    export = export_runs(store, [oracle.id], "sft")
    assert export.records and all(r["provenance"]["uses_oracle"] is True for r in export.records)
    assert any("oracle" in warning for warning in export.warnings)
    out = tmp_path / "sft.jsonl"
    assert main(["distill", oracle.id, "--format", "sft", "-o", str(out), "--db", str(store.path)]) == 0
    assert f"warning: run {oracle.id} used the oracle" in capsys.readouterr().err
    plain = stored_run(store, "cot")
    assert main(["distill", plain.id, "--format", "sft", "-o", str(out), "--db", str(store.path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_an_ambiguous_partial_run_id_is_refused_with_the_candidates(store, tmp_path, capsys):
    first, second = _bare_run(store, "arithmetic", {}), _bare_run(store, "arithmetic", {})
    common = first[:9]  # "YYYYmmdd-": both runs were made today
    assert second.startswith(common)
    with pytest.raises(AmbiguousRunError) as raised:
        store.get_run(common)
    assert first in str(raised.value) and second in str(raised.value)
    assert store.get_run(first).id == first and store.get_run(second[-6:]).id == second
    with pytest.raises(KeyError, match="no run"):
        store.get_run("no-such-run")
    assert main(["show", common, "--db", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert first in err and second in err
    assert main(["distill", common, "--format", "sft", "-o", str(tmp_path / "x.jsonl"),
                 "--db", str(store.path)]) == 2
    assert first in capsys.readouterr().err


def test_an_exact_id_wins_over_runs_that_contain_it(store):
    run_id = _bare_run(store, "arithmetic", {})
    store.db.execute("UPDATE runs SET id = ? WHERE id = ?", ("abc", run_id))
    _bare_run(store, "arithmetic", {})
    store.db.execute("UPDATE runs SET id = 'xabcx' WHERE id != 'abc'")
    assert store.get_run("abc").id == "abc"


def test_the_same_run_twice_is_exported_once(store):
    run = stored_run(store, "distill_test_refine")
    once = export_runs(store, [run.id], "refine")
    twice = export_runs(store, [run.id, run.id, run.id[-6:]], "refine")
    assert len(twice.records) == len(once.records) > 0
    assert twice.stats == once.stats


def test_a_local_refinement_from_an_empty_prefix_attaches_to_its_own_draft_or_is_dropped(store):
    run = stored_run(store, "distill_test_local_scratch")
    export = export_runs(store, [run.id], "refine")
    assert len(export.records) == 3  # one per problem: the critique-guided one; the hint-guided one is dropped
    assert export.stats["refine_draft_unknown"] == 3
    for record in export.records:
        key = KEYS[record["question"]]
        assert record["refinement"] == "local"
        assert record["draft"] == f"Step 1: halve it.\nStep 2: \\boxed{{{key + 4}}}."


def test_rollouts_belong_to_the_solution_they_were_made_for(store):
    run = stored_run(store, "distill_test_shared_rollout")
    export = export_runs(store, [run.id], "steps")
    by_text: dict[str, dict] = {}
    for record in export.records:
        assert record["provenance"]["source"] == "grader:rollout_calls"
        by_text["\n".join(record["completions"])] = record
    for question, key in KEYS.items():
        prompt = TASK.messages(next(p for p in TASK.problems() if p.question == question))[-1]["content"]
        mine = {text: r for text, r in by_text.items() if r["prompt"] == prompt}
        wrong = mine.pop(f"Step 1: a.\nStep 2: b.\nStep 3: \\boxed{{{key + 1}}}.")
        right = mine.pop(f"Step 1: a.\nStep 2: b. c.\nStep 3: \\boxed{{{key}}}.")
        assert mine == {}  # the unscored solution sharing step 1 gets no one else's rollouts
        assert wrong["values"] == [0.75, 0.25, 0.0] and wrong["labels"] == [True, False, False]
        assert right["values"] == [0.75, 1.0, 1.0] and right["labels"] == [True, True, True]


def test_step_values_agree_with_labels_and_the_verifiers_belief_is_kept_apart(store):
    run = stored_run(store, "distill_test_refine")
    export = export_runs(store, [run.id], "steps")
    for record in export.records:
        assert record["labels"] == [v >= 0.5 for v in record["values"]]
    judged = next(r for r in export.records if r["provenance"]["source"] == "verifier:step_judge")
    assert judged["labels"] == [False, True]  # a right solution the step judge doubted
    assert judged["values"] == [0.4, 1.0] and judged["verifier_values"] == [0.4, 0.3]
