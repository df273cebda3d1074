"""Verifiers on scripted models: parsing, score ranges, first errors, rollouts, combinators, specs, oracle."""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field

import pytest

from redraft.context import SolveContext
from redraft.models.base import Completion, GenerationParams, Message, TokenLogprob
from redraft.models.scripted import ScriptedModel
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.tasks.base import TaskView
from redraft.verifiers import (
    VERIFIERS,
    Score,
    SpecError,
    Verifier,
    make_verifier_from_spec,
    register_verifier,
    spec_uses_oracle,
)
from redraft.verifiers.combinators import GateVerifier, WeightedVerifier
from redraft.verifiers.judge import JudgeVerifier, find_verdict
from redraft.verifiers.oracle import OracleUnavailable
from redraft.verifiers.rollout import RolloutVerifier, evaluated_positions, first_drop
from redraft.verifiers.self_certainty import (
    NoLogprobs,
    SelfCertaintyVerifier,
    certainty_of,
    record_certainty,
)
from redraft.verifiers.spec import parse_spec
from redraft.verifiers.step_judge import StepJudgeVerifier, parse_step_verdicts
from redraft.verifiers.token_probs import binary_probability

SOLUTION = "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 15\nStep 3: so the answer is \\boxed{15}"


def make_ctx(model, oracle=None) -> SolveContext:
    task = ArithmeticTask(count=1)
    return SolveContext(problem=task.problems()[0], task=TaskView(task), models={"solver": model}, oracle=oracle)


def run(coro):
    return asyncio.run(coro)


@dataclass
class LogprobModel:
    """Replies with fixed texts, tokenised by words, and a given top-logprob list at chosen words."""

    reply: str
    tops: dict[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)  # word -> alternatives
    name: str = "logprob"
    identity: str = "logprob"
    calls: list[GenerationParams] = field(default_factory=list)

    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]:
        self.calls.append(params)
        tokens = re.findall(r"\s*\S+", self.reply)
        tops = [self.tops.get(t.strip(), ((t, -0.2), ("other", -3.0))) for t in tokens]
        logprobs = [TokenLogprob(t, dict(top).get(t, -0.2), top) for t, top in zip(tokens, tops, strict=True)]
        return [Completion(self.reply, "stop", 5, len(tokens), 0.0, logprobs if params.logprobs else None)
                for _ in range(params.n)]

    async def close(self) -> None:
        pass


# -- judge ----------------------------------------------------------------------------------------------
def test_judge_parses_verdict_without_logprobs() -> None:
    model = ScriptedModel(replies=["Step 2 is wrong: 7*2 is 14.\nVerdict: No"])
    score = run(JudgeVerifier(logprobs=False).score(make_ctx(model), SOLUTION))
    assert score.value == 0.0
    assert score.feedback == "Step 2 is wrong: 7*2 is 14."
    assert model.calls[0].params.logprobs is False


def test_judge_reads_p_yes_from_top_logprobs() -> None:
    reply = "Looks fine.\nVerdict: Yes"
    model = LogprobModel(reply, {"Yes": ((" Yes", math.log(0.6)), (" No", math.log(0.2)), (" Maybe", math.log(0.2)))})
    score = run(JudgeVerifier().score(make_ctx(model), SOLUTION))
    assert score.value == pytest.approx(0.75)  # 0.6 / (0.6 + 0.2)
    assert model.calls[0].logprobs and model.calls[0].top_logprobs == 10


def test_judge_without_critique_answers_in_one_word() -> None:
    model = LogprobModel("Yes", {"Yes": (("Yes", math.log(0.3)), ("No", math.log(0.6)))})
    score = run(make_verifier_from_spec("judge:critique=false").score(make_ctx(model), SOLUTION))
    assert score.value == pytest.approx(1 / 3) and score.feedback is None  # P(Yes), although it said Yes
    assert model.calls[0].max_tokens <= 4
    rambling = ScriptedModel(replies=["The solution is right."])  # no leading Yes/No: no evidence
    assert run(JudgeVerifier(critique=False, logprobs=False).score(make_ctx(rambling), SOLUTION)).value == 0.5
    assert "one word" in rambling.calls[0].messages[0]["content"]
    plain = ScriptedModel(replies=["**No**, step 2 is wrong."])
    assert run(JudgeVerifier(critique=False, logprobs=False).score(make_ctx(plain), SOLUTION)).value == 0.0


def test_judge_without_verdict_is_neutral_and_role_is_configurable() -> None:
    model = ScriptedModel(replies=["I am not sure."])
    ctx = make_ctx(model)
    score = run(JudgeVerifier(role="critic", logprobs=False).score(ctx, SOLUTION))
    assert score.value == 0.5
    assert "critic" in ctx.cost.by_role and "judge" not in ctx.cost.by_role


def test_find_verdict_takes_the_last_one() -> None:
    text = "Verdict: Yes ... on reflection, **Verdict:** No"
    assert find_verdict(text) == (False, text.rindex("No"))
    assert find_verdict("no verdict here") is None


def test_binary_probability_counts_split_words_and_ignores_duplicates() -> None:
    alternatives = [(" in", math.log(0.3)), (" in", math.log(0.3)), (" correct", math.log(0.6)), ("x", -1.0)]
    assert binary_probability(alternatives, ("correct",), ("incorrect",)) == pytest.approx(2 / 3)
    assert binary_probability([("maybe", -0.1)], ("yes",), ("no",)) is None


# -- step judge -------------------------------------------------------------------------------------------
def test_step_judge_first_error_and_targeted_critique() -> None:
    reply = "Step 1: correct\nStep 2: incorrect\nStep 3: incorrect\nCritique: 7 * 2 is 14, not 15."
    model = ScriptedModel(replies=[reply])
    score = run(StepJudgeVerifier(split="lines", logprobs=False).score(make_ctx(model), SOLUTION))
    assert score.steps == (1.0, 0.0, 0.0)
    assert score.first_error == 1
    assert score.value == 0.0  # min
    assert "Step 2 looks wrong" in score.feedback and "7 * 2 = 15" in score.feedback
    assert "14, not 15" in score.feedback
    assert "[Step 2] Step 2: 7 * 2 = 15" in model.calls[0].messages[0]["content"]


def test_step_judge_skipped_steps_are_neutral_and_left_out_of_the_aggregate() -> None:
    model = ScriptedModel(replies=["Step 1: correct\nStep 3: incorrect\nCritique: none"])
    score = run(StepJudgeVerifier(split="lines", aggregate="mean", logprobs=False).score(make_ctx(model), SOLUTION))
    assert score.steps == (1.0, 0.5, 0.0)
    assert score.first_error == 2 and "Step 3 looks wrong" in score.feedback
    assert score.value == pytest.approx(0.5)  # mean of the judged steps 1 and 3
    unjudged = run(StepJudgeVerifier(split="lines", logprobs=False).score(make_ctx(ScriptedModel(replies=["?"])),
                                                                            SOLUTION))
    assert unjudged.value == 0.5 and unjudged.steps == (0.5, 0.5, 0.5)


def test_step_judge_soft_step_values_from_logprobs() -> None:
    reply = "Step 1: correct\nStep 2: wrong\nCritique: bad product"
    tops = {"correct": ((" correct", math.log(0.9)), (" incorrect", math.log(0.1))),
            "wrong": ((" wrong", math.log(0.7)), (" correct", math.log(0.3)))}
    score = run(StepJudgeVerifier(split="paragraphs").score(make_ctx(LogprobModel(reply, tops)), "a\n\nb"))
    assert score.steps == pytest.approx((0.9, 0.3))
    assert score.first_error == 1


def test_parse_step_verdicts_ignores_out_of_range_and_repeats() -> None:
    verdicts = parse_step_verdicts("Step 1: correct. Step 1: incorrect. Step 9: wrong", 2)
    assert list(verdicts) == [0] and verdicts[0][0] is True


def test_step_judge_rejects_unknown_split() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        StepJudgeVerifier(split="sentences")


# -- self-certainty ----------------------------------------------------------------------------------------
def test_certainty_numbers_match_the_definitions() -> None:
    flat = TokenLogprob("a", math.log(0.5), (("a", math.log(0.5)), ("b", math.log(0.5))))
    peaked = TokenLogprob("a", math.log(0.9), (("a", math.log(0.9)), ("b", math.log(0.1))))
    c = certainty_of([flat, peaked])
    assert c.mean_logprob == pytest.approx((math.log(0.5) + math.log(0.9)) / 2)
    entropy_peaked = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert c.mean_entropy == pytest.approx((math.log(2) + entropy_peaked) / 2)
    kl_peaked = -math.log(2) - (math.log(0.9) + math.log(0.1)) / 2  # KL(U || p), 0 for the flat position
    assert c.self_certainty == pytest.approx(kl_peaked / 2)
    assert c.top_k == 2


def completion_with(text: str, p: float) -> Completion:
    token = TokenLogprob(text, math.log(p), ((text, math.log(p)), ("z", math.log(1 - p))))
    return Completion(text, "stop", 1, 1, 0.0, [token])


def test_self_certainty_reads_recorded_numbers_without_calls() -> None:
    model = ScriptedModel()  # no replies: any call would fail the test
    ctx = make_ctx(model)
    record_certainty(ctx, [completion_with("sure", 0.95), completion_with("unsure", 0.55)])
    verifiers = {signal: SelfCertaintyVerifier(signal=signal) for signal in ("self_certainty", "logprob", "entropy")}
    for verifier in verifiers.values():
        sure, unsure = run(verifier.score(ctx, "sure")), run(verifier.score(ctx, "unsure"))
        assert 0.0 <= unsure.value < sure.value <= 1.0
        assert "self-certainty" in sure.feedback
    assert model.calls == [] and ctx.cost.calls == 0


def test_self_certainty_recorded_only_refuses_to_spend_calls() -> None:
    with pytest.raises(NoLogprobs, match="record_certainty"):
        run(SelfCertaintyVerifier(source="recorded").score(make_ctx(ScriptedModel()), "text"))


def test_self_certainty_replays_the_producing_sample_with_its_seed() -> None:
    model = LogprobModel("the answer is 7")
    ctx = make_ctx(model)
    run(ctx.generate([{"role": "user", "content": "q"}], n=2, temperature=0.7, max_tokens=50, label="sample"))
    score = run(SelfCertaintyVerifier(top_logprobs=5).score(ctx, "the answer is 7"))
    original, replay = model.calls
    assert replay.logprobs and replay.top_logprobs == 5 and replay.n == 1
    assert replay.seed == original.seed and replay.temperature == 0.7  # sample 0 of the call
    assert 0.0 < score.value < 1.0
    assert ctx.cost.by_role["certainty"].calls == 1
    run(SelfCertaintyVerifier().score(ctx, "the answer is 7"))  # now recorded: no further call
    assert len(model.calls) == 2


def test_self_certainty_replay_mismatch_is_neutral_and_traced() -> None:
    replies = iter(["first text", "something else"])
    model = ScriptedModel(responder=lambda m, p, i: next(replies))
    ctx = make_ctx(model)
    run(ctx.generate([{"role": "user", "content": "q"}], temperature=0.7, label="sample"))
    score = run(SelfCertaintyVerifier().score(ctx, "first text"))
    assert score.value == 0.5
    assert any(e["type"] == "certainty_replay_mismatch" for e in ctx.trace)


def test_self_certainty_without_any_source_says_so() -> None:
    with pytest.raises(NoLogprobs, match="nothing to replay"):
        run(SelfCertaintyVerifier().score(make_ctx(ScriptedModel()), "never generated"))


# -- rollout -------------------------------------------------------------------------------------------------
GOOD = "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14\nStep 3: \\boxed{14}"
BAD = "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 15\nStep 3: \\boxed{15}"


def continuation_model() -> ScriptedModel:
    """Continues a prefix: after '= 15' every continuation answers 15, after '= 7' three of four reach 14,
    and a fresh sample (no prefix) answers 14."""

    def respond(messages: list[Message], params: GenerationParams, index: int) -> str:
        last = messages[-1]
        if last["role"] != "assistant":
            return "\\boxed{14}"
        if "= 15" in last["content"]:
            return "\\boxed{15}"
        return "\\boxed{14}" if index < 3 else "\\boxed{9}"

    return ScriptedModel(responder=respond)


def test_rollout_values_and_first_drop() -> None:
    model = continuation_model()
    ctx = make_ctx(model)
    run(ctx.generate(ctx.task.messages(ctx.problem), n=4, temperature=0.7, label="sample"))  # consensus 14
    verifier = RolloutVerifier(k=4, split="lines")
    bad = run(verifier.score(ctx, BAD))
    assert bad.steps == (0.75, 0.0, 0.0)
    assert bad.first_error == 1
    assert "consensus answer 14" in bad.feedback and "7 * 2 = 15" in bad.feedback
    good = run(verifier.score(ctx, GOOD))
    assert good.steps == (0.75, 0.75, 1.0) and good.first_error is None
    assert good.value > bad.value
    assert ctx.cost.by_role["rollout"].samples == 4 * 4  # two proper prefixes each, no consensus sampling
    assert all(m.messages[-1]["role"] == "assistant" for m in model.calls[1:])


def test_rollout_samples_its_own_consensus_when_the_trace_has_none() -> None:
    model = continuation_model()
    ctx = make_ctx(model)
    score = run(RolloutVerifier(k=4, split="lines", continue_as="prompt").score(ctx, BAD))
    assert score.steps[-1] == 0.0
    labels = [e["label"] for e in ctx.trace if e["type"] == "call"]
    assert labels[0] == "rollout_consensus"
    assert "Continue this solution" in model.calls[1].messages[-1]["content"]


def test_rollout_helpers() -> None:
    assert evaluated_positions(4, 6) == [0, 1, 2]
    assert evaluated_positions(11, 3) == [0, 4, 9]
    assert first_drop([0.9, 0.8, 0.2], baseline=1.0, threshold=0.5, min_drop=0.5) == 2
    assert first_drop([0.3, 0.25], baseline=0.4, threshold=0.5, min_drop=0.5) is None
    assert first_drop([1.0, 0.4], baseline=0.2, threshold=0.5, min_drop=0.5) == 1


# -- oracle ---------------------------------------------------------------------------------------------------
def test_oracle_refuses_without_the_key_and_scores_with_it() -> None:
    verifier = make_verifier_from_spec("oracle")
    assert verifier.uses_oracle
    with pytest.raises(OracleUnavailable, match="ctx.oracle is None"):
        run(verifier.score(make_ctx(ScriptedModel()), GOOD))
    ctx = make_ctx(ScriptedModel(), oracle=lambda text: "14" in text)
    assert run(verifier.score(ctx, GOOD)).value == 1.0
    assert run(verifier.score(ctx, BAD)).value == 0.0


# -- combinators -----------------------------------------------------------------------------------------------
class Fixed(Verifier):
    name = "fixed_for_tests"

    def __init__(self, value: float, steps: tuple[float, ...] | None = None, first_error: int | None = None,
                 label: str = "") -> None:
        self.value, self.steps, self.first_error, self.label = value, steps, first_error, label
        self.calls = 0

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        self.calls += 1
        return Score(self.value, self.steps, self.first_error, self.label or None)


def test_weighted_mean_and_steps_from_the_heaviest_member() -> None:
    light = Fixed(1.0, (1.0, 0.0), 1, "light")
    heavy = Fixed(0.2, (0.0, 1.0, 1.0), 0, "heavy")
    score = run(WeightedVerifier([(light, 1.0), (heavy, 3.0)]).score(make_ctx(ScriptedModel()), "x"))
    assert score.value == pytest.approx((1.0 + 0.6) / 4)
    assert score.steps == (0.0, 1.0, 1.0) and score.first_error == 0
    assert "light" in score.feedback and "heavy" in score.feedback


def test_gate_passes_fails_and_cascades() -> None:
    ctx = make_ctx(ScriptedModel())
    assert run(GateVerifier(Fixed(0.7), threshold=0.6).score(ctx, "x")).value == 1.0
    expensive = Fixed(0.3)
    failed = run(GateVerifier(Fixed(0.4, label="why"), threshold=0.6, then=expensive).score(ctx, "x"))
    assert failed.value == 0.0 and failed.feedback == "why" and expensive.calls == 0
    assert run(GateVerifier(Fixed(0.9), threshold=0.6, then=expensive).score(ctx, "x")).value == 0.3
    assert expensive.calls == 1


def test_weighted_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        WeightedVerifier([(Fixed(1.0), 0.0)])


# -- specs and registration ---------------------------------------------------------------------------------------
def test_spec_builds_nested_verifiers_with_typed_options() -> None:
    verifier = make_verifier_from_spec("weighted:step_judge(split=lines,logprobs=false)=2, judge=1")
    assert isinstance(verifier, WeightedVerifier)
    (first, w1), (second, w2) = verifier.members
    assert isinstance(first, StepJudgeVerifier) and first.split == "lines" and first.logprobs is False
    assert isinstance(second, JudgeVerifier) and (w1, w2) == (2.0, 1.0)
    gate = make_verifier_from_spec("gate:verifier=judge(max_tokens=64),threshold=0.7,then=rollout(k=2)")
    assert isinstance(gate, GateVerifier) and gate.inner.max_tokens == 64 and gate.then.k == 2
    assert gate.threshold == 0.7
    assert make_verifier_from_spec("self_certainty:signal=entropy").signal == "entropy"
    assert parse_spec("step_judge(split=lines)") == ("step_judge", [("split", "lines")])


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("no_such_verifier", "unknown verifier"),
    ("judge:colour=red", "has no option 'colour'"),
    ("judge:max_tokens=lots", "not a valid int"),
    ("judge:logprobs=maybe", "not a valid bool"),
    ("judge:max_tokens", "expected key=value"),
    ("judge:max_tokens=1,max_tokens=2", "given twice"),
    ("step_judge(split=lines", "unbalanced '('"),
    ("weighted:judge=heavy", "must be a number"),
    ("weighted:judge=-1", "non-negative"),
    ("gate:threshold=0.5", "needs verifier"),
    ("gate:verifier=judge,threshold=2", "threshold must be in"),
    ("rollout:split=words", "unknown split"),
    ("weighted:nope=1", "unknown verifier 'nope'"),
])
def test_bad_specs_fail_with_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)) as caught:
        make_verifier_from_spec(spec)
    assert "\n" not in str(caught.value)


def test_oracle_inside_a_combinator_is_detected() -> None:
    assert spec_uses_oracle("weighted:judge=1,oracle=1")
    assert spec_uses_oracle("gate:verifier=judge,then=oracle")
    assert not spec_uses_oracle("weighted:judge=1,rating=1")


def test_user_registered_verifier_works_by_spec_without_editing_redraft() -> None:
    @register_verifier
    class LengthVerifier(Verifier):
        name = "length_for_tests"

        def __init__(self, limit: int = 10, role: str = "length") -> None:
            self.limit, self.role = limit, role

        async def score(self, ctx: SolveContext, solution: str) -> Score:
            return Score(1.0 if len(solution) <= self.limit else 0.0)

    try:
        verifier = make_verifier_from_spec("weighted:length_for_tests(limit=3)=1")
        assert run(verifier.score(make_ctx(ScriptedModel()), "abc")).value == 1.0
        assert run(verifier.score(make_ctx(ScriptedModel()), "abcd")).value == 0.0
    finally:
        VERIFIERS.pop("length_for_tests", None)


def test_every_builtin_scores_in_the_unit_interval_on_scripted_replies() -> None:
    replies = {"judge": "ok\nVerdict: Yes", "rating": "Rating: 11", "step_judge": "Step 1: correct"}
    for name, reply in replies.items():
        score = run(make_verifier_from_spec(f"{name}").score(make_ctx(ScriptedModel(responder=lambda *a, r=reply: r)),
                                                             SOLUTION))
        assert 0.0 <= score.value <= 1.0, name


def test_make_verifier_accepts_a_spec_so_every_strategy_option_does() -> None:
    from redraft.verifiers import make_verifier

    verifier = make_verifier("step_judge:split=lines")
    assert isinstance(verifier, StepJudgeVerifier) and verifier.split == "lines"
    assert isinstance(make_verifier("judge"), JudgeVerifier)
    with pytest.raises(ValueError, match="no option"):
        make_verifier("judge:nope=1")


@pytest.mark.model
def test_judge_and_self_certainty_on_a_real_model() -> None:
    """llama.cpp's tokens spell the text, so the verdict token is found and P(Yes) is graded."""
    from redraft.models import load_model

    async def go() -> tuple[Score, Score, SolveContext]:
        model = load_model("smollm2-135m", parallel=2)
        try:
            ctx = make_ctx(model)
            samples = await ctx.generate(ctx.task.messages(ctx.problem), n=2, temperature=0.7, max_tokens=32,
                                         logprobs=True, top_logprobs=5)
            record_certainty(ctx, samples)
            certainty = await SelfCertaintyVerifier(source="recorded").score(ctx, samples[0].text)
            judged = await JudgeVerifier(max_tokens=48).score(ctx, samples[0].text)
            return certainty, judged, ctx
        finally:
            await model.close()

    certainty, judged, ctx = run(go())
    assert 0.0 < certainty.value < 1.0 and "top-5" in certainty.feedback
    assert 0.0 <= judged.value <= 1.0
    assert ctx.cost.by_role["judge"].calls == 1 and "certainty" not in ctx.cost.by_role
