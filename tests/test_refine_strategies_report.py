"""The refinement strategies' traces give per-round accuracy and flips through redraft.report.metrics."""

import asyncio

from redraft.models.scripted import ScriptedModel
from redraft.report.metrics import Grader, run_metrics
from redraft.runner import execute_run
from redraft.store import Store
from redraft.strategies import make_strategy, options_of
from redraft.tasks.arithmetic import ArithmeticTask


def test_self_refine_rounds_and_flips_are_measurable_from_the_store(db_path):
    task = ArithmeticTask(count=3)
    problems = task.problems()
    keys = {p.question: task.reference(p) for p in problems}
    # problem 0: wrong draft fixed in round 1; problem 1: right draft broken in round 1; problem 2: right throughout
    plan = {problems[0].question: ("-1", keys[problems[0].question]),
            problems[1].question: (keys[problems[1].question], "-2"),
            problems[2].question: (keys[problems[2].question], keys[problems[2].question])}

    def responder(messages, params, index):
        text = messages[-1]["content"]
        question = next(q for q in plan if q in text)
        draft, revised = plan[question]
        if "Verdict: CORRECT" in text:  # the self-critique: always asks for one revision, then accepts
            return "Verdict: CORRECT" if "revised" in text else "Verdict: INCORRECT"
        if "Feedback on the previous solution" in text:
            return f"revised \\boxed{{{revised}}}"
        return f"draft \\boxed{{{draft}}}"

    store = Store(db_path)
    strategy = make_strategy("self_refine", {"rounds": 2})
    run = store.create_run(task="arithmetic", task_options={"count": 3}, strategy=strategy.name,
                           strategy_options=options_of(strategy), model="scripted", model_identity="scripted",
                           settings={}, problem_ids=[p.id for p in problems], uses_oracle=False)
    asyncio.run(execute_run(store, run, task, strategy, {"solver": ScriptedModel(responder=responder)}))
    metrics = run_metrics(store, store.get_run(run.id), Grader())
    assert metrics.round_accuracy == [2 / 3, 2 / 3]
    assert metrics.draft_accuracy == 2 / 3
    assert (metrics.right_to_wrong, metrics.wrong_to_right) == (1, 1)
    assert metrics.accuracy == 2 / 3
