"""benchmarks/verifier_quality.py: a weighted mean of verifiers already scored is composed from their stored
rows, with no model call, and equals what the weighted verifier itself returns."""

from __future__ import annotations

import asyncio

from benchmark_scripts import gsm8k_task, load_benchmark_script

from redraft.store import Store

QUESTION = "Tom has 3 bags of 4 apples and eats 2. How many apples are left?"
PROGRAM_RIGHT = "```python\nprint(3 * 4 - 2)\n```\n```output\n10\n```\nThe answer is \\boxed{10}."
PROGRAM_MADE_UP = "```python\nprint(3 * 4 - 2)\n```\n```output\n12\n```\nThe answer is \\boxed{12}."
NO_PROGRAM = "3 * 4 = 12, 12 - 2 = 10. The answer is \\boxed{10}."


def row(problem_id, verifier, scores, steps=None, first_error=None, cost=None):
    return {"problem_id": problem_id, "verifier": verifier, "scores": scores,
            "steps": steps or [None] * len(scores), "first_error": first_error or [None] * len(scores),
            "cost": cost or {}, "replay_mismatches": 0, "seconds": 1.0}


def test_the_weighted_mean_its_steps_and_cost_come_from_the_members_rows():
    vq = load_benchmark_script("verifier_quality")
    done = {("0", "judge"): row("0", "judge", [1.0, 0.0], cost={"judge": {"calls": 2, "completion_tokens": 40}}),
            ("0", "step_judge:split=lines"): row("0", "step_judge:split=lines", [0.5, 0.25],
                                                 steps=[[0.9, 0.5], None], first_error=[1, None],
                                                 cost={"judge": {"calls": 4, "completion_tokens": 60}})}
    composed = vq.composed_row("weighted:judge=3,step_judge(split=lines)=1", done, "0")
    assert composed["scores"] == [(3 * 1.0 + 0.5) / 4, (3 * 0.0 + 0.25) / 4]
    # steps come from the member that has them, here the lighter one (the heavier has none)
    assert composed["steps"] == [[0.9, 0.5], None] and composed["first_error"] == [1, None]
    assert composed["cost"] == {"judge": {"calls": 6, "completion_tokens": 100}}
    assert vq.composed_row("weighted:judge=1,rating=1", done, "0") is None  # rating not scored yet
    assert vq.composed_row("judge", done, "0") is None  # not a weighted spec


def test_a_composed_row_equals_the_weighted_verifiers_own_scores(tmp_path):
    vq = load_benchmark_script("verifier_quality")
    task = gsm8k_task(tmp_path, [(QUESTION, "3*4=12, 12-2=10\n#### 10")])
    problem = task.problems()[0]
    samples = vq.ProblemSamples(problem=problem, texts=[PROGRAM_RIGHT, PROGRAM_MADE_UP, NO_PROGRAM], calls=[],
                                run_id="r")
    store = Store(tmp_path / "cache.db")
    spec = "weighted:oracle=0.25,program_output=0.75"

    def scored(verifier):
        return asyncio.run(vq.score_problem(verifier, samples, task, {}, store))

    done = {(problem.id, v): scored(v) for v in ("oracle", "program_output")}
    composed = vq.composed_row(spec, done, problem.id)
    direct = scored(spec)
    assert composed["scores"] == direct["scores"]
    assert direct["scores"][0] > direct["scores"][2] > direct["scores"][1]  # the made-up output ranks last
