"""Iteration of Thought (IoT): an Inner Dialogue Agent prompts the LLM agent, round after round.

"Iteration of Thought: Leveraging Inner Dialogue for Autonomous LLM Reasoning": an Inner Dialogue
Agent (IDA) writes an instructive, context-specific prompt from the query and the current
response; the LLM Agent (LLMA) answers that prompt to refine its response; the loop is the
conversation between the two. AIoT lets the LLM decide when to stop; GIoT always runs a fixed
number of iterations::

    r[0] = LLMA(x)                                   the task's plain prompt, greedy
    for i = 1 .. rounds:
        prompt[i] = IDA(x, r[i-1])
        r[i], stop[i] = LLMA(x, r[i-1], prompt[i])   in AIoT the LLMA also says whether to stop
        if mode = aiot and stop[i]: break
    return r[last]

Choices the abstract leaves open, and what this module does:

- The IDA and the LLMA are the same model in two roles (``ida``, ``solver``; give the run a
  different model per role to separate them). Both are greedy.
- The first response is the plain draft every strategy starts from (so flips are measured against
  the same first draft), so AIoT always runs at least one IDA iteration. In AIoT the LLMA ends each
  answer with "Iteration stop: YES/NO"; a reply with no such line does not stop the loop. ``rounds``
  caps AIoT and is GIoT's fixed count.
- The LLMA sees the question, its previous response and the IDA's prompt (not the whole history),
  which keeps the context bounded.
- A response with no extractable answer (truncated) does not replace one that has one, and stops
  the loop: both agents are greedy, so the next iteration would see the same input.
- Budget: when the budget runs out, the latest response is returned (noting ``budget_exhausted``);
  only a first draft the budget cannot pay for propagates BudgetExhausted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from . import moves
from .base import Strategy, register_strategy, require, require_choice
from .moves import Candidate

MODES = ("aiot", "giot")

IDA_PROMPT = """You are an Inner Dialogue Agent. You guide another model, step by step, to the best answer to a
question by asking it the right thing next.

Question:
{question}

Its current response:
{response}

Write one prompt for it: a specific, thought-provoking instruction that will lead it to improve
this response (what to re-check, reconsider, compute differently, or explore next). Write only the
prompt, without answering the question yourself."""

LLMA_PROMPT = """Question:
{question}

Your previous response:
{response}

Guidance:
{guidance}

Following the guidance, answer the question again, step by step. {instruction}"""

AIOT_STOP_INSTRUCTION = """

After your final answer, write one last line: "Iteration stop: YES" if you are confident the answer
is complete and correct and no further iteration is needed, otherwise "Iteration stop: NO"."""

_STOP = re.compile(r"iteration[\s_-]*stop\W{0,3}\s*(yes|no|true|false)", re.IGNORECASE)


def parse_stop(text: str) -> bool | None:
    """The LLMA's last "Iteration stop: YES/NO" as True/False; None when it gives none."""
    found = _STOP.findall(text)
    return found[-1].lower() in ("yes", "true") if found else None


@dataclass
class IoTOptions:
    mode: str = "aiot"
    rounds: int = 3  # AIoT's cap; GIoT's fixed number of iterations
    max_tokens: int = 768
    ida_max_tokens: int = 256

    def __post_init__(self) -> None:
        require_choice("mode", self.mode, MODES)
        require(self.rounds >= 0, "rounds must be >= 0")


@register_strategy
class IterationOfThought(Strategy):
    name = "iot"
    Options = IoTOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        [current] = await moves.sample(ctx, 1, temperature=0.0, max_tokens=opts.max_tokens)
        moves.note_round(ctx, 0, [current], decision="draft", answer=current.answer)
        iteration = 0
        try:
            for iteration in range(1, opts.rounds + 1):
                guidance = await self._inner_dialogue(ctx, current)
                response, stop = await self._answer(ctx, current, guidance, iteration)
                if response.answer is None and current.answer is not None:
                    moves.note_round(ctx, iteration, [current], critiques=[guidance],
                                     decision="stop: response gave no answer", answer=current.answer,
                                     rejected=response.to_dict())
                    break
                current = response
                stopping = opts.mode == "aiot" and stop is True
                decision = ("stop: model says done" if stopping else "stop: rounds done" if iteration == opts.rounds
                            else "iterate")
                moves.note_round(ctx, iteration, [current], critiques=[guidance], decision=decision,
                                 answer=current.answer, model_stop=stop)
                if stopping:
                    break
        except BudgetExhausted as exc:
            ctx.note("budget_exhausted", reason=str(exc), round=iteration)
        moves.note_final(ctx, current.answer, current.round, mode=opts.mode)
        return Result(current.answer, current.text, {"rounds": current.round, "mode": opts.mode})

    async def _inner_dialogue(self, ctx: SolveContext, current: Candidate) -> str:
        content = IDA_PROMPT.format(question=ctx.problem.question, response=current.text)
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="ida",
                                     max_tokens=self.options.ida_max_tokens, label="ida")
        return reply.text.strip()

    async def _answer(self, ctx: SolveContext, current: Candidate, guidance: str,
                      iteration: int) -> tuple[Candidate, bool | None]:
        content = LLMA_PROMPT.format(question=ctx.problem.question, response=current.text, guidance=guidance,
                                     instruction=moves.final_instruction(ctx))
        if self.options.mode == "aiot":
            content += AIOT_STOP_INSTRUCTION
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="solver",
                                     max_tokens=self.options.max_tokens, label="llma")
        stop = parse_stop(reply.text) if self.options.mode == "aiot" else None
        return Candidate(reply.text, ctx.extract(reply.text), "iot", iteration), stop
