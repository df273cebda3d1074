"""Parallel-Distill-Refine (``pdr``) and its p=1 case, Sequential Refinement (``sequential_refine``).

"Rethinking Thinking Tokens: LLMs as Improvement Operators": (i) generate diverse drafts in
parallel; (ii) distill them into a bounded, textual workspace; (iii) refine conditioned on the
workspace, producing an output that seeds the next round. Parallelism bounds the context, not the
total tokens. With p=1 it is Sequential Refinement: iteratively improve a single candidate::

    workspace = none
    for r = 0 .. rounds:
        m = p, except m = final_p in the last round
        outputs[r] = m parallel generations: r = 0 from the question alone,
                     r > 0 from the question + workspace (the refine step)
        answer[r] = vote over outputs[r]
        if r < rounds: workspace = DISTILL(outputs[r]), cut to workspace_chars characters
    return answer[rounds]

Choices the abstract leaves open, and what this module does:

- A round's refine step and the next round's parallel drafts are one step here: the m outputs of
  round r > 0 are m samples of "solve, given this workspace". The last round defaults to a single
  output (``final_p=1``), as the abstract's "an output that seeds the next round".
- Distill (``distill``): ``summary`` (default for pdr) asks the model for a short summary of the
  attempts: approaches, candidate answers, disagreements, suspect steps (one call, max tokens
  ``workspace_chars // 3``). ``extract`` (default for sequential_refine, no model call) puts the
  outputs themselves in the workspace, each cut to an equal share of the bound, keeping its end
  (where the conclusion and the answer are) and marking the cut.
- The workspace bound is in characters (the backend's tokenizer is not visible to strategies) and
  is hard: whatever distill returns is cut to ``workspace_chars`` before it reaches the refiner.
- A round's answer is a vote over its outputs (``vote``: majority, inverse_entropy (outputs are
  sampled with logprobs), or verifier with ``verifier=NAME``). A round whose outputs give no
  answer keeps the previous round's answer.
- Budget: when the budget runs out, the strategy returns the answer of the last finished round
  (noting ``budget_exhausted``); BudgetExhausted propagates only if the first drafts could not be
  generated at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..voting import VOTE_METHODS, mean_token_entropy
from . import moves
from .base import Strategy, register_strategy, require, require_choice
from .moves import Candidate

DISTILL_MODES = ("summary", "extract")

DISTILL_PROMPT = """Problem:
{question}

Here are {count} attempted solutions:

{attempts}

Write a short summary for someone who will solve the problem again, in at most {words} words:
the approaches taken, the final answers each attempt reached, where the attempts disagree, and any
step that looks wrong. Do not write a new solution."""

REFINE_FROM_WORKSPACE_PROMPT = """Problem:
{question}

Notes from earlier attempts at this problem (they may contain mistakes):
{workspace}

Using these notes where they help, write a complete, careful solution from the start. {instruction}"""

CUT_MARK = "[...]"


def cut_to(text: str, limit: int, *, keep: str = "head") -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked; ``keep`` the head or the tail."""
    if len(text) <= limit:
        return text
    if limit <= len(CUT_MARK) + 1:
        return text[:limit] if keep == "head" else text[len(text) - limit:]
    room = limit - len(CUT_MARK) - 1
    return f"{text[:room]} {CUT_MARK}" if keep == "head" else f"{CUT_MARK} {text[len(text) - room:]}"


def extract_workspace(outputs: Sequence[Candidate], limit: int) -> str:
    """The outputs themselves, each cut to an equal share of ``limit`` (its end kept)."""
    if len(outputs) == 1:
        return cut_to(outputs[0].text.strip(), limit, keep="tail")
    headers = [f"Attempt {i + 1}:\n" for i in range(len(outputs))]
    separators = 2 * (len(outputs) - 1)
    share = max(0, (limit - separators - sum(map(len, headers))) // len(outputs))
    parts = [header + cut_to(c.text.strip(), share, keep="tail") for header, c in zip(headers, outputs, strict=True)]
    return cut_to("\n\n".join(parts), limit, keep="head")  # exact bound even when headers alone overflow


@dataclass
class PDROptions:
    rounds: int = 2  # refinement rounds after the first drafts
    p: int = 4  # parallel drafts per round
    final_p: int = 1  # outputs in the last round
    distill: str = "summary"
    workspace_chars: int = 2000
    vote: str = "majority"
    verifier: str = ""  # only for vote=verifier
    temperature: float = 0.7
    max_tokens: int = 768

    def __post_init__(self) -> None:
        check_workspace_options(self.rounds, self.distill, self.workspace_chars)
        require(self.p >= 1 and self.final_p >= 1, "p and final_p must be >= 1")
        require_choice("vote", self.vote, VOTE_METHODS)
        require(self.vote != "verifier" or bool(self.verifier), "vote=verifier needs verifier=NAME")


@dataclass
class SequentialRefineOptions:
    rounds: int = 3
    distill: str = "extract"
    workspace_chars: int = 2000
    temperature: float = 0.7
    max_tokens: int = 768

    def __post_init__(self) -> None:
        check_workspace_options(self.rounds, self.distill, self.workspace_chars)


def check_workspace_options(rounds: int, distill: str, workspace_chars: int) -> None:
    require(rounds >= 0, "rounds must be >= 0")
    require_choice("distill", distill, DISTILL_MODES)
    require(workspace_chars >= 1, "workspace_chars must be >= 1")


@register_strategy
class ParallelDistillRefine(Strategy):
    name = "pdr"
    Options = PDROptions

    def schedule(self) -> tuple[int, int]:
        """(outputs per round, outputs in the last round)."""
        return self.options.p, self.options.final_p

    def vote_method(self) -> tuple[str, str]:
        return self.options.vote, self.options.verifier

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        p, final_p = self.schedule()
        chosen: Candidate | None = None  # the answer of the last finished round
        workspace: str | None = None
        round_index = 0
        try:
            for round_index in range(opts.rounds + 1):
                count = final_p if round_index == opts.rounds else p
                outputs, entropies = await self._generate(ctx, count, workspace, round_index)
                vote, scores = await self._vote(ctx, outputs, entropies)
                if vote.index is not None:
                    chosen = outputs[vote.index]
                elif chosen is None:
                    chosen = outputs[0]
                last = round_index == opts.rounds
                moves.note_round(ctx, round_index, outputs, scores, decision="final" if last else "distill",
                                 answer=chosen.answer, entropies=entropies, workspace=workspace,
                                 agreement=vote.agreement, verifier=self.vote_method()[1] or None)
                if not last:
                    workspace = await self._distill(ctx, outputs)
        except BudgetExhausted as exc:
            if chosen is None:
                raise
            ctx.note("budget_exhausted", reason=str(exc), round=round_index)
        assert chosen is not None
        moves.note_final(ctx, chosen.answer, chosen.round)
        return Result(chosen.answer, chosen.text, {"rounds": round_index})

    async def _generate(self, ctx: SolveContext, count: int, workspace: str | None,
                        round_index: int) -> tuple[list[Candidate], list[float] | None]:
        opts = self.options
        want_entropy = self.vote_method()[0] == "inverse_entropy"
        if workspace is None:
            messages = ctx.task.messages(ctx.problem)
            origin = "draft"
        else:
            content = REFINE_FROM_WORKSPACE_PROMPT.format(question=ctx.problem.question, workspace=workspace,
                                                          instruction=moves.final_instruction(ctx))
            messages = [{"role": "user", "content": content}]
            origin = "refine"
        completions = await ctx.generate(messages, role="solver" if workspace is None else "refiner", n=count,
                                         temperature=opts.temperature, max_tokens=opts.max_tokens,
                                         logprobs=want_entropy, top_logprobs=5 if want_entropy else 0, label=origin)
        outputs = [Candidate(c.text, ctx.extract(c.text), origin, round_index) for c in completions]
        entropies = [mean_token_entropy(c.logprobs or []) for c in completions] if want_entropy else None
        return outputs, entropies

    async def _vote(self, ctx: SolveContext, outputs: list[Candidate],
                    entropies: list[float] | None) -> tuple[moves.Vote, list[float] | None]:
        method, verifier_name = self.vote_method()
        scores = None
        if method == "verifier":
            verifier = make_verifier(verifier_name)
            scores = [s.value for s in await moves.score_all(ctx, verifier, outputs)]
        return moves.vote_with(ctx, outputs, method, scores=scores, entropies=entropies), scores

    async def _distill(self, ctx: SolveContext, outputs: list[Candidate]) -> str:
        opts = self.options
        if opts.distill == "extract":
            return extract_workspace(outputs, opts.workspace_chars)
        attempts = "\n\n".join(f"Attempt {i + 1}:\n{c.text.strip()}" for i, c in enumerate(outputs))
        content = DISTILL_PROMPT.format(question=ctx.problem.question, count=len(outputs), attempts=attempts,
                                        words=max(1, opts.workspace_chars // 6))
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="distiller",
                                     max_tokens=max(1, opts.workspace_chars // 3), label="distill")
        return cut_to(reply.text.strip(), opts.workspace_chars, keep="head")


@register_strategy
class SequentialRefine(ParallelDistillRefine):
    """PDR with one output per round: each round refines the previous solution (the workspace)."""

    name = "sequential_refine"
    Options = SequentialRefineOptions

    def schedule(self) -> tuple[int, int]:
        return 1, 1

    def vote_method(self) -> tuple[str, str]:
        return "majority", ""
