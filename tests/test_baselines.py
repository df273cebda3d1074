"""Control flow of the baseline strategies, pinned with a scripted model."""

import asyncio

import pytest

from redraft.models.scripted import ScriptedModel
from redraft.runner import solve_one
from redraft.strategies import StrategyError, make_strategy
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.voting import majority_vote, weighted_vote


def solve(strategy, model, budget=None):
    task = ArithmeticTask(count=1)
    return asyncio.run(solve_one(strategy, task, task.problems()[0], {"solver": model}, budget_tokens=budget))


def test_cot_is_one_greedy_call():
    model = ScriptedModel(replies=["2 + 2 = 4, so \\boxed{4}"])
    result, ctx, error = solve(make_strategy("cot"), model)
    assert result.answer == "4" and error is None
    assert len(model.calls) == 1
    assert model.calls[0].params.temperature == 0 and model.calls[0].params.n == 1


def test_self_consistency_takes_the_majority():
    answers = ["\\boxed{7}", "\\boxed{5}", "\\boxed{7}", "no idea", "\\boxed{5}", "\\boxed{7}"]
    model = ScriptedModel(responder=lambda m, p, i: answers[i])
    result, ctx, _ = solve(make_strategy("self_consistency", {"n": 6}), model)
    assert result.answer == "7"
    vote = [e for e in ctx.trace if e["type"] == "vote"][0]
    assert vote["tally"] == {"7": 3.0, "5": 2.0}
    assert model.calls[0].params.n == 6 and model.calls[0].params.temperature > 0


def test_ties_break_to_the_earliest_answer():
    assert majority_vote(["3", "9", "9", "3"]).answer == "3"
    assert majority_vote(["9", "3", "3", "9"]).answer == "9"
    assert majority_vote([None, None]).answer is None
    assert weighted_vote(["1", "2"], [0.2, 0.9]).answer == "2"


def test_best_of_n_picks_the_highest_rating():
    def responder(messages, params, index):
        prompt = messages[-1]["content"]
        if "Rating:" in prompt:  # the judge
            return "Looks right. Rating: 9" if "\\boxed{12}" in prompt else "Wrong. Rating: 2"
        return ["\\boxed{10}", "\\boxed{12}", "\\boxed{11}"][index]

    model = ScriptedModel(responder=responder)
    result, ctx, _ = solve(make_strategy("best_of_n", {"n": 3}), model)
    assert result.answer == "12"
    judge_calls = [e for e in ctx.trace if e["type"] == "call" and e["role"] == "judge"]
    assert len(judge_calls) == 3
    assert ctx.cost.by_role["judge"].calls == 3


def test_budget_exhaustion_is_recorded_not_raised():
    model = ScriptedModel(responder=lambda m, p, i: " ".join(["x"] * 40))
    result, ctx, error = solve(make_strategy("best_of_n", {"n": 4, "max_tokens": 40}), model, budget=3)
    assert error is not None and "budget" in error
    assert ctx.cost.completion_tokens <= 3


def judged_samples(answers, judge_words=30):
    """Samples with these answers; the judge rates 9 only the 12s, then writes ``judge_words`` words."""
    def responder(messages, params, index):
        prompt = messages[-1]["content"]
        if "Rating:" in prompt:
            return ("Rating: 9 " if "\\boxed{12}" in prompt else "Rating: 2 ") + " ".join(["hmm"] * judge_words)
        return answers[index]
    return ScriptedModel(responder=responder)


def test_best_of_n_votes_when_the_budget_cannot_pay_for_any_score():
    # The samples spend the whole budget: the judge cannot run, so best-of-N becomes a majority vote
    # (it used to return no answer at all, which made best_of_n n=8 at 8 x max_tokens score 3%).
    model = judged_samples(["\\boxed{12}", "\\boxed{7}", "\\boxed{7}"])
    result, ctx, error = solve(make_strategy("best_of_n", {"n": 3, "verifier": "rating"}), model, budget=3)
    assert error is None and result.answer == "7"
    [select] = [e for e in ctx.trace if e["type"] == "select"]
    assert select["scores"] == [None, None, None] and "majority" in select["fallback"]
    assert any(e["type"] == "budget_exhausted" for e in ctx.trace)
    assert ctx.cost.completion_tokens <= 3


def test_best_of_n_ranks_unscored_samples_below_scored_ones():
    # The first judge call to run takes what the one-token samples left (and is cut to it); the
    # others find the budget spent.
    model = judged_samples(["\\boxed{7}", "\\boxed{12}", "\\boxed{7}"], judge_words=100)
    strategy = make_strategy("best_of_n", {"n": 3, "verifier": "rating"})
    result, ctx, error = solve(strategy, model, budget=45)
    [select] = [e for e in ctx.trace if e["type"] == "select"]
    scored = [i for i, v in enumerate(select["scores"]) if v is not None]
    assert error is None and 1 <= len(scored) < 3
    assert select["chosen"] in scored
    assert ctx.cost.completion_tokens <= 45


def test_unknown_strategy_and_option_are_clear_errors():
    with pytest.raises(StrategyError, match="unknown strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(StrategyError, match="has no option wrong"):
        make_strategy("cot", {"wrong": 1})
    with pytest.raises(StrategyError, match="not a valid int"):
        make_strategy("self_consistency", {"n": "many"})


@pytest.mark.parametrize(("name", "options", "message"), [
    ("dser", {"chains": 0}, "needs chains >= 1"),
    ("magicore", {"max_rounds": -1}, "max_rounds >= 0"),
    ("hsr", {"n": 1}, "needs n >= 2"),
    ("hsr", {"final": "best_guess"}, "final='best_guess': choose one of"),
    ("iad", {"beam": 0}, "beam, pool_size >= 1"),
    ("glore", {"refiners": "twice"}, "refiners='twice': choose one of"),
    ("iot", {"mode": "xiot"}, "mode='xiot': choose one of"),
    ("pdr", {"distill": "magic"}, "distill='magic': choose one of"),
    ("pdr", {"final_p": 0}, "final_p must be >= 1"),
    ("sequential_refine", {"workspace_chars": 0}, "workspace_chars must be >= 1"),
    ("self_refine", {"rounds": -1}, "rounds must be >= 0"),
    ("tick", {"select": "first"}, "select='first': choose one of"),
    ("try_again", {"max_resamples": -2}, "max_resamples must be >= 0"),
    ("self_debug", {"test_seconds": 0}, "test_seconds > 0"),
    ("pgs", {"max_examples": 0}, "max_examples must be >= 1"),
])
def test_bad_option_values_are_refused_when_the_strategy_is_made(name, options, message):
    # refused by make_strategy, so a run or an experiment stops before any model loads or run is stored
    with pytest.raises(StrategyError, match=f"strategy {name}: .*{message}"):
        make_strategy(name, {key: str(value) for key, value in options.items()})
    make_strategy(name)  # the defaults pass the same checks


def test_self_consistency_can_record_certainty_for_a_later_self_certainty_score():
    from redraft.verifiers.self_certainty import SelfCertaintyVerifier

    answers = ["so \\boxed{7}", "then \\boxed{5}", "thus \\boxed{7}"]
    model = ScriptedModel(responder=lambda m, p, i: answers[i])
    result, ctx, _ = solve(make_strategy("self_consistency", {"n": 3, "certainty": 4}), model)
    assert model.calls[0].params.logprobs and model.calls[0].params.top_logprobs == 4
    assert len([e for e in ctx.trace if e["type"] == "certainty"]) == 3
    calls_before = len(model.calls)
    score = asyncio.run(SelfCertaintyVerifier(source="recorded").score(ctx, "then \\boxed{5}"))
    assert 0.0 <= score.value <= 1.0 and len(model.calls) == calls_before  # read from the trace, no call
    with pytest.raises(StrategyError, match="certainty must be 0"):
        make_strategy("self_consistency", {"certainty": 1})


def test_best_of_n_with_self_certainty_scores_from_its_own_sampling():
    model = ScriptedModel(responder=lambda m, p, i: ["a b \\boxed{3}", "c \\boxed{4}"][i])
    result, ctx, _ = solve(make_strategy("best_of_n", {"n": 2, "verifier": "self_certainty"}), model)
    assert len(model.calls) == 1 and model.calls[0].params.top_logprobs == 10  # no replay calls
    assert result.answer in ("3", "4")
    plain = ScriptedModel(responder=lambda m, p, i: "\\boxed{3}")
    solve(make_strategy("best_of_n", {"n": 2, "verifier": "judge"}), plain)
    assert not plain.calls[0].params.logprobs
