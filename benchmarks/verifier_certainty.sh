#!/usr/bin/env bash
# Issue 3, the no-cost part: AUROC and selection accuracy of the self-certainty signals (and the
# oracle ceiling) on the samples of the spine's 1.5B self-consistency run (benchmarks/spine.db),
# over the first LIMIT problems (default: as many as that run has finished from problem 0 on).
# No model call: that run sampled with -o certainty=10, so each sample's certainty is stored.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ -z "${LIMIT:-}" ]; then
  LIMIT=$($PY - <<'PYEOF'
from redraft.store import Store
store = Store("benchmarks/spine.db")
runs = [r for r in store.list_runs() if r.model == "qwen2.5-coder-1.5b" and r.strategy == "self_consistency"
        and r.strategy_options.get("certainty")]
done = store.done_problem_ids(runs[-1].id)
print(next(i for i, pid in enumerate(runs[-1].problem_ids + [None]) if pid not in done))
PYEOF
)
fi
$PY benchmarks/verifier_quality.py --model qwen2.5-coder-1.5b --limit "$LIMIT" --probe-folds 0 \
  --verifier self_certainty --verifier self_certainty:signal=logprob --verifier self_certainty:signal=entropy \
  --verifier oracle --scores benchmarks/results/verifier_scores_certainty.jsonl \
  --out benchmarks/results/verifier_quality_certainty.md
