"""Control flow of magicore and glore, pinned with a scripted model and table verifiers."""

import pytest
import refine_b_world as w
from refine_b_world import World, between, boxed, events, solve

from redraft.verifiers import Score

MAGICORE = {"outcome_verifier": "test_outcome", "step_verifier": "test_steps", "k": 5}
GLORE = {"outcome_verifier": "test_outcome", "step_verifier": "test_steps"}
DRAFT = "Step 1: a = 2\nStep 2: b = 5\nStep 3: c = 9\nso \\boxed{9}"


@pytest.fixture(autouse=True)
def fresh_tables():
    w.OUTCOME.clear()
    w.STEPS.clear()
    yield


# -- magicore --------------------------------------------------------------------------------------------------

def test_magicore_easy_problem_is_only_voted():
    w.OUTCOME.update({"7": 0.9, "5": 0.2})
    world = World(drafts=[boxed(7), boxed(7), boxed(5), boxed(7), boxed(5)])
    result, ctx, error = solve("magicore", MAGICORE, world)
    assert result.answer == "7" and error is None
    assert world.count("review") == 0 and world.count("refine") == 0 and world.count("stepcheck") == 0
    [round0] = events(ctx, "round")
    assert round0["decision"].startswith("easy") and round0["agreement"] == pytest.approx(0.6)
    assert events(ctx, "final")[0]["round"] == 0


def test_magicore_disagreement_makes_it_hard_and_refines_the_top_candidates_with_targeted_reviews():
    w.OUTCOME.update({"1": 0.6, "2": 0.9, "3": 0.6, "4": 0.8, "5": 0.6, "42": 0.95})
    w.STEPS.update({a: Score(0.4, steps=(0.9, 0.1, 0.8), first_error=1) for a in "1234"})
    drafts = [f"Step 1: x\nStep 2: y\nStep 3: z\nso \\boxed{{{a}}}" for a in (1, 2, 3, 4, 5)]
    world = World(drafts=drafts, replies={"review": "Step 2 is wrong: y should be 42.", "refine": boxed(42)})
    result, ctx, _ = solve("magicore", MAGICORE, world)
    # agreement 1/5 < 0.5: hard. The top three by outcome score are drafts 1, 3, 0 (ties: earliest)
    assert world.count("stepcheck") == 3 and world.count("review") == 3 and world.count("refine") == 3
    assert all("these steps the weakest: step 2" in p for p in world.seen["review"])
    assert all("Step 2 (score 0.10)" in p for p in world.seen["review"])
    assert all("y should be 42" in p for p in world.seen["refine"])  # the Reviewer's feedback reaches the Refiner
    rounds = events(ctx, "round")
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[0]["decision"] == "hard: refine"
    assert [c["answer"] for c in rounds[1]["candidates"]] == ["42", "42", "3", "42", "5"]
    assert rounds[1]["critiques"][2] is None and rounds[1]["critiques"][0].startswith("Step 2")
    assert rounds[1]["decision"] == "easy: stop"  # 3/5 agree, confidence 0.95
    assert result.answer == "42" and result.info["rounds"] == 1


def test_magicore_low_confidence_iterates_while_hard_up_to_the_round_limit():
    w.OUTCOME.update({"5": 0.2})
    world = World(drafts=[boxed(5)], replies={"review": "looks fine", "refine": boxed(5)})
    result, ctx, _ = solve("magicore", {**MAGICORE, "max_rounds": 2, "refine_top": 2}, world)
    rounds = events(ctx, "round")
    assert [r["decision"] for r in rounds] == ["hard: refine", "hard: refine again", "hard: stop at round limit"]
    assert world.count("refine") == 4  # 2 rounds x 2 targets
    assert result.answer == "5" and result.info["rounds"] == 2


def test_magicore_never_exceeds_a_small_budget_and_returns_its_best_so_far():
    w.OUTCOME.update({"5": 0.2, "6": 0.3})
    world = World(drafts=[boxed(5, 20), boxed(6, 20)], replies={"review": " ".join(["r"] * 30),
                                                                 "refine": boxed(8, 30)})
    result, ctx, error = solve("magicore", {**MAGICORE, "k": 2, "max_tokens": 40}, world, budget=110)
    assert ctx.cost.completion_tokens <= 110
    assert error is None and result.info["budget_exhausted"]
    assert events(ctx, "budget_exhausted")
    assert result.answer == "6"  # the weighted vote over the scored drafts


# -- glore -----------------------------------------------------------------------------------------------------

def test_glore_accepts_a_draft_the_outcome_verifier_trusts():
    w.OUTCOME.update({"9": 0.8})
    world = World(drafts=[DRAFT])
    result, ctx, _ = solve("glore", GLORE, world)
    assert result.answer == "9" and result.info["refined"] is False
    assert world.count("global") == 0 and world.count("local") == 0 and world.count("stepcheck") == 0
    assert ctx.trace[0]["temperature"] == 0  # the draft is greedy


def test_glore_local_refiner_gets_exactly_the_prefix_before_the_first_error():
    w.OUTCOME.update({"9": 0.1, "11": 0.4, "12": 0.8})
    w.STEPS["9"] = Score(0.2, steps=(0.9, 0.2, 0.1), first_error=1, feedback="b should be 6")
    world = World(drafts=[DRAFT], replies={"global": boxed(11), "local": "Step 2: b = 6\nso \\boxed{12}"})
    result, ctx, _ = solve("glore", GLORE, world)
    [local_prompt] = world.seen["local"]
    assert between(local_prompt, "believed correct so far:\n", "\n\nCritique") == "Step 1: a = 2"
    assert "Step 2 is likely the first wrong step:\nStep 2: b = 5" in local_prompt and "b should be 6" in local_prompt
    [global_prompt] = world.seen["global"]
    assert DRAFT in global_prompt and "b should be 6" not in global_prompt  # global: question + draft only
    # the local candidate is the kept prefix plus the continuation; the rerank picks it (0.8)
    assert result.text == "Step 1: a = 2\nStep 2: b = 6\nso \\boxed{12}"
    assert result.answer == "12" and result.info["origin"] == "local"
    final_round = events(ctx, "round")[-1]
    assert [c["origin"] for c in final_round["candidates"]] == ["draft", "global", "local"]
    assert final_round["scores"] == [0.1, 0.4, 0.8] and final_round["decision"] == "rerank: local"


@pytest.mark.parametrize("table, origin", [({"9": 0.3, "11": 0.7, "12": 0.6}, "global"),
                                           ({"9": 0.3, "11": 0.2, "12": 0.1}, "draft"),
                                           ({"9": 0.3, "11": 0.3, "12": 0.3}, "draft")])
def test_glore_rerank_chooses_among_draft_global_and_local(table, origin):
    w.OUTCOME.update(table)
    w.STEPS["9"] = Score(0.2, steps=(0.9, 0.2, 0.1), first_error=1)
    world = World(drafts=[DRAFT], replies={"global": boxed(11), "local": boxed(12)})
    result, _, _ = solve("glore", GLORE, world)
    assert result.info["origin"] == origin


def test_glore_global_only_and_local_only():
    w.OUTCOME.update({"9": 0.1, "11": 0.4, "12": 0.8})
    w.STEPS["9"] = Score(0.2, steps=(0.9, 0.2, 0.1), first_error=2)
    world = World(drafts=[DRAFT], replies={"global": boxed(11), "local": boxed(12)})
    result, _, _ = solve("glore", {**GLORE, "refiners": "global"}, world)
    assert result.answer == "11" and world.count("local") == 0 and world.count("stepcheck") == 0
    world = World(drafts=[DRAFT], replies={"global": boxed(11), "local": boxed(12)})
    result, _, _ = solve("glore", {**GLORE, "refiners": "local"}, world)
    assert result.answer == "12" and world.count("global") == 0
    assert between(world.seen["local"][0], "so far:\n", "\n\nCritique") == "Step 1: a = 2\nStep 2: b = 5"
    with pytest.raises(ValueError, match="refiners='twice'"):
        solve("glore", {**GLORE, "refiners": "twice"}, world)


def test_glore_without_a_located_error_refines_locally_from_the_lowest_step():
    w.OUTCOME.update({"9": 0.1})
    w.STEPS["9"] = Score(0.2, steps=(0.3, 0.9, 0.8))
    world = World(drafts=[DRAFT], replies={"global": boxed(11), "local": boxed(12)})
    solve("glore", GLORE, world)
    assert "(nothing yet)" in world.seen["local"][0]  # lowest step is the first: nothing is kept


def test_glore_never_exceeds_a_small_budget_and_returns_its_best_so_far():
    w.OUTCOME.update({"9": 0.1, "11": 0.9})
    world = World(drafts=[DRAFT], replies={"global": boxed(11, 50), "local": boxed(12, 50)})
    result, ctx, error = solve("glore", {**GLORE, "max_tokens": 60}, world, budget=80)
    assert ctx.cost.completion_tokens <= 80
    assert error is None and result.info["budget_exhausted"] and result.answer == "9"


def test_glore_uses_the_step_verifiers_own_critique_when_it_quotes_the_step():
    w.OUTCOME.update({"9": 0.1})
    w.STEPS["9"] = Score(0.2, steps=(0.9, 0.2, 0.1), first_error=1,
                         feedback="Step 2 looks wrong:\nStep 2: b = 5\nCritique: b is 6")
    world = World(drafts=[DRAFT], replies={"global": boxed(11), "local": boxed(12)})
    solve("glore", GLORE, world)
    critique = between(world.seen["local"][0], "in the previous attempt:\n", "\n\nContinue")
    assert critique == "Step 2 looks wrong:\nStep 2: b = 5\nCritique: b is 6"
