"""Scripted stores for the experiment and report tests: real runs of real strategies on a scripted model.

The scripted solver is right on problems whose key is even and answers -1 otherwise; its sampled
drafts (temperature > 0) are right only as a call's first sample, so pass@k, voting and first-sample
accuracy differ in known ways. A small refinement strategy registered here follows the trace
convention of ``redraft.strategies.moves`` (rounds with candidates, scores and critiques).
"""

from __future__ import annotations

from dataclasses import dataclass

from redraft.context import Result, SolveContext, derived_seed
from redraft.models.scripted import ScriptedModel
from redraft.strategies import moves
from redraft.strategies.base import STRATEGIES, Strategy, register_strategy
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.verifiers import make_verifier

TEST_REFINE = "report_test_refine"


def scripted_model(task: ArithmeticTask) -> ScriptedModel:
    keys = {p.question: task.reference(p) for p in task.problems()}
    # a sampled draft is right only as the first sample of a call: the sample seeded with the call's
    # own derived seed (sample i is seeded seed + i, so this holds however the cache splits a call)
    first_seeds = {derived_seed(0, p.id, "solver", call) for p in task.problems() for call in range(32)}

    def responder(messages, params, index):
        content = messages[-1]["content"]
        if "rate how likely" in content:
            return "Looks fine. Rating: 9" if "\\boxed{-1}" not in content else "Suspicious. Rating: 2"
        if "Review the proposed solution" in content:
            return "Step two is wrong, the count is off."
        key = next(k for q, k in keys.items() if q in content)
        if "Feedback on the previous solution" in content:
            # refinement fixes odd-keyed problems whose id is a multiple of 3 and breaks key 0 mod 4
            if int(key) % 4 == 0:
                return "Revised: the total is \\boxed{-2}"
            return f"Revised: the total is \\boxed{{{key}}}" if int(key) % 3 == 0 else "Revised: still \\boxed{-1}"
        if params.temperature > 0 and params.seed + index not in first_seeds:
            return "A sampled guess gives \\boxed{-1}"
        return f"Working it out gives \\boxed{{{key}}}" if int(key) % 2 == 0 else "Working it out gives \\boxed{-1}"

    return ScriptedModel(responder=responder, identity="scripted-report-test")


@dataclass
class TestRefineOptions:
    rounds: int = 1
    verifier: str = "rating"


class TestRefine(Strategy):
    """Draft, then per round: score, critique, refine (the convention's shape, nothing more)."""

    name = TEST_REFINE
    Options = TestRefineOptions

    async def solve(self, ctx: SolveContext) -> Result:
        verifier = make_verifier(self.options.verifier)
        [draft] = await moves.sample(ctx, 1, temperature=0.0)
        [score] = await moves.score_all(ctx, verifier, [draft])
        moves.note_round(ctx, 0, [draft], [score], decision="draft")
        current = draft
        for round_index in range(1, self.options.rounds + 1):
            feedback = await moves.critique(ctx, current)
            current = await moves.refine(ctx, current, feedback, round=round_index)
            [score] = await moves.score_all(ctx, verifier, [current])
            moves.note_round(ctx, round_index, [current], [score], critiques=[feedback], decision="refine",
                             answer=current.answer)
        moves.note_final(ctx, current.answer, self.options.rounds)
        return Result(current.answer, current.text)


def register_test_strategy() -> None:
    if TEST_REFINE not in STRATEGIES:
        register_strategy(TestRefine)


def small_spec(**overrides: object) -> dict[str, object]:
    """A grid of cot, the test refinement (with matched baselines) and self-consistency on 12 problems."""
    spec: dict[str, object] = {
        "name": "scripted", "tasks": [{"name": "arithmetic", "count": 12}], "limit": 12, "models": ["scripted"],
        "strategies": ["cot", {"name": TEST_REFINE, "options": {"rounds": 2}},
                       {"name": "self_consistency", "options": {"n": 3}}],
        "concurrency": 3,
    }
    spec.update(overrides)
    return spec


def run_experiment(db_path, spec_data: dict[str, object], model: ScriptedModel | None = None):
    """Run a spec on the scripted model; returns (store, experiment runs, the model used)."""
    import asyncio

    from redraft.experiment import ExperimentRunner, parse_spec
    from redraft.store import Store

    register_test_strategy()
    spec = parse_spec(spec_data)
    task = ArithmeticTask(count=12)
    model = model or scripted_model(task)
    store = Store(db_path)
    runs = asyncio.run(ExperimentRunner(spec, store, open_model=lambda name: model, say=lambda m: None).run())
    return store, runs, model
