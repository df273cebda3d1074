#!/usr/bin/env bash
# Issue 4 (part b): magicore, glore (both / global-only / local-only), iad, hsr, dser, beside
# self-consistency and best-of-N, every run under the same per-problem completion-token budget,
# on a slice of the GSM8K dev split (../shared/data/gsm8k/train.jsonl).
#
# Claims checked:
#   - MAgICoRe (k=4 drafts) vs self-consistency and best-of-k with twice the samples (n=8):
#     "beats SC and best-of-k while using less than half the samples" (samples: see drafts/p
#     and refinements/p in the rounds table).
#   - GLoRe: global+local reranked beats global-only, local-only, and best-of-three (best_of_n n=3
#     with the same outcome verifier).
#
# Resumable: every run continues the latest run of the same configuration in $DB (--resume).
# Knobs (environment): MODEL, LIMIT, OFFSET, BUDGET (completion tokens per problem), OUTCOME and
# STEP (verifier names), CONCURRENCY, DB, OUT, ONLY (a regex over run labels, to run a subset).
#
#   benchmarks/strategies_refine_b.sh                                   # the full measurement
#   MODEL=qwen2.5-coder-0.5b LIMIT=2 OUTCOME=rating STEP=rating DB=/tmp/rb.db benchmarks/strategies_refine_b.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REDRAFT=${REDRAFT:-.venv/bin/redraft}
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-qwen2.5-coder-1.5b}
LIMIT=${LIMIT:-100}
OFFSET=${OFFSET:-0}
BUDGET=${BUDGET:-4096}
OUTCOME=${OUTCOME:-judge}
STEP=${STEP:-step_judge}
CONCURRENCY=${CONCURRENCY:-2}
DB=${DB:-benchmarks/refine_b.db}
OUT=${OUT:-benchmarks/results}
ONLY=${ONLY:-.}
DATA=../shared/data/gsm8k/train.jsonl
mkdir -p "$OUT"

# fail early, with one line, if a verifier named here is not registered
$PY - "$OUTCOME" "$STEP" <<'EOF'
import sys
from redraft.verifiers.base import VERIFIERS, load_builtins
load_builtins()
missing = [name for name in sys.argv[1:] if name.split(":")[0].split("(")[0] not in VERIFIERS]
if missing:
    sys.exit(f"verifier(s) {', '.join(missing)} not registered (have: {', '.join(sorted(VERIFIERS))}); "
             "set OUTCOME=/STEP= to registered ones")
EOF

run() {  # run LABEL STRATEGY [-o KEY=VALUE ...]
  local label=$1 strategy=$2
  shift 2
  [[ $label =~ $ONLY ]] || return 0
  echo "== $label" >&2
  $REDRAFT run --task gsm8k --data "$DATA" --db "$DB" --model "$MODEL" --limit "$LIMIT" --offset "$OFFSET" \
    --budget "$BUDGET" --concurrency "$CONCURRENCY" --resume --quiet --strategy "$strategy" "$@"
}

# baselines at the same budget
run sc8 self_consistency -o n=8
run bon8 best_of_n -o n=8 -o verifier="$OUTCOME"
run bon3 best_of_n -o n=3 -o verifier="$OUTCOME"
# MAgICoRe: 4 drafts, up to 2 rounds on the top 2
run magicore magicore -o k=4 -o refine_top=2 -o max_rounds=2 -o outcome_verifier="$OUTCOME" -o step_verifier="$STEP"
# GLoRe: both refiners, and each alone
run glore glore -o refiners=both -o outcome_verifier="$OUTCOME" -o step_verifier="$STEP"
run glore_global glore -o refiners=global -o outcome_verifier="$OUTCOME" -o step_verifier="$STEP"
run glore_local glore -o refiners=local -o outcome_verifier="$OUTCOME" -o step_verifier="$STEP"
# the others
run iad iad -o n=4 -o rounds=2 -o beam=2 -o verifier="$OUTCOME"
run hsr hsr -o n=3 -o rounds=2 -o verifier="$OUTCOME"
run dser dser -o chains=4 -o iterations=2 -o verifier="$OUTCOME"

TITLE="GSM8K dev split (train.jsonl) problems $OFFSET..$((OFFSET + LIMIT - 1)), $MODEL, budget $BUDGET tokens/problem"
$PY benchmarks/summarize_runs.py --db "$DB" --title "$TITLE" --baseline self_consistency > "$OUT/refine_b_summary.md"
$PY benchmarks/refine_rounds.py --db "$DB" --title "$TITLE: rounds and flips" > "$OUT/refine_b_rounds.md"
cat "$OUT/refine_b_summary.md" "$OUT/refine_b_rounds.md"
