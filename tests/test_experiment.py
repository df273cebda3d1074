"""Experiments: spec parsing, the grid, matched-compute baselines, resuming a killed experiment."""

from __future__ import annotations

import asyncio
import re

import pytest
from report_fixtures import TEST_REFINE, register_test_strategy, run_experiment, scripted_model, small_spec

from redraft.cli import main
from redraft.experiment import ExperimentError, ExperimentRunner, matched_n, parse_spec, plan
from redraft.store import Store
from redraft.tasks.arithmetic import ArithmeticTask


def mean_tokens(store: Store, run_id: str, role: str | None = None) -> float:
    records = store.results(run_id)
    if role:
        return sum(r.cost.by_role[role].completion_tokens for r in records) / len(records)
    return sum(r.cost.completion_tokens for r in records) / len(records)


def test_spec_expands_verifiers_sweeps_and_budgets():
    register_test_strategy()
    spec = parse_spec({"tasks": ["arithmetic", {"name": "arithmetic", "steps": 5, "limit": 3}], "limit": 4,
                       "models": ["a", "b"], "budgets": [None, 500], "verifiers": ["rating", "oracle"],
                       "strategies": ["cot", {"name": "self_consistency", "sweep": {"n": [2, 4]}},
                                      {"name": TEST_REFINE}]})
    cells = plan(spec)
    assert len(cells) == 2 * 2 * 2 * (1 + 2 + 2)  # models × tasks × budgets × (cot, sc×2, refine×2 verifiers)
    assert spec.tasks[0].options == {"steps": 3, "count": 200} and spec.tasks[0].limit == 4
    assert spec.tasks[1].options == {"steps": 5, "count": 200} and spec.tasks[1].limit == 3
    refine = [c for c in cells if c.strategy == TEST_REFINE]
    assert {c.options["verifier"] for c in refine} == {"rating", "oracle"}
    assert all(c.matched for c in refine) and not any(c.matched for c in cells if c.strategy != TEST_REFINE)
    assert {c.options.get("n") for c in cells if c.strategy == "self_consistency"} == {2, 4}
    assert {c.budget for c in cells} == {None, 500}
    assert cells[0].label == "cot" and cells[-1].label == f"{TEST_REFINE}(verifier=oracle) @500tok"


@pytest.mark.parametrize("data, message", [
    ({"tasks": ["arithmetic"], "models": ["m"], "strategies": ["cot"], "colour": 1}, "unknown key"),
    ({"tasks": ["nope"], "models": ["m"], "strategies": ["cot"]}, "unknown task"),
    ({"tasks": ["arithmetic"], "models": ["m"], "strategies": ["nope"]}, "unknown strategy"),
    ({"tasks": ["arithmetic"], "models": [], "strategies": ["cot"]}, "at least one model"),
    ({"tasks": ["arithmetic"], "models": ["m"], "strategies": ["cot"], "budgets": ["lots"]}, "budgets"),
    ([1, 2], "mapping"),
])
def test_bad_specs_get_one_clear_message(data, message):
    with pytest.raises(ExperimentError, match=message):
        parse_spec(data)


def test_a_refinements_matched_baselines_run_before_the_next_cell(db_path):
    # an experiment cut short then still has each refinement it finished compared at matched compute
    _, runs, _ = run_experiment(db_path, small_spec())
    order = [r.kind if r.kind != "cell" else r.run.strategy for r in runs]
    assert order == ["cot", TEST_REFINE, "pilot", "matched_self_consistency", "matched_best_of_n",
                     "self_consistency"]


def test_matched_n_rounds_to_the_nearest_sample_count():
    assert matched_n(40, 5) == 8
    assert matched_n(12, 5) == 2
    assert matched_n(1, 50) == 1  # never fewer than one sample
    assert matched_n(10, 0) == 1


def test_matched_baselines_spend_what_the_refinement_spent(db_path):
    store, runs, _ = run_experiment(db_path, small_spec())
    kinds = {r.kind: r for r in runs}
    assert set(kinds) == {"cell", "matched_self_consistency", "pilot", "matched_best_of_n"}
    refine = next(r for r in runs if r.run.strategy == TEST_REFINE)
    sc, pilot, bon = kinds["matched_self_consistency"], kinds["pilot"], kinds["matched_best_of_n"]
    target = mean_tokens(store, refine.run.id)
    assert sc.matched_to == refine.run.id and bon.matched_to == refine.run.id
    assert sc.detail["target_tokens"] == pytest.approx(target)
    draft = mean_tokens(store, pilot.run.id, role="solver")  # one sampled draft
    assert sc.run.strategy_options["n"] == sc.detail["n"] == round(target / draft)
    assert pilot.run.strategy_options["n"] == 1 and pilot.run.strategy_options["verifier"] == "rating"
    assert bon.run.strategy_options["n"] == bon.detail["n"] == round(target / mean_tokens(store, pilot.run.id))
    # the measured spend of each baseline lands near the refinement's (within one sample's cost)
    assert abs(mean_tokens(store, sc.run.id) - target) <= draft
    assert abs(mean_tokens(store, bon.run.id) - target) <= mean_tokens(store, pilot.run.id)


def test_a_baseline_matched_at_one_sample_decodes_greedily(db_path):
    # a refinement that spends about one draft (no rounds, a verifier with no model calls) is matched
    # by one sample: greedy, as cot decodes, not a lone sample at temperature 0.7
    spec = small_spec(strategies=["cot", {"name": TEST_REFINE, "options": {"rounds": 0, "verifier": "program_output"}}])
    store, runs, _ = run_experiment(db_path, spec)
    kinds = {r.kind: r for r in runs}
    sc, bon, pilot = kinds["matched_self_consistency"], kinds["matched_best_of_n"], kinds["pilot"]
    assert sc.detail["n"] == bon.detail["n"] == 1
    assert sc.run.strategy_options["temperature"] == bon.run.strategy_options["temperature"] == 0.0
    assert pilot.run.strategy_options["temperature"] == 0.7  # the pilot still measures a sampled draft
    cot = next(r for r in runs if r.run.strategy == "cot")
    answers = {run_id: {r.problem_id: r.answer for r in store.results(run_id)}
               for run_id in (cot.run.id, sc.run.id, bon.run.id)}
    assert answers[sc.run.id] == answers[bon.run.id] == answers[cot.run.id]


def test_the_grids_sampling_runs_draw_each_sample_once(db_path):
    # the pilot, the matched self-consistency and best-of-N and the n=3 cell sample the same seeded
    # drafts; cached sample by sample, each problem's drafts are drawn once, as many as the largest n
    store, runs, model = run_experiment(db_path, small_spec())
    sampled = [r for r in runs if r.run.strategy in ("best_of_n", "self_consistency")
               and r.run.strategy_options.get("temperature", 0.7) > 0]
    largest = max(r.run.strategy_options["n"] for r in sampled)
    assert len(sampled) >= 3 and largest > 1
    drawn: dict[str, int] = {}
    for call in model.calls:
        content = call.messages[-1]["content"]
        if call.params.temperature > 0 and not any(
                marker in content for marker in ("rate how likely", "Review the proposed", "Feedback on")):
            drawn[content] = drawn.get(content, 0) + call.params.n
    assert len(drawn) == 12 and set(drawn.values()) == {largest}


def test_a_repeated_experiment_is_served_from_the_store(db_path):
    run_experiment(db_path, small_spec())
    task = ArithmeticTask(count=12)
    again = scripted_model(task)
    store, runs, _ = run_experiment(db_path, small_spec(), model=again)
    assert again.calls == []  # every run was found finished, nothing reached the model
    assert len(store.list_runs()) == len(runs) == 6


def test_a_killed_experiment_resumes_without_redoing_finished_problems(db_path):
    register_test_strategy()
    task = ArithmeticTask(count=12)
    healthy = scripted_model(task)
    budget = {"calls": 0}

    def dies_after_40_calls(messages, params, index):
        budget["calls"] += 1
        if budget["calls"] > 40:
            raise ConnectionError("backend died")
        return healthy.responder(messages, params, index)

    dying = scripted_model(task)
    dying.responder = dies_after_40_calls
    spec = parse_spec(small_spec())
    store = Store(db_path)
    with pytest.raises(ConnectionError):
        asyncio.run(ExperimentRunner(spec, store, open_model=lambda name: dying, say=lambda m: None).run())
    stored_before = {run.id: store.done_problem_ids(run.id) for run in store.list_runs()}
    assert 0 < sum(map(len, stored_before.values())) < 12 * 3

    resumed = scripted_model(task)
    runs = asyncio.run(ExperimentRunner(spec, Store(db_path), open_model=lambda name: resumed,
                                        say=lambda m: None).run())
    assert len(runs) == 6
    for run in store.list_runs():
        rows = store.db.execute("SELECT problem_id, COUNT(*) FROM results WHERE run_id = ? GROUP BY problem_id",
                                (run.id,)).fetchall()
        assert len(rows) == 12 and all(count == 1 for _, count in rows)
    # the calls made before the kill were cached: the resumed run asked the model for fewer
    fresh = scripted_model(task)
    run_experiment(db_path.parent / "fresh.db", small_spec(), model=fresh)
    assert len(resumed.calls) < len(fresh.calls)


def test_cli_dry_run_lists_the_cells(tmp_path, capsys):
    spec_file = tmp_path / "grid.yaml"
    spec_file.write_text("name: grid\ntasks: [arithmetic]\nlimit: 2\nmodels: [smollm2-135m]\n"
                         "strategies: [cot, {name: self_consistency, options: {n: 2}}]\n")
    assert main(["experiment", str(spec_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 cells" in out and "self_consistency" in out
    spec_file.write_text("tasks: [arithmetic]\nmodels: [m]\nstrategies: [no_such_strategy]\n")
    assert main(["experiment", str(spec_file), "--dry-run"]) == 2


def test_a_grid_cell_can_double_as_the_matched_baseline(db_path):
    from redraft.report import build_report

    first_store, first_runs, _ = run_experiment(db_path.parent / "probe.db", small_spec())
    n_sc = next(r for r in first_runs if r.kind == "matched_self_consistency").detail["n"]
    spec = small_spec(strategies=["cot", {"name": TEST_REFINE, "options": {"rounds": 2}},
                                  {"name": "self_consistency", "options": {"n": n_sc}}])
    store, runs, _ = run_experiment(db_path, spec)
    sc = [r for r in runs if r.run.strategy == "self_consistency"]
    assert len(sc) == 1 and sc[0].kind == "cell" and sc[0].matched_to is not None and sc[0].detail["n"] == n_sc
    refine = next(m for m in build_report(store, experiment="scripted").runs if m.run.strategy == TEST_REFINE)
    assert {p.other_id for p in refine.versus_matched} >= {sc[0].run.id}
    assert len(refine.versus_matched) == 2


# -- the audit of issue 6 ----------------------------------------------------------------------------------------

def test_an_edited_experiment_shows_one_run_per_current_cell_and_keeps_the_old_ones(db_path):
    from redraft.report import build_report

    run_experiment(db_path, small_spec(limit=6))
    store, runs, _ = run_experiment(db_path, small_spec(limit=12))  # `limit:` widened
    assert len(runs) == 6 and all(len(store.results(r.run.id)) == 12 for r in runs)
    assert len(store.list_runs()) == 12  # the 6-problem runs stay in the database
    assert sorted(m.run.id for m in build_report(store, experiment="scripted").runs) == sorted(r.run.id for r in runs)

    # a strategy dropped from the file leaves the experiment's view (its run stays in the database)
    store, runs, _ = run_experiment(db_path, small_spec(limit=12, strategies=small_spec()["strategies"][:2]))
    assert len(runs) == 5 and not any(r.run.strategy == "self_consistency" and r.kind == "cell" for r in runs)
    assert len(store.list_runs()) == 12
    # dropping the matched baselines drops the pilot and both baselines too
    no_matched = [*small_spec()["strategies"][:1], {"name": TEST_REFINE, "options": {"rounds": 2},
                                                  "matched_baselines": False}]
    store, runs, _ = run_experiment(db_path, small_spec(limit=12, strategies=no_matched))
    assert sorted(r.label for r in runs) == ["cot", f"{TEST_REFINE}(rounds=2)"]
    assert sorted(m.label for m in build_report(store, experiment="scripted").runs) == \
        ["cot", f"{TEST_REFINE}(rounds=2)"]


def test_a_baseline_matched_to_two_refinements_keeps_both_comparisons(db_path):
    from redraft.report import build_report

    # the two refinement cells spend the same tokens, so they share one matched self-consistency run
    spec = small_spec(strategies=[{"name": TEST_REFINE, "options": {"rounds": 2},
                                   "verifiers": ["rating", "rating:max_tokens=48"]}])
    store, runs, _ = run_experiment(db_path, spec)
    refines = {r.run.id for r in runs if r.run.strategy == TEST_REFINE}
    [sc] = [r for r in runs if r.run.strategy == "self_consistency"]
    assert len(refines) == 2 and {m.refinement for m in sc.matches} == refines
    assert all(m.detail["n"] == sc.run.strategy_options["n"] for m in sc.matches)
    report = build_report(store, experiment="scripted")
    for refine in (m for m in report.runs if m.run.id in refines):
        assert sc.run.id in {p.other_id for p in refine.versus_matched} and len(refine.versus_matched) == 2


@pytest.mark.parametrize("strategy, options, expected", [
    ("dser", {}, "judge"), ("hsr", {}, "judge"), ("iad", {}, "judge"),  # their Options default
    ("glore", {}, "judge"), ("magicore", {"outcome_verifier": "rating"}, "rating"),  # outcome_verifier
    ("self_refine", {}, "the file's"), ("self_refine", {"verifier": "rating"}, "rating"), ("cot", {}, "the file's"),
])
def test_best_of_n_scores_with_the_refinement_strategys_effective_verifier(strategy, options, expected):
    from redraft.experiment import matched_verifier

    assert matched_verifier(strategy, options, "the file's") == expected


def test_the_pilot_and_best_of_n_use_the_refinement_strategys_default_verifier(db_path):
    # the test refinement's verifier defaults to rating; the file's baseline_verifier is only a fallback
    store, runs, _ = run_experiment(db_path, small_spec(baseline_verifier="judge"))
    for run in runs:
        if run.run.strategy == "best_of_n":
            assert run.run.strategy_options["verifier"] == "rating"


def test_the_verifiers_list_applies_to_outcome_verifier_and_is_refused_where_nothing_takes_it():
    spec = parse_spec({"tasks": ["arithmetic"], "models": ["m"], "verifiers": ["rating", "judge"],
                       "strategies": ["cot", "glore", {"name": "self_refine", "options": {"verifier": "judge"}}]})
    cells = plan(spec)
    assert sorted(c.options.get("outcome_verifier") for c in cells if c.strategy == "glore") == ["judge", "rating"]
    assert [c.options for c in cells if c.strategy == "self_refine"] == [{"verifier": "judge"}]  # set explicitly
    assert [c.options for c in cells if c.strategy == "cot"] == [{}]
    with pytest.raises(ExperimentError, match="cot has no verifier"):
        parse_spec({"tasks": ["arithmetic"], "models": ["m"], "strategies": [{"name": "cot", "verifiers": ["rating"]}]})


GRID = "tasks: [arithmetic]\nmodels: [m]\n"


@pytest.mark.parametrize("text, cell, problem", [
    (GRID + "strategies: [{name: self_refine, options: {colour: 1}}]", "self_refine(colour=1)", "no option colour"),
    (GRID + "strategies: [{name: self_consistency, options: {n: 2.5}}]", "self_consistency(n=2.5)", "valid int"),
    (GRID + "strategies: [{name: self_refine, options: {verifier: nope}}]", "self_refine(verifier=nope)",
     "unknown verifier 'nope'"),
    (GRID + "strategies: [{name: glore, options: {step_verifier: nope}}]", "glore(step_verifier=nope)",
     "unknown verifier 'nope'"),
    (GRID + "strategies: [{name: dser, options: {verifier: 'rating:colour=red'}}]", "dser(verifier=rating:colour=red)",
     "no option 'colour'"),
    (GRID + "verifiers: [rating, nope]\nstrategies: [self_refine]", "self_refine(verifier=nope)",
     "unknown verifier 'nope'"),
    (GRID + "strategies: [{name: self_refine, sweep: {verifier: [rating, nope]}}]", "self_refine(verifier=nope)",
     "unknown verifier 'nope'"),
    (GRID + "strategies: [self_refine]\nbaseline_verifier: nope", "baseline_verifier", "unknown verifier 'nope'"),
    (GRID + "strategies: [cot]\nbaseline: nope", "baseline", "'nope' is not a strategy"),
    (GRID + "strategies: [{name: self_consistency, options: [n, 3]}]", "strategies entry 1 (self_consistency)",
     "options: should be a mapping"),
    (GRID + "strategies: [{name: self_consistency, options: n=3}]", "strategies entry 1 (self_consistency)",
     "options: should be a mapping"),
    (GRID + "strategies: [cot]\nlimit: lots", "limit", "an integer"),
    (GRID + "strategies: [cot]\nlimit: 2.5", "limit", "an integer"),
    ("tasks: [{name: arithmetic, limit: x}]\nmodels: [m]\nstrategies: [cot]", "task arithmetic: limit", "an integer"),
    (GRID + "strategies: [cot]\nseed: one", "seed", "an integer"),
    (GRID + "strategies: [cot]\nmatched_baselines: maybe", "matched_baselines", "true or false"),
    (GRID + "strategies: [{name: self_refine, matched_baselines: 3}]", "strategies entry 1 (self_refine)",
     "true or false"),
    (GRID + "strategies: [cot]\nbudgets: [0]", "budgets", "positive integer"),
    (GRID + "strategies: [cot]\nbudgets: [-100]", "budgets", "positive integer"),
    (GRID + "strategies: [cot]\nbudgets: [1.5]", "budgets", "positive integer"),
    (GRID + "strategies: [cot]\nbudgets: [true]", "budgets", "positive integer"),
])
def test_a_bad_cell_is_refused_up_front_in_one_line(tmp_path, capsys, text, cell, problem):
    spec_file = tmp_path / "grid.yaml"
    spec_file.write_text(text + "\n")
    for argv in (["experiment", str(spec_file), "--dry-run"], ["experiment", str(spec_file), "--db",
                                                               str(tmp_path / "runs.db")]):
        assert main(argv) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert str(spec_file) in line and cell in line and problem in line, line
    assert not (tmp_path / "runs.db").exists()  # refused before anything was stored


def test_the_experiment_page_goes_next_to_the_experiment_file(tmp_path, monkeypatch, capsys):
    import yaml

    register_test_strategy()
    folder = tmp_path / "examples"
    folder.mkdir()
    spec_file = folder / "scripted.yaml"
    spec_file.write_text(yaml.safe_dump({**small_spec(), "db": "scripted.db"}))
    model = scripted_model(ArithmeticTask(count=12))
    monkeypatch.setattr(ExperimentRunner, "_load_model", lambda self, name: model)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["experiment", str(spec_file)]) == 0
    assert (folder / "scripted.html").is_file() and not any(elsewhere.iterdir())
    err = capsys.readouterr().err
    assert f"report: {folder / 'scripted.html'}" in err
    # stderr is no terminal here (as in a nohup log): each run's progress comes as lines
    assert re.search(r"^  \S.*: (\d+)/\1 done, acc \d+\.\d%, \d+ tok/problem", err, flags=re.MULTILINE), err
    (folder / "scripted.html").unlink()
    assert main(["report", str(spec_file)]) == 0  # `redraft report FILE.yaml` writes the same page
    assert (folder / "scripted.html").is_file() and not any(elsewhere.iterdir())


def test_an_experiment_recorded_before_experiment_cells_is_still_shown(db_path):
    from redraft.experiment import experiment_runs

    store, runs, _ = run_experiment(db_path, small_spec())
    store.db.execute("DROP TABLE experiment_cells")  # as a database written before that table was
    assert sorted(r.run.id for r in experiment_runs(store, "scripted")) == sorted(r.run.id for r in runs)
