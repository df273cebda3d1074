#!/usr/bin/env bash
# The spine's measurements (issue 2): cot and self-consistency n=8 on the GSM8K dev split
# (../shared/data/gsm8k/train.jsonl), and decode throughput of 1 vs 8 streams.
# Resumable: each run continues the latest run of the same configuration in benchmarks/spine.db.
# Slices: problems 0-99 for every run (the issue's slice); SC_LIMIT_05 / SC_LIMIT_15 stop self-consistency
# earlier when CPU time is short (n=8 on 100 problems is about 70 min for the 0.5B, 105 min for the 1.5B here).
# The cheap greedy runs go first, so an interrupted session still leaves both baselines whole.
set -euo pipefail
cd "$(dirname "$0")/.."
REDRAFT=${REDRAFT:-.venv/bin/redraft}
PY=${PY:-.venv/bin/python}
DB=benchmarks/spine.db
DATA=../shared/data/gsm8k/train.jsonl
OUT=benchmarks/results
mkdir -p "$OUT"

[ -s "$OUT/throughput.jsonl" ] || {
  $PY benchmarks/decode_throughput.py --model qwen2.5-coder-1.5b >> "$OUT/throughput.jsonl"
  $PY benchmarks/decode_throughput.py --model qwen2.5-coder-0.5b >> "$OUT/throughput.jsonl"
}
run() { $REDRAFT run --task gsm8k --data "$DATA" --db "$DB" --resume --quiet "$@"; }
run --model qwen2.5-coder-0.5b --strategy cot --limit 100 --concurrency 4
run --model qwen2.5-coder-1.5b --strategy cot --limit 100 --concurrency 4
run --model qwen2.5-coder-0.5b --strategy self_consistency --n 8 --limit "${SC_LIMIT_05:-100}" --concurrency 1
# certainty=10: the samples carry their self-certainty, so benchmarks/verifier_quality.py reuses them whole
run --model qwen2.5-coder-1.5b --strategy self_consistency --n 8 -o certainty=10 --limit "${SC_LIMIT_15:-100}" --concurrency 1
$PY benchmarks/summarize_runs.py --db "$DB" --title "GSM8K dev split (train.jsonl), problems from 0" > "$OUT/spine_gsm8k.md"
