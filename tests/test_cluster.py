"""Runs on a real Ray instance (started in this process, two logical CPUs per worker slot): problems
spread over workers, each stored exactly once by the driver; dead workers hand their problems on."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from ray import cloudpickle

from redraft.cluster import ClusterError, RayPool
from redraft.models.base import ModelError
from redraft.models.scripted import ScriptedModel
from redraft.store import Store
from redraft.strategies import load_builtins, make_strategy
from redraft.tasks import load_task

# the workers unpickle this module's functions by value: tests/ is not importable on them
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20,
             _system_config={"worker_niceness": 0})
    yield
    ray.shutdown()


def _task():
    return load_task("arithmetic", steps=2, count=12)


def _answering(*tasks, die_marker: str | None = None):
    """A scripted model that answers every question of ``tasks`` right and says which process
    answered; with ``die_marker``, the first worker to answer creates the file and dies on the spot."""
    answers = {p.question: task.reference(p) for task in tasks for p in task.problems()}

    def open_model():
        def respond(messages, params, index):
            if die_marker is not None:
                try:
                    os.close(os.open(die_marker, os.O_CREAT | os.O_EXCL))
                    os._exit(1)
                except FileExistsError:
                    pass
            answer = next(a for q, a in answers.items() if q in messages[-1]["content"])
            return f"pid {os.getpid()}. The answer is {answer}"
        return ScriptedModel(responder=respond, delay=0.05)
    return open_model


def _new_run(store, task, strategy, identity, steps=2):
    return store.create_run(task="arithmetic", task_options={"steps": steps, "count": len(task)},
                            strategy=strategy.name,
                            strategy_options={}, model_identity=identity, settings={}, model="scripted",
                            problem_ids=[p.id for p in task.problems()], uses_oracle=False)


def _pool(open_model, workers=2, concurrency=2):
    return RayPool(open_model, workers=workers, cpus_per_worker=1, concurrency=concurrency, address="local")


def _cot():
    load_builtins()
    return make_strategy("cot", {})


def test_problems_spread_over_workers_and_are_stored_once(tmp_path):
    task, other_task = _task(), load_task("arithmetic", steps=1, count=5)
    pool = _pool(_answering(task, other_task))
    store = Store(tmp_path / "runs.db")

    async def go():
        run = _new_run(store, task, _cot(), pool.identity)
        seen = []
        summary = await pool.execute(store, run, task, _cot(), on_done=seen.append)
        # the same workers (and models) take the next run, as in an experiment's grid
        other_run = _new_run(store, other_task, _cot(), pool.identity, steps=1)
        other = await pool.execute(store, other_run, other_task, _cot())
        await pool.close()
        return run, summary, seen, other

    run, summary, seen, other = asyncio.run(go())
    assert other.problems == 5 and other.correct == 5
    records = store.results(run.id)
    assert summary.problems == 12 and summary.correct == 12  # graded on the workers, against the key
    assert sorted(r.problem_id for r in records) == sorted(p.id for p in task.problems())
    assert len(seen) == 12
    assert len({r.text.split(".")[0] for r in records}) == 2  # both workers answered
    assert all(r.trace and r.cost.completion_tokens > 0 for r in records)
    assert store.get_run(run.id).finished is not None
    rows = sqlite3.connect(tmp_path / "runs.db").execute("select run_id, count(*) from results group by run_id")
    assert dict(rows.fetchall()) == {run.id: 12, other.run_id: 5}  # each problem stored once


def test_a_dead_worker_hands_its_problems_to_the_live_one(tmp_path):
    task = _task()
    pool = _pool(_answering(task, die_marker=str(tmp_path / "died")))
    store = Store(tmp_path / "runs.db")

    async def go():
        run = _new_run(store, task, _cot(), pool.identity)
        await pool.execute(store, run, task, _cot())
        await pool.close()
        return run

    run = asyncio.run(go())
    records = store.results(run.id)
    assert (tmp_path / "died").exists()
    assert sorted(r.problem_id for r in records) == sorted(p.id for p in task.problems())
    assert all(r.correct for r in records)
    assert len({r.text.split(".")[0] for r in records}) == 1  # the survivor did them all


def test_when_every_worker_dies_the_run_stops_cleanly_and_resumes(tmp_path):
    task = _task()
    store = Store(tmp_path / "runs.db")
    doomed = _pool(_answering(task, die_marker=str(tmp_path / "died")), workers=1, concurrency=1)

    async def first():
        run = _new_run(store, task, _cot(), doomed.identity)
        with pytest.raises(ClusterError, match="every Ray worker died.*12 problems left.*--resume"):
            await doomed.execute(store, run, task, _cot())
        await doomed.close()
        return run

    run = asyncio.run(first())
    assert store.results(run.id) == []
    healthy = _pool(_answering(task))

    async def resume():
        summary = await healthy.execute(store, run, task, _cot())
        await healthy.close()
        return summary

    assert asyncio.run(resume()).correct == 12


def test_workers_with_different_weights_refuse_the_run():
    def open_model():
        return ScriptedModel(replies=[], identity=f"scripted-{os.getpid()}")

    with pytest.raises(ModelError, match="disagree on the model"):
        _pool(open_model)


def test_a_worker_that_cannot_open_its_model_is_a_clear_error():
    def open_model():
        raise ModelError("no such model file on this node")

    with pytest.raises(ModelError, match="could not open the model: .*no such model file on this node"):
        _pool(open_model, workers=1)


@pytest.mark.model
def test_cli_run_on_a_local_ray_instance_with_the_real_model(tmp_path):
    db = tmp_path / "runs.db"
    env = {**os.environ, "RAY_ADDRESS": ""}
    out = subprocess.run([sys.executable, "-m", "redraft.cli", "run", "--ray", "local", "--workers", "1",
                          "--model", "smollm2-135m", "--task", "arithmetic", "--steps", "1", "--limit", "3",
                          "--db", str(db), "--quiet"], capture_output=True, text=True, timeout=600, env=env,
                         cwd=Path(__file__).parent)
    assert out.returncode == 0, out.stderr
    store = Store(db)
    (run,) = store.list_runs()
    assert run.model_identity.startswith("gguf:b179c952")
    records = store.results(run.id)
    assert len(records) == 3 and all(r.cost.completion_tokens > 0 for r in records)
    assert "accuracy" in out.stdout.lower() or "acc" in out.stdout.lower()


def test_an_experiment_grid_runs_on_the_workers(tmp_path):
    from redraft.experiment import ExperimentRunner, experiment_runs, parse_spec

    task = load_task("arithmetic", steps=3, count=200)
    pool = _pool(_answering(task))
    spec = parse_spec({"name": "grid", "tasks": ["arithmetic"], "limit": 6, "models": ["scripted"],
                       "strategies": ["cot", {"name": "self_consistency", "options": {"n": 2}}]})
    store = Store(tmp_path / "runs.db")
    asyncio.run(ExperimentRunner(spec, store, open_model=lambda name: pool, say=lambda m: None).run())
    runs = experiment_runs(store, "grid")
    assert len(runs) == 2
    for run in store.list_runs():
        records = store.results(run.id)
        assert len(records) == 6 and all(r.correct for r in records)
        assert f"pid {os.getpid()}." not in " ".join(r.text for r in records)  # answered on the workers
    assert store.list_runs()[0].model_identity == "scripted"
