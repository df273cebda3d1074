"""Serve pieces without HTTP: the model-field grammar, the scheduler, the served task format."""

from __future__ import annotations

import asyncio

import pytest

from redraft.serve.naming import ModelNameError, ServedName, format_name, parse_model_field
from redraft.serve.scheduler import Scheduler
from redraft.serve.task import ServedTask
from redraft.tasks.base import Problem

METHODS = {"cot", "self_consistency", "magicore"}
BACKENDS = {"qwen2.5-coder-1.5b", "openai:gpt-4o-mini"}


def parse(text: str) -> ServedName:
    return parse_model_field(text, methods=METHODS, backends=BACKENDS, default_method="cot")


@pytest.mark.parametrize(("text", "method", "options", "backend"), [
    ("magicore:qwen2.5-coder-1.5b", "magicore", {}, "qwen2.5-coder-1.5b"),
    ("self_consistency@n=8:qwen2.5-coder-1.5b", "self_consistency", {"n": "8"}, "qwen2.5-coder-1.5b"),
    ("self_consistency@n=8, temperature=0.8:qwen2.5-coder-1.5b", "self_consistency",
     {"n": "8", "temperature": "0.8"}, "qwen2.5-coder-1.5b"),
    ("cot:openai:gpt-4o-mini", "cot", {}, "openai:gpt-4o-mini"),
    ("openai:gpt-4o-mini", "cot", {}, "openai:gpt-4o-mini"),  # bare backend: the default method
    ("qwen2.5-coder-1.5b", "cot", {}, "qwen2.5-coder-1.5b"),
    ("self_consistency@max-tokens=64:qwen2.5-coder-1.5b", "self_consistency", {"max_tokens": "64"},
     "qwen2.5-coder-1.5b"),
])
def test_model_field_grammar(text: str, method: str, options: dict[str, str], backend: str) -> None:
    assert parse(text) == ServedName(method, options, backend)


@pytest.mark.parametrize(("text", "kind", "words"), [
    ("", "syntax", "needs a 'model'"),
    ("magicor:qwen2.5-coder-1.5b", "method", "unknown method 'magicor'"),
    ("nosuch@n=2:qwen2.5-coder-1.5b", "method", "unknown method 'nosuch'"),
    ("cot:llama-70b", "model", "unknown model 'llama-70b'"),
    ("gpt-4", "model", "this server offers openai:gpt-4o-mini, qwen2.5-coder-1.5b"),
    ("self_consistency@n:qwen2.5-coder-1.5b", "syntax", "should look like key=value"),
    ("self_consistency@n=2,n=3:qwen2.5-coder-1.5b", "syntax", "given twice"),
    ("cot:", "syntax", "no backend"),
])
def test_model_field_errors_say_which_part_is_wrong(text: str, kind: str, words: str) -> None:
    with pytest.raises(ModelNameError) as caught:
        parse(text)
    assert caught.value.kind == kind and words in str(caught.value)


def test_canonical_name_sorts_options() -> None:
    spelled = format_name("self_consistency", {"temperature": 0.8, "n": 8}, "m")
    assert spelled == "self_consistency@n=8,temperature=0.8:m"
    assert str(parse("cot:qwen2.5-coder-1.5b")) == "cot:qwen2.5-coder-1.5b"


def test_scheduler_bounds_units_serves_fifo_and_frees_cancelled_waiters() -> None:
    async def scenario() -> list[str]:
        scheduler = Scheduler(4)
        order: list[str] = []
        big = await scheduler.acquire(3)
        assert scheduler.in_use == 3

        async def wants(name: str, units: int) -> None:
            taken = await scheduler.acquire(units)
            order.append(name)
            await asyncio.sleep(0)
            scheduler.release(taken)

        # "two" needs 2 and waits; "one" needs 1 and would fit, but must not jump the queue
        two = asyncio.create_task(wants("two", 2))
        await asyncio.sleep(0)
        one = asyncio.create_task(wants("one", 1))
        doomed = asyncio.create_task(wants("doomed", 4))
        await asyncio.sleep(0.01)
        assert order == [] and scheduler.waiting == 3
        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        assert scheduler.waiting == 2
        scheduler.release(big)
        await asyncio.gather(two, one)
        assert scheduler.in_use == 0 and scheduler.peak <= 4 and scheduler.waiting == 0
        assert await scheduler.acquire(99) == 4  # a call larger than the capacity takes all of it
        return order

    assert asyncio.run(scenario()) == ["two", "one"]


def test_served_task_formats_math_and_qa() -> None:
    history = [{"role": "system", "content": "Be terse."}]
    problem = Problem("req-1", "Name the capital of France.", {"history": history})
    qa, math = ServedTask("qa"), ServedTask("math")
    messages = qa.messages(problem)
    assert messages[0] == history[0] and messages[1]["content"].startswith("Name the capital of France.")
    assert "\\boxed{}" in messages[1]["content"]
    assert qa.extract("It is \\boxed{Paris}.", problem) == "Paris"
    assert qa.extract("Paris, of course.", problem) == "Paris, of course."  # nothing boxed: pass-through
    assert qa.same_answer("Paris", " paris. ") and qa.same_answer("1,000", "1000")
    assert math.extract("so 12 apples, \\boxed{12}", problem) == "12" and math.extract("no idea", problem) is None
    assert not math.grade(problem, "12", "").correct
    with pytest.raises(ValueError, match="unknown task format"):
        ServedTask("poetry")


def test_scheduler_cancel_and_release_in_the_same_turn_loses_no_unit() -> None:
    async def scenario() -> None:
        scheduler = Scheduler(1)
        held = await scheduler.acquire(1)
        waiter = asyncio.create_task(scheduler.acquire(1))
        await asyncio.sleep(0)
        assert scheduler.waiting == 1
        # the client of the waiter goes away and the holder finishes, before the loop runs again
        waiter.cancel()
        scheduler.release(held)  # must not raise (it used to: InvalidStateError on the cancelled waiter)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert scheduler.in_use == 0 and scheduler.waiting == 0
        taken = await asyncio.wait_for(scheduler.acquire(1), timeout=1)  # the capacity is whole again
        assert scheduler.in_use == 1
        scheduler.release(taken)
        assert scheduler.in_use == 0
        # the other order: granted first, cancelled before it resumed; the unit goes back
        held = await scheduler.acquire(1)
        waiter = asyncio.create_task(scheduler.acquire(1))
        await asyncio.sleep(0)
        scheduler.release(held)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert scheduler.in_use == 0 and scheduler.waiting == 0

    asyncio.run(scenario())
