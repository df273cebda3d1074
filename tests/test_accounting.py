import asyncio

import pytest

from redraft.accounting import Budget, BudgetExhausted
from redraft.context import SolveContext, derived_seed
from redraft.models.scripted import ScriptedModel
from redraft.store import Store
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.tasks.base import TaskView


def make_ctx(model, **kwargs):
    task = ArithmeticTask(count=3)
    return SolveContext(problem=task.problems()[0], task=TaskView(task), models={"solver": model}, **kwargs)


def test_budget_reserves_and_refunds():
    budget = Budget(completion_tokens=100)
    assert budget.reserve(n=2, max_tokens=80) == 50  # cut to what is left per sample
    budget.settle(reserved=100, used=30)
    assert budget.remaining_tokens == 70
    assert budget.reserve(n=1, max_tokens=10) == 10
    with pytest.raises(BudgetExhausted):
        Budget(completion_tokens=3).reserve(n=4, max_tokens=10)


def test_calls_are_counted_by_role_and_traced():
    model = ScriptedModel(responder=lambda m, p, i: "one two three")
    ctx = make_ctx(model)

    async def go():
        await ctx.generate([{"role": "user", "content": "a b"}], n=2, temperature=0.7, label="sample")
        await ctx.generate([{"role": "user", "content": "c"}], role="judge")

    asyncio.run(go())
    assert ctx.cost.by_role["solver"].completion_tokens == 6
    assert ctx.cost.by_role["solver"].samples == 2
    assert ctx.cost.by_role["judge"].calls == 1
    assert ctx.cost.by_role["judge"].prompt_tokens == 1
    assert ctx.cost.calls == 2
    assert [e["role"] for e in ctx.trace] == ["solver", "judge"]
    assert ctx.trace[0]["outputs"] == ["one two three"] * 2


def test_budget_is_never_exceeded_even_by_concurrent_calls():
    model = ScriptedModel(responder=lambda m, p, i: " ".join(["w"] * 50))
    ctx = make_ctx(model, budget=Budget(completion_tokens=120))

    async def go():
        results = await asyncio.gather(*(ctx.generate([{"role": "user", "content": "q"}], max_tokens=50)
                                         for _ in range(4)), return_exceptions=True)
        return results

    results = asyncio.run(go())
    assert ctx.cost.completion_tokens <= 120
    assert any(isinstance(r, BudgetExhausted) for r in results)


def test_deterministic_calls_are_served_from_the_cache(db_path):
    store = Store(db_path)
    model = ScriptedModel(responder=lambda m, p, i: f"sample {i}")

    async def two_contexts():
        first = make_ctx(model, cache=store)
        await first.generate([{"role": "user", "content": "q"}], n=3, temperature=0.8)
        second = make_ctx(model, cache=store)
        await second.generate([{"role": "user", "content": "q"}], n=3, temperature=0.8)
        return first, second

    first, second = asyncio.run(two_contexts())
    assert len(model.calls) == 1  # the second, same-seeded call never reached the model
    assert second.trace[0]["cached"] is True
    assert second.trace[0]["outputs"] == first.trace[0]["outputs"]
    # the cached call still costs what it cost: methods compare at the compute they need
    assert second.cost.completion_tokens == first.cost.completion_tokens


def test_a_larger_sampling_call_reuses_a_smaller_ones_samples(db_path):
    """Seeded samples are cached one by one (sample i is the request seeded seed + i, as the llama.cpp
    backend sends it), so a matched self-consistency at n=5 draws only the two samples an n=3 lacks."""
    store = Store(db_path)
    def text(seed):  # a sample is a function of its seed, of varying length
        return f"seed {seed} " + "w " * (seed % 4)

    model = ScriptedModel(responder=lambda m, p, i: text(p.seed + i))

    async def sample(n):
        ctx = make_ctx(model, cache=store)
        out = await ctx.generate([{"role": "user", "content": "q"}], n=n, temperature=0.7)
        return ctx, [c.text for c in out]

    first, three = asyncio.run(sample(3))
    second, five = asyncio.run(sample(5))
    seed = first.trace[0]["seed"]
    assert five == [text(seed + i) for i in range(5)]  # as if drawn in one call
    assert five[:3] == three
    assert [(c.params.n, c.params.seed) for c in model.calls] == [(3, seed), (2, seed + 3)]
    assert second.trace[0]["cached"] is False and second.trace[0]["cached_samples"] == 3
    # every sample is paid for, cached or not: the cost is what the method needs
    assert second.cost.completion_tokens == sum(len(t.split()) for t in five)
    third, again = asyncio.run(sample(2))
    assert again == three[:2] and len(model.calls) == 2 and third.trace[0]["cached"] is True


def test_a_sampling_call_stored_whole_is_still_served(db_path):
    """Databases written before samples were cached one by one keep serving their n-sample calls."""
    from redraft.context import cache_key
    from redraft.models import Completion, GenerationParams

    store = Store(db_path)
    model = ScriptedModel(responder=lambda m, p, i: "fresh")
    ctx = make_ctx(model, cache=store)
    messages = [{"role": "user", "content": "q"}]
    seed = derived_seed(ctx.run_seed, ctx.problem.id, "solver", 0)
    params = GenerationParams(n=2, temperature=0.7, max_tokens=768, seed=seed)
    store.put(cache_key(model, messages, params), [Completion("old a", "stop", 1, 2, 0.1),
                                                   Completion("old b", "stop", 1, 2, 0.1)])
    out = asyncio.run(ctx.generate(messages, n=2, temperature=0.7))
    assert [c.text for c in out] == ["old a", "old b"] and not model.calls


def test_openai_backend_trusts_n_sample_usage_only_when_it_adds_up():
    """A server that reports one choice's usage for n choices would halve a method's cost: such a
    reply is re-issued as single requests; a summed usage is taken as it is."""
    import asyncio
    from types import SimpleNamespace

    from redraft.models import GenerationParams
    from redraft.models.openai_compat import OpenAICompatibleModel

    class Client:
        def __init__(self, per_choice_usage: bool) -> None:
            self.per_choice_usage = per_choice_usage
            self.requests = []
            self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

        async def create(self, **body):
            self.requests.append(body)
            n = body.get("n", 1)
            choices = [SimpleNamespace(message=SimpleNamespace(content=f"s{i}"), finish_reason="length",
                                       logprobs=None) for i in range(n)]
            total = body["max_tokens"] * (1 if self.per_choice_usage else n)
            return SimpleNamespace(choices=choices, model_extra={},
                                   usage=SimpleNamespace(prompt_tokens=5, completion_tokens=total))

        async def close(self):
            pass

    def sample(per_choice_usage: bool):
        client = Client(per_choice_usage)
        model = OpenAICompatibleModel("m", base_url="http://x/v1", client=client)
        out = asyncio.run(model.generate([{"role": "user", "content": "q"}], GenerationParams(n=3, max_tokens=10)))
        return out, client.requests

    summed, requests = sample(per_choice_usage=False)
    assert [c.completion_tokens for c in summed] == [10, 10, 10] and len(requests) == 1
    miscounted, requests = sample(per_choice_usage=True)
    assert [c.completion_tokens for c in miscounted] == [10, 10, 10]
    assert [r.get("n", 1) for r in requests] == [3, 1, 1, 1]  # recognised, then three single requests
