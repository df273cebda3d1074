"""Durable runs: each finished problem stored once; a resumed run skips what is done."""

import asyncio

from redraft.models.scripted import ScriptedModel
from redraft.runner import execute_run, summarize
from redraft.store import Store
from redraft.strategies import default_options, make_strategy, options_of
from redraft.tasks.arithmetic import ArithmeticTask


def correct_solver(task):
    keys = {p.question: task.reference(p) for p in task.problems()}

    def responder(messages, params, index):
        for question, key in keys.items():
            if question in messages[-1]["content"]:
                return f"Working... \\boxed{{{key}}}" if int(key) % 2 == 0 else "\\boxed{-1}"
        raise AssertionError("unknown question")

    return responder


def new_run(store, task, strategy, n_problems):
    return store.create_run(task="arithmetic", task_options={}, strategy=strategy.name,
                            strategy_options=options_of(strategy), model="scripted", model_identity="scripted",
                            settings={}, problem_ids=[p.id for p in task.problems(limit=n_problems)],
                            uses_oracle=False)


def test_run_stores_every_problem_with_its_grade(db_path):
    task = ArithmeticTask(count=10)
    store = Store(db_path)
    strategy = make_strategy("cot")
    run = new_run(store, task, strategy, 10)
    summary = asyncio.run(execute_run(store, run, task, strategy, {"solver": ScriptedModel(
        responder=correct_solver(task))}, concurrency=3))
    expected = sum(int(task.reference(p)) % 2 == 0 for p in task.problems())
    assert summary.problems == 10
    assert summary.correct == expected
    records = Store(db_path).results(run.id)  # a fresh connection sees the committed rows
    assert [r.position for r in records] == list(range(10))
    assert all(r.trace and r.trace[0]["type"] == "call" for r in records)
    assert Store(db_path).get_run(run.id).finished is not None


def test_resume_solves_only_what_is_missing(db_path):
    task = ArithmeticTask(count=6)
    store = Store(db_path)
    strategy = make_strategy("cot")
    run = new_run(store, task, strategy, 6)
    first = ScriptedModel(responder=correct_solver(task))
    # stop after 2 problems by failing the third call
    calls = {"n": 0}

    def flaky(messages, params, index):
        calls["n"] += 1
        if calls["n"] > 2:
            raise ConnectionError("backend died")
        return correct_solver(task)(messages, params, index)

    try:
        asyncio.run(execute_run(store, run, task, strategy, {"solver": ScriptedModel(responder=flaky)},
                                concurrency=1))
    except ConnectionError:
        pass
    assert len(store.done_problem_ids(run.id)) == 2
    summary = asyncio.run(execute_run(store, run, task, strategy, {"solver": first}, concurrency=2))
    assert len(first.calls) == 4  # only the four missing problems were solved again
    assert summary.problems == 6
    rows = store.db.execute("SELECT problem_id, COUNT(*) FROM results WHERE run_id=? GROUP BY problem_id",
                            (run.id,)).fetchall()
    assert sorted(r[0] for r in rows) == [p.id for p in task.problems()] and all(r[1] == 1 for r in rows)
    assert summarize(store, run).problems == 6


def test_a_run_made_before_an_option_existed_still_resumes_as_the_same_experiment(db_path):
    task = ArithmeticTask(count=3)
    store = Store(db_path)
    strategy = make_strategy("self_consistency", {"n": 4})
    old_options = {k: v for k, v in options_of(strategy).items() if k != "certainty"}  # as stored before
    old = store.create_run(task="arithmetic", task_options={}, strategy=strategy.name, strategy_options=old_options,
                           model="scripted", model_identity="scripted", settings={},
                           problem_ids=[p.id for p in task.problems()], uses_oracle=False)
    config = dict(task="arithmetic", task_options={}, strategy=strategy.name, strategy_options=options_of(strategy),
                  model_identity="scripted", settings={}, problem_ids=[p.id for p in task.problems()])
    assert store.find_latest(config) is None  # exact match alone would orphan the old run
    assert store.find_latest(config, default_options(strategy)).id == old.id
    changed = dict(config, strategy_options=dict(options_of(strategy), certainty=5))
    assert store.find_latest(changed, default_options(strategy)) is None  # a non-default value is another run


def test_deleting_a_run_removes_it_and_its_results_but_keeps_the_call_cache(db_path):
    task = ArithmeticTask(count=3)
    store = Store(db_path)
    strategy = make_strategy("cot")
    keep, drop = new_run(store, task, strategy, 3), new_run(store, task, strategy, 3)
    for run in (keep, drop):
        asyncio.run(execute_run(store, run, task, strategy, {"solver": ScriptedModel(
            responder=correct_solver(task))}, concurrency=1))
    cached = store.db.execute("SELECT COUNT(*) FROM call_cache").fetchone()[0]
    assert cached > 0
    assert store.delete_run(drop.id) == 3
    assert [r.id for r in Store(db_path).list_runs()] == [keep.id]
    assert len(store.results(keep.id)) == 3 and store.results(drop.id) == []
    assert store.db.execute("SELECT COUNT(*) FROM call_cache").fetchone()[0] == cached
    try:
        store.delete_run(keep.id[:-1])  # a partial id never deletes
    except KeyError as exc:
        assert "give the whole id" in str(exc)
    else:
        raise AssertionError("a partial id deleted a run")
    assert [r.id for r in store.list_runs()] == [keep.id]
