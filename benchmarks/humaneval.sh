#!/usr/bin/env bash
# Issue 5: HumanEval pass@1 (hidden tests, graded in the sandbox) for qwen2.5-coder-0.5b and -1.5b:
#   cot (greedy), self_debug (up to 3 revision rounds, visible docstring examples as tests; and a
#   variant that re-draws, at T=0.7, a revision that copies tested code back),
#   pgs (property-generated solver, up to 3 rounds), and best_of_n scored by the execution verifier
#   with N chosen so its completion tokens per problem match self_debug's on the same problems.
# Resumable: every run continues the latest run of the same configuration in $DB (--resume).
# Then: the pass@1 table (paired against cot) and, for self_debug/pgs, accuracy after each round with
# the fraction of problems each round fixes and breaks.
# Env: LIMIT (problems from the start, default all 164), MODELS, DB, CONCURRENCY.
set -euo pipefail
cd "$(dirname "$0")/.."
REDRAFT=${REDRAFT:-.venv/bin/redraft}
PY=${PY:-.venv/bin/python}
DB=${DB:-benchmarks/humaneval.db}
LIMIT=${LIMIT:-164}
MODELS=${MODELS:-"qwen2.5-coder-0.5b qwen2.5-coder-1.5b"}
CONCURRENCY=${CONCURRENCY:-4}
OUT=benchmarks/results
mkdir -p "$OUT"

run() { $REDRAFT run --task humaneval --db "$DB" --resume --quiet --limit "$LIMIT" "$@"; }

# N for best_of_n: self_debug's mean completion tokens per problem over cot's (at least 2), on the
# problems both finished
matched_n() {
  $PY - "$DB" "$1" <<'PYEOF'
import sys
from redraft.store import Store
store = Store(sys.argv[1])
runs = [r for r in store.list_runs() if r.model == sys.argv[2] and r.task == "humaneval"]
def tokens(strategy):
    # the greedy self_debug (repeat_temperature 0), not its re-drawing variant
    run = next(r for r in reversed(runs) if r.strategy == strategy
               and not r.strategy_options.get("repeat_temperature"))
    return {x.problem_id: x.cost.completion_tokens for x in store.results(run.id)}
cot, debug = tokens("cot"), tokens("self_debug")
shared = set(cot) & set(debug)
ratio = sum(debug[p] for p in shared) / max(1, sum(cot[p] for p in shared))
print(max(2, round(ratio)))
PYEOF
}

for model in $MODELS; do
  run --model "$model" --strategy cot --concurrency "$CONCURRENCY"
  run --model "$model" --strategy self_debug -o rounds=3 --concurrency "$CONCURRENCY"
  # the matched baseline right after the run it matches, so a cut-off session leaves a whole comparison
  n=$(matched_n "$model")
  echo "best_of_n for $model: N=$n (matched to self_debug's completion tokens)" >&2
  run --model "$model" --strategy best_of_n --n "$n" -o verifier=execution --concurrency "$CONCURRENCY"
done
for model in $MODELS; do  # self_debug re-drawing a revision that copies tested code back, at T=0.7
  run --model "$model" --strategy self_debug -o rounds=3 -o repeat_temperature=0.7 --concurrency "$CONCURRENCY"
done
for model in $MODELS; do  # pgs last: its Tester writes properties for every problem, the costliest run
  run --model "$model" --strategy pgs -o rounds=3 --concurrency "$CONCURRENCY"
done
{
  $PY benchmarks/summarize_runs.py --db "$DB" --title "HumanEval pass@1 (first $LIMIT problems), graded in the sandbox"
  echo
  $PY benchmarks/code_rounds.py --db "$DB"
} > "$OUT/humaneval.md"
cat "$OUT/humaneval.md"
