"""Stored runs with known right and wrong solutions (scripted model), and a tiny random-weight chat model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from redraft.context import Result, SolveContext
from redraft.models.scripted import ScriptedModel
from redraft.runner import execute_run
from redraft.store import RunInfo, Store
from redraft.strategies import hsr, make_strategy, moves, options_of, self_debug
from redraft.strategies.base import Strategy, register_strategy
from redraft.tasks import load_task
from redraft.verifiers.rollout import RolloutVerifier

TASK_OPTIONS = {"count": 3, "steps": 2, "seed": 0}
TASK = load_task("arithmetic", **TASK_OPTIONS)
KEYS = {p.question: int(TASK.reference(p)) for p in TASK.problems()}


def key_in(messages: list[dict[str, str]]) -> int:
    content = "\n".join(m["content"] for m in messages)
    return next(key for question, key in KEYS.items() if question in content)


def sampled_solution(messages: list[dict[str, str]], index: int) -> str:
    """Six samples per problem: two distinct right ones, a duplicate, no answer, a truncated right one, a wrong one."""
    key = key_in(messages)
    return [
        f"Step 1: count them.\nStep 2: the answer is \\boxed{{{key}}}.",
        f"Work it out one change at a time and get \\boxed{{{key}}}.",
        f"Step 1:   count them.\n\nStep 2: the answer is \\boxed{{{key}}}.",
        "I am not sure how to do this.",
        f"The answer is \\boxed{{{key}}} " + "and more words " * 20,
        f"Step 1: guess.\nStep 2: the answer is \\boxed{{{key + 1}}}.",
    ][index]


def greedy_solution(messages: list[dict[str, str]]) -> str:
    """Greedy draft: right on problem 0 only."""
    key = key_in(messages)
    first = KEYS[next(iter(KEYS))]
    return f"The answer is \\boxed{{{key if key == first else key + 7}}}."


def responder(messages: list[dict[str, str]], params: Any, index: int) -> str:
    content = messages[-1]["content"]
    key = key_in(messages)
    if "Review the proposed solution" in content:
        return "Step 2 adds instead of subtracting."
    if "Fix the function so that" in content or "Anchor solution, to be repaired" in content:  # revise, repair
        return f"Step 1: redo it.\nStep 2: the answer is \\boxed{{{key}}}."
    if "Previous solution:" in content:  # critique-guided refine: fixed
        return f"Step 1: start again.\nStep 2: the answer is \\boxed{{{key}}}."
    if "Draft solution (it may contain mistakes)" in content:  # global refine: still wrong
        return f"Rewritten: \\boxed{{{key + 2}}}."
    if "The beginning of a solution" in content:  # local refine: only the continuation, fixed
        return f"Step 2: so the answer is \\boxed{{{key}}}."
    if messages[-1]["role"] == "assistant":  # a rollout continuing a prefilled prefix
        right = {"Step 1: a.\n": 3, "Step 1: a.\nStep 2: b.\n": 1,
                 "Step 1: a.\nStep 2: b. c.\n": 4}[messages[-1]["content"]]
        return f"Step 9: \\boxed{{{key if index < right else key + 5}}}."
    if params.temperature == 0:
        return greedy_solution(messages)
    return sampled_solution(messages, index)


class RefineForTests(Strategy):
    """Draft twice (both wrong), then critique-refine, global-refine and local-refine, following the
    trace convention of ``moves``, and record step scores in the two shapes the exporter reads."""

    name = "distill_test_refine"

    async def solve(self, ctx: SolveContext) -> Result:
        key = KEYS[ctx.problem.question]
        wrong_a = moves.Candidate(f"Step 1: take the start.\nStep 2: the answer is \\boxed{{{key + 1}}}.",
                                  str(key + 1))
        [draft] = await ctx.generate(ctx.task.messages(ctx.problem), temperature=0.7, label="sample")
        drafts = [wrong_a, moves.Candidate(draft.text, ctx.extract(draft.text))]
        moves.note_round(ctx, 0, drafts, decision="hard: refine")
        ctx.note("score", verifier="rollout", solution=wrong_a.text, steps=[0.9, 0.2], first_error=1,
                 split="marked")
        ctx.note("score", verifier="rollout", solution=drafts[1].text, steps=[0.5, 0.5], first_error=None,
                 split="marked", rollout_answers=[[str(key), str(key), "0"], ["0", "0", "0"]])
        feedback = await moves.critique(ctx, wrong_a)
        refined = await moves.refine(ctx, wrong_a, feedback, round=1)
        rewritten = await moves.global_refine(ctx, drafts[1], round=1)
        local = await moves.local_refine(ctx, "Step 1: take the start.", feedback, round=1)
        moves.note_round(ctx, 1, [refined, rewritten, local], decision="stop",
                         step_scores=[{"steps": [0.4, 0.3], "first_error": 0, "verifier": "step_judge"}, None, None])
        moves.note_final(ctx, refined.answer, 1)
        return Result(refined.answer, refined.text)


register_strategy(RefineForTests)


class RolloutForTests(Strategy):
    """A wrong three-step draft and the calls the ``rollout`` verifier makes for its first two prefixes
    (k=4 continuations each, 3 and 1 of them reaching the right answer), as that verifier labels them."""

    name = "distill_test_rollout"

    async def solve(self, ctx: SolveContext) -> Result:
        key = KEYS[ctx.problem.question]
        text = f"Step 1: a.\nStep 2: b.\nStep 3: \\boxed{{{key + 1}}}."
        moves.note_round(ctx, 0, [moves.Candidate(text, str(key + 1))], decision="score")
        for step, prefix in enumerate(["Step 1: a.", "Step 1: a.\nStep 2: b."]):
            messages = [*ctx.task.messages(ctx.problem), {"role": "assistant", "content": prefix + "\n"}]
            await ctx.generate(messages, role="judge", n=4, temperature=0.7, label=f"rollout_step_{step}")
        ctx.note("rollout_values", consensus=str(key), baseline=1.0, source="trace", rolled_out=[0, 1],
                 values=[0.75, 0.25, 0.0], first_drop=1)
        return Result(str(key + 1), text)


register_strategy(RolloutForTests)


class SharedRolloutForTests(Strategy):
    """The real ``rollout`` verifier scores two solutions sharing their first step (the second one's step 2
    extends the first one's text); a third solution with the same first step is never scored."""

    name = "distill_test_shared_rollout"

    async def solve(self, ctx: SolveContext) -> Result:
        key = KEYS[ctx.problem.question]
        unscored = f"Step 1: a.\nStep 2: \\boxed{{{key + 1}}}."
        wrong = f"Step 1: a.\nStep 2: b.\nStep 3: \\boxed{{{key + 1}}}."
        right = f"Step 1: a.\nStep 2: b. c.\nStep 3: \\boxed{{{key}}}."
        verifier = RolloutVerifier(k=4, split="marked")
        for text in (wrong, right):
            await verifier.score(ctx, text)
        moves.note_round(ctx, 0, [moves.Candidate(t, ctx.extract(t)) for t in (unscored, wrong, right)],
                         decision="score")
        return Result(str(key), right)


register_strategy(SharedRolloutForTests)


class LocalFromScratchForTests(Strategy):
    """Two wrong drafts, then two local refinements from an empty prefix: one guided by a critique of the
    second draft (so made from it), one by a fixed hint (made from either: unknown)."""

    name = "distill_test_local_scratch"

    async def solve(self, ctx: SolveContext) -> Result:
        key = KEYS[ctx.problem.question]
        first = moves.Candidate(f"Step 1: double it.\nStep 2: \\boxed{{{key + 3}}}.", str(key + 3))
        second = moves.Candidate(f"Step 1: halve it.\nStep 2: \\boxed{{{key + 4}}}.", str(key + 4))
        moves.note_round(ctx, 0, [first, second], decision="refine")
        feedback = await moves.critique(ctx, second)
        made = await moves.local_refine(ctx, "", feedback, round=1)
        await moves.local_refine(ctx, "", "Start over.", round=1)
        moves.note_round(ctx, 1, [made], decision="stop")
        return Result(made.answer, made.text)


register_strategy(LocalFromScratchForTests)


class ReviseRepairForTests(Strategy):
    """A wrong draft rewritten the ways self_debug (a revision in the conversation, after a failing test) and
    HSR (a repair of the anchor from its peers) do, with those strategies' own prompts and labels."""

    name = "distill_test_revise_repair"

    async def solve(self, ctx: SolveContext) -> Result:
        key = KEYS[ctx.problem.question]
        wrong = moves.Candidate(f"Step 1: add.\nStep 2: \\boxed{{{key + 2}}}.", str(key + 2))
        moves.note_round(ctx, 0, [wrong], decision="refine")
        revised = await self_debug.revise(ctx, wrong, "assert answer == key failed", round=1, explain=False,
                                          max_tokens=64)
        content = hsr.REPAIR_PROMPT.format(question=ctx.problem.question, solution=wrong.text, score=0.1,
                                           peers="Peer 1 (score 0.90):\nStep 1: subtract.", instruction="")
        [repaired] = await ctx.generate([{"role": "user", "content": content}], role="refiner", label="repair")
        moves.note_round(ctx, 1, [revised, moves.Candidate(repaired.text, ctx.extract(repaired.text))],
                         decision="stop")
        return Result(revised.answer, revised.text)


register_strategy(ReviseRepairForTests)


def stored_run(store: Store, strategy: str, options: dict[str, Any] | None = None,
               identity: str = "scripted:v1", uses_oracle: bool = False) -> RunInfo:
    model = ScriptedModel(responder=responder, identity=identity)
    chosen = make_strategy(strategy, options or {})
    run = store.create_run(task="arithmetic", task_options=TASK_OPTIONS, strategy=chosen.name,
                           strategy_options=options_of(chosen), model="scripted", model_identity=identity,
                           settings={}, problem_ids=[p.id for p in TASK.problems()], uses_oracle=uses_oracle)
    asyncio.run(execute_run(store, run, TASK, chosen, {"solver": model}, concurrency=2))
    return run


def sampled_runs(store: Store) -> tuple[RunInfo, RunInfo, RunInfo]:
    """(self-consistency with the six samples, greedy cot, the refinement strategy)."""
    return (stored_run(store, "self_consistency", {"n": 6, "max_tokens": 40}),
            stored_run(store, "cot"), stored_run(store, "distill_test_refine"))


# -- a tiny chat model with random weights (no downloads) ----------------------------------------------------

CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|im_start|>", "<|im_end|>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_model_dir(path: Path, texts: list[str]) -> Path:
    """A 2-layer Llama with random weights and a byte-level tokenizer trained on ``texts``, saved to ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path
