"""Control flow of self_refine, sequential_refine, pdr, try_again, tick and iot, pinned with scripted models."""

from __future__ import annotations

import asyncio
import math

import pytest

from redraft.models.base import TokenLogprob
from redraft.models.scripted import ScriptedModel
from redraft.runner import solve_one
from redraft.strategies import StrategyError, make_strategy
from redraft.strategies.iot import AIOT_STOP_INSTRUCTION
from redraft.strategies.moves import parse_verdict
from redraft.strategies.pdr import cut_to, extract_workspace
from redraft.strategies.tick import FALLBACK_QUESTION, parse_checklist, parse_verdicts
from redraft.strategies.try_again import UNARY_FEEDBACK
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.voting import mean_token_entropy, vote_by


def solve(name, options, model, budget=None, oracle=False):
    task = ArithmeticTask(count=1)
    problem = task.problems()[0]
    strategy = make_strategy(name, options)
    return asyncio.run(solve_one(strategy, task, problem, {"solver": model}, budget_tokens=budget,
                                 uses_oracle=oracle))


def key() -> str:
    task = ArithmeticTask(count=1)
    return task.reference(task.problems()[0])


def prompt_of(call) -> str:
    return call.messages[-1]["content"]


def events(ctx, kind):
    return [e for e in ctx.trace if e["type"] == kind]


def kind_of(messages) -> str:
    """Which move a prompt belongs to, from its wording."""
    text = messages[-1]["content"]
    if len(messages) > 1 and messages[-2]["role"] == "assistant":
        return "retry"
    for marker, kind in (("Verdict: CORRECT", "critique"), ("Feedback on the previous solution", "refine"),
                         ("Rating: N", "rate"), ("write a checklist", "checklist"), ("Checklist:", "tick"),
                         ("Inner Dialogue Agent", "ida"), ("Guidance:", "llma"), ("attempted solutions", "distill"),
                         ("Notes from earlier attempts", "workspace")):
        if marker in text:
            return kind
    return "draft"


# -- self_refine --------------------------------------------------------------------------------------------

def test_self_refine_stops_when_the_self_critique_is_satisfied():
    def responder(messages, params, index):
        kind = kind_of(messages)
        text = messages[-1]["content"]
        if kind == "draft":
            return "First try. \\boxed{5}"
        if kind == "critique":
            return "Verdict: CORRECT" if "\\boxed{7}" in text else "Step 2 adds wrong. Verdict: INCORRECT"
        assert kind == "refine", text
        return "Fixed. \\boxed{7}"

    model = ScriptedModel(responder=responder)
    result, ctx, error = solve("self_refine", {"rounds": 3}, model)
    assert error is None and result.answer == "7"
    assert [kind_of(c.messages) for c in model.calls] == ["draft", "critique", "refine", "critique"]
    refine_prompt = prompt_of(model.calls[2])
    assert "Step 2 adds wrong" in refine_prompt and "First try" in refine_prompt
    rounds = events(ctx, "round")
    assert [r["decision"] for r in rounds] == ["refine", "stop: satisfied"]
    assert [r["answer"] for r in rounds] == ["5", "7"]
    assert events(ctx, "final")[0]["answer"] == "7"


def test_self_refine_runs_k_rounds_and_skips_feedback_on_the_last_revision():
    answers = iter(["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"])

    def responder(messages, params, index):
        kind = kind_of(messages)
        return "Verdict: INCORRECT" if kind == "critique" else next(answers)

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("self_refine", {"rounds": 2}, model)
    assert [kind_of(c.messages) for c in model.calls] == ["draft", "critique", "refine", "critique", "refine"]
    assert result.answer == "3"
    assert [r["round"] for r in events(ctx, "round")] == [0, 1, 2]


def test_self_refine_with_a_named_verifier_feeds_its_text_and_accepts_at_threshold():
    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "rate":
            good = "\\boxed{9}" in messages[-1]["content"]
            return "Looks right. Rating: 9" if good else "The subtraction is off. Rating: 3"
        return "\\boxed{9}" if kind == "refine" else "\\boxed{4}"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("self_refine", {"verifier": "rating", "accept_threshold": 0.8}, model)
    assert result.answer == "9"
    assert "The subtraction is off" in prompt_of(model.calls[2])
    assert [r["scores"][0] for r in events(ctx, "round")] == [pytest.approx(2 / 9), pytest.approx(8 / 9)]


def test_self_refine_keeps_the_answer_when_a_revision_has_none():
    def responder(messages, params, index):
        kind = kind_of(messages)
        return {"draft": "\\boxed{4}", "critique": "Verdict: INCORRECT", "refine": "I am not sure."}[kind]

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("self_refine", {"rounds": 3}, model)
    assert result.answer == "4"
    assert len(model.calls) == 3
    assert events(ctx, "round")[-1]["decision"] == "stop: revision gave no answer"


def test_self_refine_select_best_returns_the_best_scored():
    answers = iter(["\\boxed{1}", "\\boxed{2}"])

    def responder(messages, params, index):
        if kind_of(messages) == "rate":
            return "Rating: 7" if "\\boxed{1}" in messages[-1]["content"] else "Rating: 2"
        return next(answers)

    result, _, _ = solve("self_refine", {"rounds": 1, "verifier": "rating", "select": "best"},
                         ScriptedModel(responder=responder))
    assert result.answer == "1"


def test_self_refine_returns_the_draft_when_the_budget_stops_the_refiner():
    def responder(messages, params, index):
        kind = kind_of(messages)
        return {"draft": "a b c d e f g h i \\boxed{5}", "critique": "1 2 3 4 5 6 7 8 Verdict: INCORRECT"}.get(
            kind, "\\boxed{6}")

    result, ctx, error = solve("self_refine", {}, ScriptedModel(responder=responder), budget=20)
    assert error is None and result.answer == "5"
    assert ctx.cost.completion_tokens <= 20
    assert events(ctx, "budget_exhausted")


# -- pdr / sequential_refine ----------------------------------------------------------------------------------

def test_pdr_distills_p_drafts_into_a_bounded_workspace_that_reaches_the_refiner():
    long_summary = "summary " * 500

    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "draft":
            return ["A \\boxed{3}", "B \\boxed{4}", "C \\boxed{3}"][index]
        if kind == "distill":
            return long_summary
        assert kind == "workspace"
        return "final \\boxed{3}"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("pdr", {"p": 3, "rounds": 1, "workspace_chars": 120}, model)
    assert result.answer == "3"
    assert [(kind_of(c.messages), c.params.n) for c in model.calls] == [("draft", 3), ("distill", 1),
                                                                         ("workspace", 1)]
    distill_prompt = prompt_of(model.calls[1])
    assert all(f"{letter} \\boxed" in distill_prompt for letter in "ABC")
    assert model.calls[1].params.max_tokens == 40  # workspace_chars // 3
    rounds = events(ctx, "round")
    workspace = rounds[1]["workspace"]
    assert len(workspace) <= 120 and workspace.startswith("summary")
    assert workspace in prompt_of(model.calls[2])
    assert long_summary.strip() not in prompt_of(model.calls[2])
    assert rounds[0]["answer"] == "3" and rounds[0]["agreement"] == pytest.approx(2 / 3)
    assert [r["decision"] for r in rounds] == ["distill", "final"]


def test_pdr_schedule_p_drafts_each_round_then_final_p():
    model = ScriptedModel(responder=lambda m, p, i: "notes" if kind_of(m) == "distill" else "\\boxed{2}")
    solve("pdr", {"p": 2, "rounds": 2, "final_p": 1}, model)
    generations = [c.params.n for c in model.calls if kind_of(c.messages) in ("draft", "workspace")]
    assert generations == [2, 2, 1]


def test_sequential_refine_keeps_the_tail_of_the_previous_solution_within_the_bound():
    draft = "padding " * 50 + "so the answer is \\boxed{8}"
    model = ScriptedModel(responder=lambda m, p, i: draft if kind_of(m) == "draft" else "better \\boxed{8}")
    result, ctx, _ = solve("sequential_refine", {"rounds": 2, "workspace_chars": 60}, model)
    assert [(kind_of(c.messages), c.params.n) for c in model.calls] == [("draft", 1), ("workspace", 1),
                                                                         ("workspace", 1)]
    workspace = events(ctx, "round")[1]["workspace"]
    assert len(workspace) <= 60 and workspace.endswith("\\boxed{8}")
    assert workspace in prompt_of(model.calls[1])
    assert result.answer == "8"


def test_workspace_cuts_are_exact():
    assert cut_to("abcdef", 10) == "abcdef"
    for limit in (1, 3, 5, 8, 20):
        assert len(cut_to("x" * 50, limit)) <= limit
        assert len(cut_to("x" * 50, limit, keep="tail")) <= limit

    class C:
        def __init__(self, text):
            self.text = text

    for limit in (5, 40, 200):
        assert len(extract_workspace([C("a" * 300), C("b" * 300), C("c" * 300)], limit)) <= limit


def test_pdr_budget_returns_the_last_finished_round():
    model = ScriptedModel(responder=lambda m, p, i: "w " * 30 if kind_of(m) == "distill" else "x y \\boxed{6}")
    result, ctx, error = solve("pdr", {"p": 4, "rounds": 3}, model, budget=14)
    assert error is None and result.answer == "6"
    assert ctx.cost.completion_tokens <= 14 and events(ctx, "budget_exhausted")


def test_pdr_rejects_bad_options():
    with pytest.raises(StrategyError, match="vote=verifier needs"):
        solve("pdr", {"vote": "verifier"}, ScriptedModel(responder=lambda m, p, i: "\\boxed{1}"))
    with pytest.raises(StrategyError, match="distill='magic': choose one of"):
        solve("pdr", {"distill": "magic"}, ScriptedModel(responder=lambda m, p, i: "\\boxed{1}"))


def test_pdr_inverse_entropy_vote_samples_with_logprobs():
    model = ScriptedModel(responder=lambda m, p, i: "notes" if kind_of(m) == "distill" else "\\boxed{2}")
    _, ctx, _ = solve("pdr", {"p": 2, "rounds": 1, "vote": "inverse_entropy"}, model)
    assert all(c.params.logprobs for c in model.calls if kind_of(c.messages) != "distill")
    assert events(ctx, "round")[0]["entropies"] == [0.0, 0.0]


# -- try_again -------------------------------------------------------------------------------------------------

def test_try_again_sends_only_unary_feedback_after_a_rejection():
    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "rate":
            return "Rating: 10" if "\\boxed{12}" in messages[-1]["content"] else "Bad. Rating: 1"
        return "\\boxed{12}" if kind == "retry" else "\\boxed{11}"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("try_again", {}, model)
    assert result.answer == "12"
    retry = [c for c in model.calls if kind_of(c.messages) == "retry"]
    assert len(retry) == 1
    conversation = retry[0].messages
    assert conversation[-2] == {"role": "assistant", "content": "\\boxed{11}"}
    assert conversation[-1] == {"role": "user", "content": UNARY_FEEDBACK}
    assert "Bad." not in str(conversation)  # the verifier's critique never reaches the solver
    assert [r["decision"] for r in events(ctx, "round")] == ["try again", "stop: accepted"]


def test_try_again_raises_temperature_per_round_up_to_the_cap():
    def responder(messages, params, index):
        return "Rating: 1" if kind_of(messages) == "rate" else "\\boxed{3}"

    model = ScriptedModel(responder=responder)
    solve("try_again", {"rounds": 3, "temperature_step": 0.4, "temperature_max": 1.0}, model)
    temperatures = [c.params.temperature for c in model.calls if kind_of(c.messages) in ("draft", "retry")]
    assert temperatures == pytest.approx([0.0, 0.4, 0.8, 1.0])


def test_try_again_forbids_and_resamples_tried_answers():
    retries = iter(["\\boxed{5}", "\\boxed{5}", "\\boxed{9}"])

    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "rate":
            return "Rating: 10" if "\\boxed{9}" in messages[-1]["content"] else "Rating: 1"
        return next(retries) if kind == "retry" else "\\boxed{5}"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("try_again", {"forbid_tried": True, "max_resamples": 3}, model)
    assert result.answer == "9"
    retry_calls = [c for c in model.calls if kind_of(c.messages) == "retry"]
    assert len(retry_calls) == 3
    assert "Do not answer 5" in retry_calls[0].messages[-1]["content"]
    assert retry_calls[1].params.temperature >= 0.7  # a resample can differ
    assert len(events(ctx, "reject_repeat")) == 2


def test_try_again_with_the_oracle_is_labelled_and_needs_an_oracle_run():
    answer = key()
    replies = iter(["\\boxed{0}", f"\\boxed{{{answer}}}"])
    model = ScriptedModel(responder=lambda m, p, i: next(replies))
    result, ctx, _ = solve("try_again", {"verifier": "oracle"}, model, oracle=True)
    assert result.answer == answer and result.info["oracle"] is True
    assert len(model.calls) == 2  # the oracle costs no model call
    assert all(r["oracle"] for r in events(ctx, "round")) and events(ctx, "final")[0]["oracle"]
    assert make_strategy("try_again", {"verifier": "oracle"}).verifier_names() == ["oracle"]
    with pytest.raises(StrategyError, match="needs an oracle run"):
        solve("try_again", {"verifier": "oracle"}, ScriptedModel(responder=lambda m, p, i: "\\boxed{0}"))


# -- tick ---------------------------------------------------------------------------------------------------------

CHECKLIST_REPLY = "1. Does it add the 3 new apples?\n2. Is the final answer a whole number?\nSome preamble line."


def test_tick_best_of_n_selects_by_checklist_score():
    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "draft":
            return ["one \\boxed{1}", "two \\boxed{2}", "three \\boxed{3}"][index]
        if kind == "checklist":
            return CHECKLIST_REPLY
        text = messages[-1]["content"]
        return "1. YES\n2. YES" if "two \\boxed{2}" in text else "1. NO\n2. YES"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("tick", {"n": 3, "rounds": 0}, model)
    assert result.answer == "2"
    items = events(ctx, "checklist")[0]["items"]
    assert items == ["Does it add the 3 new apples?", "Is the final answer a whole number?"]
    round0 = events(ctx, "round")[0]
    assert round0["scores"] == [0.5, 1.0, 0.5] and round0["answer"] == "2"


def test_tick_refines_with_the_unmet_items_until_all_are_met():
    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "checklist":
            return CHECKLIST_REPLY
        if kind == "tick":
            return "1. YES\n2. YES" if "fixed" in messages[-1]["content"] else "1. NO\n2. YES"
        return "fixed \\boxed{4}" if kind == "refine" else "draft \\boxed{3}"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("tick", {"n": 1, "rounds": 3}, model)
    assert result.answer == "4"
    assert [kind_of(c.messages) for c in model.calls] == ["draft", "checklist", "tick", "refine", "tick"]
    refine_prompt = prompt_of(model.calls[3])
    assert "Does it add the 3 new apples?" in refine_prompt
    assert "whole number" not in refine_prompt  # a met item is not fed back
    assert events(ctx, "stop")[0]["reason"] == "every checklist item met"


def test_tick_parsers():
    assert parse_checklist("Intro\n1) Is x 3?\n- Is y even?\n2. Not a question", 5) == ["Is x 3?", "Is y even?"]
    assert parse_checklist("1. Is x 3?\n2. Is y 4?", 1) == ["Is x 3?"]
    assert parse_verdicts("1. YES\n2. no\n**3. Yes**\n1. NO", 4) == [False, False, True, None]


def test_tick_falls_back_to_one_question_when_the_checklist_is_empty():
    def responder(messages, params, index):
        kind = kind_of(messages)
        return {"checklist": "I cannot.", "tick": "1. YES"}.get(kind, "\\boxed{1}")

    _, ctx, _ = solve("tick", {"n": 1, "rounds": 1}, ScriptedModel(responder=responder))
    assert events(ctx, "checklist")[0]["items"] == [FALLBACK_QUESTION]


# -- iot -------------------------------------------------------------------------------------------------------------

def test_aiot_stops_when_the_model_says_so():
    stops = iter(["NO", "YES"])

    def responder(messages, params, index):
        kind = kind_of(messages)
        if kind == "ida":
            return "Re-check the multiplication."
        if kind == "llma":
            return f"redo \\boxed{{7}}\nIteration stop: {next(stops)}"
        return "\\boxed{6}"

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("iot", {"mode": "aiot", "rounds": 5}, model)
    assert result.answer == "7"
    assert [kind_of(c.messages) for c in model.calls] == ["draft", "ida", "llma", "ida", "llma"]
    llma_prompt = prompt_of(model.calls[2])
    assert "Re-check the multiplication." in llma_prompt and "\\boxed{6}" in llma_prompt
    assert llma_prompt.endswith(AIOT_STOP_INSTRUCTION)
    assert [r["decision"] for r in events(ctx, "round")] == ["draft", "iterate", "stop: model says done"]


def test_giot_runs_a_fixed_number_of_rounds_and_ignores_stop_lines():
    def responder(messages, params, index):
        kind = kind_of(messages)
        return {"ida": "Think again.", "llma": "\\boxed{7}\nIteration stop: YES"}.get(kind, "\\boxed{6}")

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve("iot", {"mode": "giot", "rounds": 3}, model)
    assert result.answer == "7"
    llma = [c for c in model.calls if kind_of(c.messages) == "llma"]
    assert len(llma) == 3 and all(AIOT_STOP_INSTRUCTION not in prompt_of(c) for c in llma)


# -- every strategy: the budget is never exceeded, and a budget stop is not a crash -----------------------------------

def generic_responder(messages, params, index):
    kind = kind_of(messages)
    replies = {
        "critique": "step two is wrong Verdict: INCORRECT",
        "rate": "not sure Rating: 4",
        "checklist": "1. Is the sum right?\n2. Is it a number?",
        "tick": "1. NO\n2. YES",
        "ida": "check each step again carefully",
        "llma": "again 2 + 3 = 5 \\boxed{5}\nIteration stop: NO",
        "distill": "attempts say 4 and 5 they disagree",
    }
    return replies.get(kind, f"working step by step {index} + 1 gives \\boxed{{{4 + index % 2}}}")


CONFIGS = [
    ("self_refine", {}), ("self_refine", {"verifier": "rating", "select": "best"}),
    ("pdr", {"p": 3, "rounds": 2}), ("pdr", {"p": 2, "rounds": 2, "distill": "extract", "vote": "inverse_entropy"}),
    ("sequential_refine", {"rounds": 3}),
    ("try_again", {"temperature_step": 0.3, "forbid_tried": True}),
    ("tick", {"n": 3, "rounds": 2}), ("iot", {"mode": "aiot"}), ("iot", {"mode": "giot"}),
]


@pytest.mark.parametrize("name,options", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_budget_is_never_exceeded_and_best_so_far_is_returned(name, options):
    _, full, _ = solve(name, options, ScriptedModel(responder=generic_responder))
    needed = full.cost.completion_tokens
    first_draft = next(e for e in full.trace if e["type"] == "call")["completion_tokens"]
    for budget in sorted({1, first_draft, first_draft + 3, needed // 2, needed - 1}):
        if budget < 1:
            continue
        result, ctx, error = solve(name, options, ScriptedModel(responder=generic_responder), budget=budget)
        assert ctx.cost.completion_tokens <= budget, (budget, ctx.cost.completion_tokens)
        if budget >= first_draft:
            # the first drafts were paid for: the strategy answers with what it has, not an error
            assert error is None, (budget, error)
            assert result.answer is not None
            assert events(ctx, "final")


# -- voting variants and verdicts --------------------------------------------------------------------------------------

def test_vote_variants():
    answers = ["1", "2", "2"]
    assert vote_by("majority", answers).answer == "2"
    assert vote_by("verifier", answers, scores=[0.9, 0.2, 0.3]).answer == "1"
    assert vote_by("inverse_entropy", answers, entropies=[0.1, 1.0, 1.0]).answer == "1"
    with pytest.raises(ValueError, match="needs a score"):
        vote_by("verifier", answers)
    with pytest.raises(ValueError, match="unknown vote"):
        vote_by("plurality", answers)


def test_mean_token_entropy():
    even = TokenLogprob("a", math.log(0.5), (("a", math.log(0.5)), ("b", math.log(0.5))))
    sure = TokenLogprob("a", 0.0, (("a", 0.0),))
    assert mean_token_entropy([even, sure]) == pytest.approx(math.log(2) / 2)
    assert mean_token_entropy([TokenLogprob("a", -2.0)]) == pytest.approx(2.0)
    assert mean_token_entropy([]) == 0.0


def test_parse_verdict():
    assert parse_verdict("fine.\nVerdict: CORRECT") is True
    assert parse_verdict("Verdict: CORRECT ... no wait. Verdict: INCORRECT") is False
    assert parse_verdict("looks fine") is None
