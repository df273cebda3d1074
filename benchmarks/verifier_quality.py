"""How good is each verifier on its own? (issue 3, "Measure")

1. Candidates: 8 sampled solutions per problem, stored once. Reused from any stored
   self-consistency run of the same model, task data and n (e.g. the spine benchmark's runs in
   benchmarks/spine.db); problems no stored run covers are sampled with ``redraft run --strategy
   self_consistency -o certainty=10`` into ``--db`` (resumable, same seeds as any other run with
   --seed 0), which records each sample's self-certainty so ``self_certainty`` needs no replay.
2. Every candidate is scored by every verifier spec (``--verifier``, repeatable; the grammar of
   ``redraft.verifiers.spec``). Each (problem, verifier) pair gets its own context, whose trace
   holds the problem's stored sample calls (so ``rollout`` finds the consensus and
   ``self_certainty`` can replay a sample), and whose cost by role is that verifier's cost. Scored
   pairs are appended to ``--scores`` (JSONL) as they finish and skipped on a re-run; verifier
   model calls are cached in ``--db``.
3. ``--probe-folds K``: the ``probe`` verifier, cross-validated K-fold by problem (fitted on the
   other folds' candidates, scored on this fold's), since a probe must not be measured on what it
   was trained on.
4. Report (markdown, ``--out``): per verifier, AUROC of its score for correct vs incorrect candidates
   (Mann-Whitney, ties half: ``redraft.report.metrics.auroc``), verifier tokens per candidate,
   best-of-n accuracy (argmax score, ties to the earliest sample) and weighted self-consistency
   (each candidate's vote weighted by its score); beside them self-consistency@n (majority), the
   first sample's accuracy and pass@n. For step verifiers: on wrong candidates, how often a first
   error is flagged, and an audit file (``--audit``) listing up to 30 wrong candidates with numbered
   steps, the flagged step and the answer key, for the hand check the issue asks for: the checker
   writes the number of the first wrong step of each (or "none"), and the next report counts how
   often the flag is at or before it. A filled-in audit is never overwritten, and a new step verifier's
   audit carries over the marks already made on the same candidates (a mark belongs to the candidate).

At scale (issue 3: problems 0-199, qwen2.5-coder-1.5b; rollouts on 0-49 only, they cost most):
    .venv/bin/python benchmarks/verifier_quality.py --model qwen2.5-coder-1.5b --limit 200 \\
        --out benchmarks/results/verifier_quality.md --audit benchmarks/results/verifier_audit
    .venv/bin/python benchmarks/verifier_quality.py --model qwen2.5-coder-1.5b --limit 50 --probe-folds 0 \\
        --verifier rollout:k=4,max_prefixes=3,max_tokens=384 --verifier step_judge --verifier oracle \\
        --out benchmarks/results/verifier_quality_rollout.md --audit benchmarks/results/verifier_audit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redraft.context import SolveContext
from redraft.report.metrics import auroc
from redraft.stats import wilson_interval
from redraft.steps import split_steps
from redraft.store import Store
from redraft.tasks import Problem, Task, TaskView, load_task
from redraft.verifiers import make_verifier_from_spec, spec_uses_oracle
from redraft.verifiers.base import Score
from redraft.verifiers.combinators import weighted_score
from redraft.verifiers.spec import parse_spec
from redraft.voting import weighted_vote

REPO = Path(__file__).resolve().parent.parent

# rollout is left out by default: k continuations per prefix per candidate cost ~k * prefixes times
# the sampling itself; measure it on a smaller slice with --verifier rollout:...
# cheapest first: they are scored verifier by verifier, so a run cut short has the cheap ones complete
DEFAULT_VERIFIERS = ["oracle", "self_certainty", "self_certainty:signal=logprob", "self_certainty:signal=entropy",
                     "judge:critique=false", "judge", "weighted:judge=0.5,self_certainty=0.5", "step_judge", "rating"]
VERIFIER_ROLES_EXCLUDED = {"solver"}  # a verifier's cost is every role but the solver's samples


@dataclass
class ProblemSamples:
    problem: Problem
    texts: list[str]
    calls: list[dict[str, Any]]  # the stored solver sample calls, and certainty notes (the verifiers' trace)
    run_id: str


def stored_samples(db: Path, model: str, data: str, n: int, wanted: set[str]) -> dict[str, tuple[list, str]]:
    """problem id -> (solver sample calls, run id) from stored self-consistency runs of this model/data/n."""
    if not db.exists():
        return {}
    store = Store(db)
    found: dict[str, tuple[list, str]] = {}
    noted: set[str] = set()

    def notes_in(record: Any) -> bool:
        return any(e.get("type") == "certainty" for e in record.trace)

    try:
        for run in store.list_runs():
            if (run.strategy != "self_consistency" or run.model != model or run.strategy_options.get("n") != n
                    or Path(str(run.task_options.get("data", ""))).resolve() != Path(data).resolve()):
                continue
            for record in store.results(run.id):
                if record.problem_id not in wanted or record.problem_id in noted or record.error:
                    continue
                calls = [e for e in record.trace if e.get("type") == "call" and e.get("role") == "solver"]
                if sum(len(c["outputs"]) for c in calls) >= n and (record.problem_id not in found or notes_in(record)):
                    # a run sampled with certainty=k noted each sample's self-certainty: self_certainty
                    # then reads it instead of replaying the sample, so such a run is preferred
                    notes = [e for e in record.trace if e.get("type") == "certainty"]
                    found[record.problem_id] = (calls + notes, run.id)
                    if notes:
                        noted.add(record.problem_id)
    finally:
        store.close()
    return found


def chosen_problems(task: Task, ids: str | None, limit: int, offset: int) -> list[Problem]:
    """``ids`` (comma-separated, e.g. the problems a hand check covers) when given, else the slice."""
    wanted = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    return task.problems(ids=wanted) if wanted else task.problems(limit=limit, offset=offset)


def gather_candidates(args: argparse.Namespace, task: Task) -> list[ProblemSamples]:
    problems = chosen_problems(task, args.ids, args.limit, args.offset)
    wanted = {p.id for p in problems}
    found: dict[str, tuple[list, str]] = {}
    for db in [Path(p) for p in args.samples_db] + [Path(args.db)]:
        for pid, value in stored_samples(db, args.model, args.data, args.n, wanted - set(found)).items():
            found[pid] = value
    missing = [p for p in problems if p.id not in found]
    if missing:
        say(f"sampling {len(missing)} problem(s) with self_consistency n={args.n} into {args.db}")
        command = [str(REPO / ".venv/bin/redraft"), "run", "--task", args.task, "--data", args.data,
                   "--db", args.db, "--model", args.model, "--strategy", "self_consistency", "--n", str(args.n),
                   "-o", "certainty=10",
                   "--ids", ",".join(p.id for p in missing), "--concurrency", "1", "--resume", "--quiet"]
        subprocess.run(command, check=True)
        for pid, value in stored_samples(Path(args.db), args.model, args.data, args.n, wanted - set(found)).items():
            found[pid] = value
    out = []
    for problem in problems:
        if problem.id not in found:
            raise SystemExit(f"no stored samples for problem {problem.id}")
        calls, run_id = found[problem.id]
        texts = [t for c in calls if c.get("type") == "call" for t in c["outputs"]][: args.n]
        out.append(ProblemSamples(problem, texts, calls, run_id))
    return out


_EQUATION = re.compile(r"(?<![\w.])(\(?-?\$?\d[\d,]*(?:\.\d+)?(?:\s*[-+*/x×÷]\s*\(?\$?\d[\d,]*"
                       r"(?:\.\d+)?\)?)+)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)"
                       # the written result ends there: "= 10" in "= 10 + 8 = 18" is not a result
                       r"(?!\d|[.,]\d|\s*[-+*/x×÷]\s*\(?\$?\d)")


def first_arithmetic_error(steps: list[str]) -> int | None:
    """The first step holding a written calculation "a op b ... = c" that is false (an automatic proxy for
    "where the arithmetic first goes wrong": it sees only explicit equations, not wrong set-ups)."""
    for index, step in enumerate(steps):
        for match in _EQUATION.finditer(step.replace("\\times", "*").replace("\\div", "/")):
            expression = match.group(1).replace(",", "").replace("$", "").replace("x", "*").replace("×", "*")
            expression = expression.replace("÷", "/")
            try:
                value = eval(expression, {"__builtins__": {}})  # digits, operators and parentheses only
            except (SyntaxError, ZeroDivisionError, TypeError):
                continue
            written = float(match.group(2).replace(",", ""))
            if abs(value - written) > 1e-6 * max(1.0, abs(written)) and abs(value - written) >= 0.01:
                return index
    return None


def split_of(spec: str) -> str:
    """The step split a spec's step verifier uses (its split= option, else auto)."""
    return spec.split("split=")[1].split(",")[0].rstrip(")") if "split=" in spec else "auto"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_done(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a run killed mid-write: that pair is scored again
                say(f"{path}:{number}: not a JSON row (cut off?); that pair will be scored again")
                continue
            done[(row["problem_id"], row["verifier"])] = row
    return done


def composed_row(spec: str, done: dict[tuple[str, str], dict[str, Any]], problem_id: str) -> dict[str, Any] | None:
    """A ``weighted`` spec's row for one problem from its members' stored rows, with no model call, or None
    when it is not a weighted spec or a member is not scored yet. Each candidate's score is combined by
    ``weighted_score``, as the weighted verifier combines its members; its cost is its members' (each
    paid for once, when that member was scored)."""
    name, args = parse_spec(spec)
    if name != "weighted":
        return None
    members = []
    for member, weight in args:
        # a nested member is written name(k=v); stored on its own it is keyed name:k=v
        flat = member[:-1].replace("(", ":", 1) if member.endswith(")") else member
        row = done.get((problem_id, member)) or done.get((problem_id, flat))
        if row is None:
            return None
        members.append((row, float(weight)))
    combined = [weighted_score([(row["verifier"], Score(row["scores"][i], row["steps"][i], row["first_error"][i]),
                                 weight) for row, weight in members])
                for i in range(len(members[0][0]["scores"]))]
    cost: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row, _ in members:
        for role, fields in row["cost"].items():
            for key, value in fields.items():
                if isinstance(value, (int, float)):
                    cost[role][key] += value
    return {"problem_id": problem_id, "verifier": spec, "scores": [c.value for c in combined],
            "steps": [c.steps for c in combined], "first_error": [c.first_error for c in combined],
            "cost": {role: dict(fields) for role, fields in cost.items()},
            "replay_mismatches": sum(row["replay_mismatches"] for row, _ in members),
            "seconds": round(sum(row["seconds"] for row, _ in members), 2), "composed": True}


async def score_problem(spec: str, samples: ProblemSamples, task: Task, models: dict[str, Any],
                        store: Store) -> dict[str, Any]:
    """Score all candidates of one problem with one verifier, in a context of its own."""
    problem = samples.problem
    oracle = None
    if spec_uses_oracle(spec):
        def oracle(text: str) -> bool:
            return task.grade(problem, task.extract(text, problem), text).correct
    ctx = SolveContext(problem=problem, task=TaskView(task), models=models, cache=store, oracle=oracle,
                       trace=[dict(call) for call in samples.calls])
    verifier = make_verifier_from_spec(spec)
    started = time.perf_counter()
    scores = await asyncio.gather(*(verifier.score(ctx, text) for text in samples.texts))
    roles = {role: vars(cost) for role, cost in ctx.cost.by_role.items() if role not in VERIFIER_ROLES_EXCLUDED}
    events = [e["type"] for e in ctx.trace[len(samples.calls):] if e.get("type") != "call"]
    return {"problem_id": problem.id, "verifier": spec, "scores": [s.value for s in scores],
            "steps": [list(s.steps) if s.steps is not None else None for s in scores],
            "first_error": [s.first_error for s in scores], "cost": roles,
            "replay_mismatches": events.count("certainty_replay_mismatch"),
            "seconds": round(time.perf_counter() - started, 2)}


def embed_all(model: str, items: list[ProblemSamples], cache: Path) -> tuple[Any, int]:
    """The solver's embedding of every candidate, and the prompt tokens that cost. Kept in ``cache``
    (one npz, by problem id and candidate count) so a re-run embeds only the problems it has not seen."""
    import numpy as np

    from redraft.verifiers.probe import llamacpp_embedder, probe_text

    stored: dict[str, Any] = {}
    if cache.exists():
        with np.load(cache) as archive:
            stored = {key: archive[key] for key in archive.files}
    embedder = None
    rows, tokens, new = [], 0, 0
    missing = sum(f"{s.problem.id}/{len(s.texts)}" not in stored for s in items)
    for samples in items:
        key = f"{samples.problem.id}/{len(samples.texts)}"
        if key not in stored:
            embedder = embedder or llamacpp_embedder(model)
            features, used = embedder.embed([probe_text(samples.problem.question, t) for t in samples.texts])
            stored[key] = np.append(np.asarray(features, dtype=np.float32),
                                    np.full((len(samples.texts), 1), used / len(samples.texts), np.float32), axis=1)
            new += 1
            say(f"[{new}/{missing}] embedded problem {samples.problem.id}'s candidates ({used} tokens)")
            if new % 10 == 0:  # an interrupted run keeps what it embedded
                np.savez(cache, **stored)
        rows.append(stored[key][:, :-1])  # the last column holds the tokens that embedding cost
        tokens += float(stored[key][:, -1].sum())
    if new:
        np.savez(cache, **stored)
        say(f"embedded {new} problems' candidates (cache: {cache})")
    return rows, tokens


def probe_rows(args: argparse.Namespace, items: list[ProblemSamples], labels: list[list[bool]]) -> list[dict]:
    """Cross-validated probe scores, K folds by problem (problems in order, fold = position mod K)."""
    import numpy as np

    from redraft.verifiers.probe import LogisticProbe, ProbeError

    features, tokens = embed_all(args.model, items, Path(args.db).with_suffix(".embeddings.npz"))
    folds = args.probe_folds
    rows = []
    per_candidate_tokens = tokens / max(1, sum(len(s.texts) for s in items))
    for index, samples in enumerate(items):
        train = [i for i in range(len(items)) if i % folds != index % folds]
        x = np.vstack([features[i] for i in train]) if train else np.zeros((0, 1))
        y = [ok for i in train for ok in labels[i]]
        try:
            probe = LogisticProbe.fit(x, y, l2=args.probe_l2)
            scores = [float(v) for v in probe.predict(features[index])]
        except ProbeError:  # a fold with one class only: no evidence
            scores = [0.5] * len(samples.texts)
        rows.append({"problem_id": samples.problem.id, "verifier": f"probe ({folds}-fold CV)", "scores": scores,
                     "steps": [None] * len(scores), "first_error": [None] * len(scores),
                     "cost": {"probe": {"calls": len(scores), "prompt_tokens": per_candidate_tokens * len(scores),
                                        "completion_tokens": 0}}, "replay_mismatches": 0, "seconds": 0.0})
    return rows


def summarize(spec: str, rows: list[dict], items: dict[str, ProblemSamples], labels: dict[str, list[bool]],
              answers: dict[str, list[str | None]], task: Task) -> dict[str, Any]:
    pairs = [(score, ok) for row in rows for score, ok in zip(row["scores"], labels[row["problem_id"]], strict=True)]
    candidates = sum(len(row["scores"]) for row in rows)
    prompt = sum(c.get("prompt_tokens", 0) for row in rows for c in row["cost"].values())
    completion = sum(c.get("completion_tokens", 0) for row in rows for c in row["cost"].values())
    best_correct = weighted_correct = 0
    for row in rows:
        ok, scores = labels[row["problem_id"]], row["scores"]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        best_correct += ok[best]
        vote = weighted_vote(answers[row["problem_id"]], scores, task.answer_key)
        weighted_correct += vote.index is not None and ok[vote.index]
    problems = len(rows)
    stepwise = [(fe, ok) for row in rows for fe, ok, st in zip(row["first_error"], labels[row["problem_id"]],
                                                                 row["steps"], strict=True) if st is not None]
    wrong_flagged = [fe is not None for fe, ok in stepwise if not ok]
    # on wrong candidates with an explicit false equation: is the flagged step at or before it?
    split = split_of(spec)
    localised = []
    for row in rows:
        samples = items[row["problem_id"]]
        for text, ok, fe, st in zip(samples.texts, labels[row["problem_id"]], row["first_error"], row["steps"],
                                    strict=True):
            if ok or st is None:
                continue
            slip = first_arithmetic_error(split_steps(text, split))
            if slip is not None:
                localised.append(fe is not None and fe <= slip)
    return {"verifier": spec, "problems": problems, "candidates": candidates, "auroc": auroc(pairs),
            "prompt_tokens_per_candidate": prompt / candidates if candidates else 0.0,
            "completion_tokens_per_candidate": completion / candidates if candidates else 0.0,
            "best_of_n": best_correct / problems if problems else 0.0,
            "weighted_sc": weighted_correct / problems if problems else 0.0,
            "wrong_flagged": (sum(wrong_flagged) / len(wrong_flagged)) if wrong_flagged else None,
            "at_or_before_slip": (sum(localised) / len(localised)) if localised else None,
            "slips": len(localised),
            "replay_mismatches": sum(row["replay_mismatches"] for row in rows)}


AUDIT_ENTRY = re.compile(r"^## \d+\. problem (\S+), sample (\d+): flagged step (\w+)$", re.MULTILINE)
AUDIT_MARK = re.compile(r"^- first real error at step: *(\S+)", re.MULTILINE)
AUDIT_BLANK = "___"
AUDIT_HEADER = re.compile(r"^# First-error audit: (.+)$", re.MULTILINE)


def read_hand_check(path: Path) -> list[dict[str, Any]]:
    """The filled-in entries of an audit file: problem, sample, flagged step and the step the hand found
    (1-based; None where the hand found no wrong step: the candidate is wrong by its final answer only)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    entries = []
    heads = list(AUDIT_ENTRY.finditer(text))
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end():following.start() if following else len(text)]
        mark = AUDIT_MARK.search(body)
        if mark is None or mark.group(1) == AUDIT_BLANK:
            continue
        found = mark.group(1).lower()
        if found != "none" and not found.isdigit():
            raise ValueError(f"{path}: entry for problem {head.group(1)} sample {head.group(2)}: "
                             f"'first real error at step: {mark.group(1)}' is neither a step number nor 'none'")
        entries.append({"problem_id": head.group(1), "sample": int(head.group(2)),
                        "flagged": None if head.group(3) == "none" else int(head.group(3)),
                        "real": None if found == "none" else int(found),
                        "marked": body[mark.start():].strip()})  # the mark and the hand's reason
    return entries


def hand_marks(directory: Path, split: str, exclude: Path) -> tuple[dict[tuple[str, int], str], list[Path]]:
    """The hand marks in the other audits of ``directory`` whose verifier splits steps the same way, by
    (problem, sample), and the files they came from. A mark belongs to the candidate (its steps, read
    against the key), not to the verifier that flagged it, so a new step verifier's audit of the same
    candidates starts from them."""
    marks: dict[tuple[str, int], str] = {}
    sources = []
    for path in sorted(directory.glob("audit-*.md")):
        header = AUDIT_HEADER.search(path.read_text(encoding="utf-8"))
        if path == exclude or header is None or split_of(header.group(1)) != split:
            continue
        entries = read_hand_check(path)
        for entry in entries:
            marks.setdefault((entry["problem_id"], entry["sample"]), entry["marked"])
        if entries:
            sources.append(path)
    return marks, sources


def hand_check_summary(entries: list[dict[str, Any]]) -> str:
    """One sentence: of the hand-checked wrong candidates with a wrong step, how often the flag is at or
    before it (a flag after it, or no flag, is a miss)."""
    located = [e for e in entries if e["real"] is not None]
    hits = sum(e["flagged"] is not None and e["flagged"] <= e["real"] for e in located)
    exact = sum(e["flagged"] == e["real"] for e in located)
    unflagged = sum(e["flagged"] is None for e in located)
    return (f"hand check of {len(entries)} wrong candidates: {len(located)} have a first wrong step; the flag is at "
            f"or before it in {hits} ({exact} on it exactly, {unflagged} not flagged at all); "
            f"{len(entries) - len(located)} have no wrong step (wrong by the final answer only)")


def audit(path: Path, spec: str, rows: list[dict], items: dict[str, ProblemSamples], labels: dict[str, list[bool]],
          task: Task, split: str, limit: int = 30) -> list[dict[str, Any]]:
    """Wrong candidates with numbered steps and the flagged first error, for checking by hand. An audit
    already (partly) filled in by hand is left as it is: the hand check is the one thing a re-run cannot redo.
    A fresh audit starts from the hand marks other audits in its folder hold for the same candidates
    (``hand_marks``). Returns the hand check's entries (``read_hand_check``): none for a fresh audit
    with nothing carried over."""
    checked = read_hand_check(path)
    if checked:
        say(f"{path}: already checked by hand, left as it is (move it away to write a fresh one)")
        return checked
    marks, sources = hand_marks(path.parent, split, exclude=path)
    lines = [f"# First-error audit: {spec}", "",
             "For each wrong candidate, find by hand the first step where the arithmetic or reasoning goes "
             f"wrong and write its number in place of {AUDIT_BLANK} (or 'none' if no step is wrong and only the "
             "final answer is); the report counts how often the flagged step is at or before it.", ""]
    carried_at = len(lines)
    shown = carried = 0
    for row in rows:
        samples = items[row["problem_id"]]
        for index, (text, ok) in enumerate(zip(samples.texts, labels[row["problem_id"]], strict=True)):
            if ok or row["steps"][index] is None or shown >= limit:
                continue
            shown += 1
            flagged = row["first_error"][index]
            slip = first_arithmetic_error(split_steps(text, split))
            lines += [f"## {shown}. problem {samples.problem.id}, sample {index}: flagged step "
                      f"{'none' if flagged is None else flagged + 1}", "", samples.problem.question, "",
                      f"Answer key: {task.reference(samples.problem)}", ""]
            for number, step in enumerate(split_steps(text, split), start=1):
                value = row["steps"][index][number - 1] if number - 1 < len(row["steps"][index]) else None
                mark = ("  <-- flagged" if flagged == number - 1 else "") + \
                    ("  <-- first false equation (automatic)" if slip == number - 1 else "")
                shown_value = "" if value is None else f" ({value:.2f})"
                lines.append(f"{number}.{shown_value} {step.replace(chr(10), ' ')}{mark}")
            hand = marks.get((samples.problem.id, index))
            carried += hand is not None
            lines += ["", hand or f"- first real error at step: {AUDIT_BLANK}", ""]
    if carried:
        lines[carried_at:carried_at] = [
            f"Hand marks of {carried} entries carried over from {', '.join(p.name for p in sources)} (the same "
            "candidates split into the same steps; how they were checked: its header). Check the rest by hand.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return read_hand_check(path) if carried else []


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="the solver (and default judge)")
    parser.add_argument("--judge-model", default=None, help="a different model for the verifier roles")
    parser.add_argument("--task", default="gsm8k")
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/gsm8k/train.jsonl"))
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--ids", default=None,
                        help="comma-separated problem ids instead of --offset/--limit (e.g. the hand-checked ones)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--samples-db", action="append", default=None,
                        help="databases with stored self-consistency runs to reuse (default: benchmarks/spine.db)")
    parser.add_argument("--db", default=str(REPO / "benchmarks/verifier_quality.db"),
                        help="where new samples and the verifiers' call cache go")
    parser.add_argument("--verifier", action="append", default=None, help="a verifier spec (repeatable)")
    parser.add_argument("--probe-folds", type=int, default=5, help="0: no probe")
    parser.add_argument("--probe-l2", type=float, default=10.0)
    parser.add_argument("--scores", default=None, help="JSONL of scored (problem, verifier) pairs")
    parser.add_argument("--out", default=None, help="markdown report (also printed)")
    parser.add_argument("--audit", default=None, help="directory for the step verifiers' first-error audits")
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    args.samples_db = args.samples_db or [str(REPO / "benchmarks/spine.db")]
    specs = args.verifier or DEFAULT_VERIFIERS
    for spec in specs:
        make_verifier_from_spec(spec)  # a bad spec fails now, not after sampling
    # rows are keyed by (problem, verifier), so one file serves any slice of the same candidates; a
    # different judge model scores differently, so it gets its own file
    tag = f"{args.model}-{args.task}-n{args.n}" + (f"-judge-{args.judge_model}" if args.judge_model else "")
    scores_path = Path(args.scores or REPO / f"benchmarks/results/verifier_scores-{tag}.jsonl")
    scores_path.parent.mkdir(parents=True, exist_ok=True)

    task = load_task(args.task, data=args.data)
    items_list = gather_candidates(args, task)
    items = {s.problem.id: s for s in items_list}
    labels = {pid: [task.grade(s.problem, task.extract(t, s.problem), t).correct for t in s.texts]
              for pid, s in items.items()}
    answers = {pid: [task.extract(t, s.problem) for t in s.texts] for pid, s in items.items()}

    done = load_done(scores_path)
    for spec in specs:  # a weighted mean of verifiers already scored costs nothing more
        for samples in items_list:
            if (samples.problem.id, spec) not in done:
                row = composed_row(spec, done, samples.problem.id)
                if row is not None:
                    done[(samples.problem.id, spec)] = row
    todo = [(spec, s) for spec in specs for s in items_list if (s.problem.id, spec) not in done]
    if todo:
        from redraft.models import load_model

        solver = load_model(args.model, parallel=args.parallel, say=say)
        models: dict[str, Any] = {"solver": solver}
        if args.judge_model:
            judge = load_model(args.judge_model, parallel=args.parallel, say=say)
            models["judge"] = judge  # judge, step_judge, rating; rollouts and replays stay on the solver
        store = Store(args.db)
        with open(scores_path, "a") as handle:
            for number_done, (spec, samples) in enumerate(todo, start=1):
                row = await score_problem(spec, samples, task, models, store)
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                done[(samples.problem.id, spec)] = row
                say(f"[{number_done}/{len(todo)}] {spec} on problem {samples.problem.id}: {row['seconds']}s")
        for model in set(models.values()):
            await model.close()
    rows_by_spec: dict[str, list[dict]] = defaultdict(list)
    for spec in specs:
        rows_by_spec[spec] = [done[(s.problem.id, spec)] for s in items_list]
    if args.probe_folds > 1:
        probe = probe_rows(args, items_list, [labels[s.problem.id] for s in items_list])
        rows_by_spec[probe[0]["verifier"]] = probe

    summaries = [summarize(spec, rows, items, labels, answers, task) for spec, rows in rows_by_spec.items()]
    problems = len(items_list)
    majority = sum(weighted_vote(answers[pid], None, task.answer_key).index is not None
                   and labels[pid][weighted_vote(answers[pid], None, task.answer_key).index] for pid in items)
    first = sum(labels[pid][0] for pid in items)
    pass_at_n = sum(any(labels[pid]) for pid in items)
    positives = sum(sum(v) for v in labels.values())
    candidates = sum(len(v) for v in labels.values())

    def acc(k: int) -> str:
        low, high = wilson_interval(k, problems)
        return f"{k / problems:.3f} [{low:.2f}, {high:.2f}]"

    slice_name = (f"problems {', '.join(s.problem.id for s in items_list)}" if args.ids
                  else f"problems {args.offset}-{args.offset + problems - 1}")
    lines = [f"## Verifier quality: {args.task} {slice_name}, "
             f"{args.n} samples each from {args.model}" + (f", verifiers on {args.judge_model}" if args.judge_model
                                                          else ""), "",
             f"{candidates} candidates, {positives} correct. Baselines: first sample {acc(first)}, "
             f"self-consistency@{args.n} {acc(majority)}, pass@{args.n} {acc(pass_at_n)} "
             "(accuracy [95% Wilson interval]).", "",
             "| verifier | AUROC | best-of-n | weighted SC | prompt tok/cand | completion tok/cand "
             "| wrong: step flagged | wrong: flagged at/before first false equation | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        notes = []
        if s["replay_mismatches"]:
            notes.append(f"{s['replay_mismatches']} replays differed (scored 0.5)")
        if "oracle" in s["verifier"]:
            notes.append("uses the answer key (ceiling)")
        best = round(s["best_of_n"] * problems)
        lines.append(f"| {s['verifier']} | {number(s['auroc'])} | {acc(best)} | {s['weighted_sc']:.3f} | "
                     f"{s['prompt_tokens_per_candidate']:.0f} | {s['completion_tokens_per_candidate']:.0f} | "
                     f"{number(s['wrong_flagged'], 2)} | {number(s['at_or_before_slip'], 2)} (of {s['slips']}) | "
                     f"{'; '.join(notes)} |")
    lines += ["", "Step columns: among wrong candidates, the share where the verifier flags a first error, and, "
              "where a written equation \"a op b = c\" is false, the share where the flag is at or before the "
              "first such step (an automatic check of arithmetic slips only; the audit files list 30 wrong "
              "candidates per step verifier for the hand check of the rest).",
              "", f"Scores: {shown_path(scores_path)}. "
              "Command: `" + " ".join(["python", *sys.argv]) + "`"]
    step_specs = [spec for spec, rows in rows_by_spec.items()
                  if any(st is not None for row in rows for st in row["steps"])]
    if args.audit:
        directory = Path(args.audit)
        directory.mkdir(parents=True, exist_ok=True)
        try:  # a hand mark that is not a step number stops the report with its entry named
            checked = [(spec, audit(audit_path(directory, spec), spec, rows_by_spec[spec], items, labels, task,
                                    split_of(spec))) for spec in step_specs]
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        lines += [f"\nFirst errors checked by hand, {spec} ({shown_path(audit_path(directory, spec))}): "
                  f"{hand_check_summary(entries)}." for spec, entries in checked if entries]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 0


def audit_path(directory: Path, spec: str) -> Path:
    return directory / ("audit-" + "".join(c if c.isalnum() else "_" for c in spec) + ".md")


def shown_path(path: Path) -> Path:
    resolved = path.resolve()
    return resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else path


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
