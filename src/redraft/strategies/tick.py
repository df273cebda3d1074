"""TICK / STICK: a model-written yes/no checklist drives best-of-N selection and self-refinement.

"TICKing All the Boxes: Generated Checklists Improve LLM Evaluation and Generation": the model
decomposes the instruction into YES/NO questions, each checking one requirement; a response's
score is the fraction answered YES. STICK (Self-TICK) uses the model's own checklist evaluations
for best-of-N selection and as feedback for self-refinement::

    drafts = n samples of the question          (n = 1: one greedy draft)
    checklist = CHECKLIST(x)                     the model writes numbered yes/no questions
    score(y), failed(y) = EVALUATE(x, checklist, y)    fraction YES; the questions answered NO
    y = argmax_score(drafts)                     best-of-N with STICK (ties: the earliest)
    for t = 1 .. rounds:
        if score(y) = 1: stop                    every box ticked
        y = REFINE(x, y, failed(y))              the unmet checklist items are the feedback
    return y                                      (select=best: the best-scored of all evaluated)

Choices the abstract leaves open, and what this module does:

- One evaluation call per response answers every checklist question at once ("k. YES/NO"); a
  question the reply leaves unanswered counts as not met (and is listed as such).
- The checklist has at most ``max_items`` questions; lines that are not questions are dropped.
  If the model writes none, the single question "Is the final answer correct?" stands in, so
  the method degrades to a yes/no self-judge instead of failing.
- The drafts are written before the checklist, so a budget that runs out after the drafts still
  leaves something to return (the first draft). n=1 with rounds>0 is STICK self-refinement;
  n>1 with rounds=0 is STICK best-of-N; both at once is the default.
- A revision with no extractable answer (cut off by the budget or max_tokens) is never returned
  over a candidate that has one.
- Budget: when it runs out after the drafts, the strategy returns the best-scored candidate so far
  (the first draft if none was scored) and notes ``budget_exhausted``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from . import moves
from .base import Strategy, register_strategy, require, require_choice
from .moves import Candidate

CHECKLIST_PROMPT = """Problem:
{question}

Before anyone answers this problem, write a checklist for judging a response to it: yes/no
questions, each checking one specific requirement a correct and complete response must meet (a
quantity it must compute correctly, a condition of the problem it must respect, the form of the
final answer). Write at most {max_items} questions, one per line, numbered "1.", "2.", ... Each
question must be answerable with YES or NO. Do not solve the problem."""

EVALUATE_PROMPT = """Problem:
{question}

Response:
{response}

Checklist:
{checklist}

Answer each checklist question about the response, one line per question, in the form "1. YES"
or "1. NO". Check each requirement carefully against the response."""

FAILED_FEEDBACK = """The solution was checked against this checklist; it does not meet these requirements:
{failed}"""

FALLBACK_QUESTION = "Is the final answer correct?"
SELECTIONS = ("last", "best")

_NUMBERING = re.compile(r"^\s*(?:[-*•]|\(?\d+[.):]|q\d+[.):])\s*", re.IGNORECASE)
_VERDICT_LINE = re.compile(r"^\W*(?:q\s*)?(\d+)\s*[.):-]?\s*\**\s*(yes|no)\b", re.IGNORECASE | re.MULTILINE)


def parse_checklist(text: str, max_items: int) -> list[str]:
    """The numbered or bulleted yes/no questions in a reply, in order, without their numbering."""
    questions = []
    for line in text.splitlines():
        question = _NUMBERING.sub("", line).strip()
        if question.endswith("?") and question not in questions:
            questions.append(question)
    return questions[:max_items]


def parse_verdicts(text: str, count: int) -> list[bool | None]:
    """YES/NO per checklist item from "k. YES" lines (the last line for k wins); None if unanswered."""
    verdicts: list[bool | None] = [None] * count
    for match in _VERDICT_LINE.finditer(text):
        index = int(match.group(1)) - 1
        if 0 <= index < count:
            verdicts[index] = match.group(2).lower() == "yes"
    return verdicts


@dataclass
class Evaluation:
    score: float  # fraction of checklist items met
    verdicts: list[bool | None]

    def failed(self, checklist: list[str]) -> list[str]:
        return [q for q, ok in zip(checklist, self.verdicts, strict=True) if ok is not True]


@dataclass
class TickOptions:
    n: int = 4  # drafts for best-of-N (1: greedy draft, refinement only)
    rounds: int = 2  # STICK self-refinement rounds (0: best-of-N only)
    max_items: int = 8
    select: str = "last"
    temperature: float = 0.7  # draft temperature when n > 1
    max_tokens: int = 768
    judge_max_tokens: int = 384

    def __post_init__(self) -> None:
        require(self.n >= 1 and self.rounds >= 0 and self.max_items >= 1, "n and max_items must be >= 1, rounds >= 0")
        require_choice("select", self.select, SELECTIONS)


@register_strategy
class Tick(Strategy):
    name = "tick"
    Options = TickOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        drafts = await moves.sample(ctx, opts.n, temperature=opts.temperature if opts.n > 1 else 0.0,
                                    max_tokens=opts.max_tokens)
        evaluated: list[tuple[Candidate, Evaluation | None]] = [(d, None) for d in drafts]
        current = drafts[0]
        refinements = 0
        try:
            checklist = await self._checklist(ctx)
            results, exhausted = await moves.gather_within_budget([self._evaluate(ctx, checklist, d) for d in drafts])
            evaluated = list(zip(drafts, results, strict=True))
            chosen = self._best(evaluated)
            current, current_eval = evaluated[chosen]
            self._note(ctx, 0, evaluated, checklist, f"select draft {chosen}", current)
            if exhausted:
                raise BudgetExhausted("budget ran out while evaluating the drafts")
            while refinements < opts.rounds:
                assert current_eval is not None
                if current_eval.score >= 1.0:
                    ctx.note("stop", round=refinements, reason="every checklist item met")
                    break
                failed = "\n".join(f"- {q}" for q in current_eval.failed(checklist))
                current = await moves.refine(ctx, current, FAILED_FEEDBACK.format(failed=failed),
                                             round=refinements + 1, max_tokens=opts.max_tokens)
                refinements += 1
                evaluated.append((current, None))
                current_eval = await self._evaluate(ctx, checklist, current)
                evaluated[-1] = (current, current_eval)
                self._note(ctx, refinements, [(current, current_eval)], checklist,
                           "stop: rounds done" if refinements == opts.rounds else "refine", self._final(evaluated))
        except BudgetExhausted as exc:
            ctx.note("budget_exhausted", reason=str(exc), round=refinements)
            if refinements and evaluated[-1][1] is None:  # a revision the budget left unevaluated
                moves.note_round(ctx, refinements, [current], decision="stop: budget",
                                 answer=self._final(evaluated).answer)
        final = self._final(evaluated) if refinements else current
        moves.note_final(ctx, final.answer, final.round, select=opts.select)
        return Result(final.answer, final.text, {"rounds": refinements})

    async def _checklist(self, ctx: SolveContext) -> list[str]:
        opts = self.options
        content = CHECKLIST_PROMPT.format(question=ctx.problem.question, max_items=opts.max_items)
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="judge",
                                     max_tokens=opts.judge_max_tokens, label="checklist")
        checklist = parse_checklist(reply.text, opts.max_items) or [FALLBACK_QUESTION]
        ctx.note("checklist", items=checklist)
        return checklist

    async def _evaluate(self, ctx: SolveContext, checklist: list[str], candidate: Candidate) -> Evaluation:
        listing = "\n".join(f"{i + 1}. {q}" for i, q in enumerate(checklist))
        content = EVALUATE_PROMPT.format(question=ctx.problem.question, response=candidate.text, checklist=listing)
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="judge",
                                     max_tokens=self.options.judge_max_tokens, label="tick")
        verdicts = parse_verdicts(reply.text, len(checklist))
        return Evaluation(sum(v is True for v in verdicts) / len(checklist), verdicts)

    @staticmethod
    def _best(evaluated: list[tuple[Candidate, Evaluation | None]]) -> int:
        """Highest checklist score (unevaluated last); ties go to the earliest."""
        return max(range(len(evaluated)),
                   key=lambda i: (evaluated[i][1] is not None, evaluated[i][1].score if evaluated[i][1] else 0.0, -i))

    def _final(self, evaluated: list[tuple[Candidate, Evaluation | None]]) -> Candidate:
        """What the method returns once refinement has begun: the latest revision, or the best-scored."""
        answered = [e for e in evaluated if e[0].answer is not None] or evaluated
        if self.options.select == "last":
            return answered[-1][0]
        return answered[self._best(answered)][0]

    def _note(self, ctx: SolveContext, round_index: int, items: list[tuple[Candidate, Evaluation | None]],
              checklist: list[str], decision: str, pick: Candidate) -> None:
        scores = [e.score if e else None for _, e in items]
        critiques = ["; ".join(e.failed(checklist)) if e else None for _, e in items]
        moves.note_round(ctx, round_index, [c for c, _ in items], scores, critiques=critiques, decision=decision,
                         answer=pick.answer, verdicts=[e.verdicts if e else None for _, e in items],
                         verifier="checklist")
