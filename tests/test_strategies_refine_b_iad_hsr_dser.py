"""Control flow of iad, hsr and dser, pinned with a scripted model and table verifiers."""

import pytest
import refine_b_world as w
from refine_b_world import World, boxed, events, solve


@pytest.fixture(autouse=True)
def fresh_tables():
    w.OUTCOME.clear()
    w.STEPS.clear()
    yield


def refine_to(mapping: dict[str, str]):
    """A refiner reply that depends on which solution it was asked to refine (its boxed answer)."""
    def reply(prompt: str) -> str:
        for marker, answer in mapping.items():
            if marker in prompt:
                return boxed(answer)
        return boxed(0)
    return reply


# -- iad -------------------------------------------------------------------------------------------------------

def test_iad_refines_the_best_with_score_feedback_and_contrast_and_stops_when_accepted():
    w.OUTCOME.update({"1": 0.2, "2": 0.5, "3": 0.7, "4": 0.95})
    world = World(drafts=[boxed(1), boxed(2)],
                  replies={"iad": lambda p: boxed(4) if "score 0.70 (0 =" in p else boxed(3)})
    result, ctx, _ = solve("iad", {"verifier": "test_outcome", "n": 2, "beam": 1, "pool_size": 2}, world)
    first, second = world.seen["iad"]
    # round 1 refines the best draft (2, score 0.5), shown its score, critique, and the other (worse) draft
    assert "Your previous solution:\nso \\boxed{2}" in first and "score 0.50 (0 =" in first
    assert "feedback on 2" in first and "highest-scored other solution so far (score 0.20)" in first
    # round 2 refines the child (3, score 0.7): the pool kept {3, 2} and dropped draft 1
    assert "Your previous solution:\nso \\boxed{3}" in second and "boxed{1}" not in second
    rounds = events(ctx, "round")
    assert [[c["answer"] for c in r["candidates"]] for r in rounds] == [["2", "1"], ["3", "2"], ["4", "3"]]
    assert rounds[-1]["decision"] == "stop: accepted"
    assert result.answer == "4" and result.info["rounds"] == 2


def test_iad_keeps_the_pool_when_children_score_lower_and_stops_at_the_round_limit():
    w.OUTCOME.update({"1": 0.6, "2": 0.5})
    world = World(drafts=[boxed(1), boxed(2)], replies={"iad": boxed(9)})  # 9 scores 0.1
    result, ctx, _ = solve("iad", {"verifier": "test_outcome", "n": 2, "beam": 2, "pool_size": 2, "rounds": 2,
                                   "contrastive": False}, world)
    assert world.count("iad") == 4 and not any("highest-scored other" in p for p in world.seen["iad"])
    assert [r["decision"] for r in events(ctx, "round")] == ["refine the best", "refine the best",
                                                            "stop: round limit"]
    assert result.answer == "1"


def test_iad_never_exceeds_a_small_budget_and_returns_its_best_so_far():
    w.OUTCOME.update({"1": 0.3, "2": 0.4, "3": 0.8})
    world = World(drafts=[boxed(1, 10), boxed(2, 10)], replies={"iad": boxed(3, 30)})
    result, ctx, error = solve("iad", {"verifier": "test_outcome", "n": 2, "beam": 1, "max_tokens": 40}, world,
                               budget=72)
    assert ctx.cost.completion_tokens <= 72
    assert error is None and result.info["budget_exhausted"]
    assert result.answer == "3"  # the round-1 child was scored; round 2 ran out


# -- hsr -------------------------------------------------------------------------------------------------------

def test_hsr_repairs_each_weak_anchor_in_turn_with_its_peers():
    w.OUTCOME.update({"1": 0.9, "2": 0.3, "3": 0.2, "4": 0.8, "5": 0.1})
    world = World(drafts=[boxed(1), boxed(2), boxed(3)],
                  replies={"repair": refine_to({"be repaired (verifier score 0.30": "4",
                                                "be repaired (verifier score 0.20": "5"})})
    result, ctx, _ = solve("hsr", {"verifier": "test_outcome", "rounds": 1}, world)
    first, second = world.seen["repair"]  # candidate 0 (0.9) is good enough: never an anchor
    assert "0.30, 0 = surely wrong, 1 = surely right):\nso \\boxed{2}" in first
    assert "Peer 1 (score 0.90):\nso \\boxed{1}" in first and "Peer 2 (score 0.20):\nso \\boxed{3}" in first
    # in turn: anchor 2's peers include anchor 1's repair (4, 0.8), not the original 2
    assert "Peer 2 (score 0.80):\nso \\boxed{4}" in second and "boxed{2}" not in second
    [_, round1] = events(ctx, "round")
    assert [r["kept"] for r in round1["repairs"]] == ["repair", "anchor"]  # 5 scores 0.1 < 0.2: discarded
    assert [c["answer"] for c in round1["candidates"]] == ["1", "4", "3"]
    assert result.answer == "1"  # weighted vote: 0.9 vs 0.8 vs 0.2


def test_hsr_stops_once_every_candidate_passes_the_quality_threshold():
    w.OUTCOME.update({"1": 0.9, "2": 0.3, "4": 0.8})
    world = World(drafts=[boxed(1), boxed(2)], replies={"repair": boxed(4)})
    result, ctx, _ = solve("hsr", {"verifier": "test_outcome", "n": 2, "rounds": 5}, world)
    assert world.count("repair") == 1
    assert events(ctx, "round")[-1]["decision"] == "stop: all above quality threshold"
    assert result.answer == "1"
    result, _, _ = solve("hsr", {"verifier": "test_outcome", "n": 2, "final": "best"}, world)
    assert result.answer == "1"


def test_hsr_never_exceeds_a_small_budget_and_returns_its_best_so_far():
    w.OUTCOME.update({"1": 0.3, "2": 0.2, "4": 0.9})
    world = World(drafts=[boxed(1, 10), boxed(2, 10)], replies={"repair": boxed(4, 30)})
    result, ctx, error = solve("hsr", {"verifier": "test_outcome", "n": 2, "max_tokens": 40}, world, budget=64)
    assert ctx.cost.completion_tokens <= 64
    assert error is None and result.info["budget_exhausted"] and result.answer == "4"


# -- dser ------------------------------------------------------------------------------------------------------

def test_dser_chains_verify_then_refine_every_iteration_and_vote_at_the_end():
    w.OUTCOME.update({"1": 0.9})
    world = World(drafts=[boxed(1), boxed(2), boxed(3)],
                  replies={"refine": refine_to({"Previous solution:\nso \\boxed{1}": "1",
                                                "Previous solution:\nso \\boxed{2}": "1",
                                                "Previous solution:\nso \\boxed{3}": "3"})})
    result, ctx, _ = solve("dser", {"verifier": "test_outcome", "chains": 3, "iterations": 2}, world)
    assert world.count("verify") == 6 and world.count("refine") == 6  # always step, even when verified
    assert all("A verifier rated this solution" in p for p in world.seen["refine"])
    rounds = events(ctx, "round")
    assert [[c["answer"] for c in r["candidates"]] for r in rounds] == [["1", "2", "3"], ["1", "1", "3"],
                                                                      ["1", "1", "3"]]
    assert rounds[1]["verified"] == [0.9, 0.1, 0.1]
    assert result.answer == "1" and result.info["agreement"] == pytest.approx(2 / 3)


def test_dser_can_freeze_verified_chains():
    w.OUTCOME.update({"1": 0.9})
    world = World(drafts=[boxed(1), boxed(2)], replies={"refine": boxed(1)})
    result, ctx, _ = solve("dser", {"verifier": "test_outcome", "chains": 2, "iterations": 3,
                                    "stop_when_verified": True}, world)
    assert world.count("refine") == 1  # chain 0 frozen at once, chain 1 after its refinement verifies
    assert events(ctx, "round")[-1]["decision"] == "stop: all chains verified"
    assert result.answer == "1"


def test_dser_never_exceeds_a_small_budget_and_votes_over_the_latest_states():
    world = World(drafts=[boxed(1, 10), boxed(2, 10), boxed(2, 10)], replies={"refine": boxed(1, 25)})
    result, ctx, error = solve("dser", {"verifier": "test_outcome", "chains": 3, "max_tokens": 30}, world,
                               budget=66)
    assert ctx.cost.completion_tokens <= 66
    assert error is None and result.info["budget_exhausted"]
    assert result.answer == "2"  # at most one chain moved before the budget ran out
