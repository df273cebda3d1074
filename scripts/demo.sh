#!/usr/bin/env bash
# Set up (idempotent), then the main job on the embedded default model (qwen2.5-coder-1.5b):
# greedy chain of thought against self-consistency (n=4) on the first 8 GSM8K dev problems.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${DATA:-../shared/data/gsm8k/train.jsonl}
DB=${REDRAFT_DB:-demo.db}
.venv/bin/redraft run --task gsm8k --data "$DATA" --limit 8 --strategy cot --db "$DB" --resume
.venv/bin/redraft run --task gsm8k --data "$DATA" --limit 8 --strategy self_consistency --n 4 --db "$DB" --resume
.venv/bin/redraft runs --db "$DB"
