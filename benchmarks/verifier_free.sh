#!/usr/bin/env bash
# Issue 3, the verifiers that need no model call: self-certainty (three signals), program_output (the
# solution's own Python run in the sandbox), their mean, and the oracle ceiling, on the samples of the
# spine's 1.5B self-consistency run (benchmarks/spine.db), over the first LIMIT problems (default: as
# many as that run has finished from problem 0 on). That run sampled with -o certainty=10, so each
# sample's certainty is stored. With PROBE_LIMIT set, also the probe (5-fold cross-validated by
# problem) on the first PROBE_LIMIT problems, beside the same free verifiers on that slice: the probe
# needs the solver's embedding of every candidate (prompt processing, about as slow here as decoding;
# cached in benchmarks/verifier_quality.embeddings.npz, so a cut run resumes).
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
FREE=(--verifier oracle --verifier self_certainty --verifier self_certainty:signal=logprob
      --verifier self_certainty:signal=entropy --verifier program_output
      --verifier weighted:program_output=0.5,self_certainty=0.5)
$PY benchmarks/verifier_quality.py --model qwen2.5-coder-1.5b --limit "$LIMIT" --probe-folds 0 "${FREE[@]}" \
  --out benchmarks/results/verifier_quality_free.md
if [ -n "${PROBE_LIMIT:-}" ]; then
  $PY benchmarks/verifier_quality.py --model qwen2.5-coder-1.5b --limit "$PROBE_LIMIT" --probe-folds 5 "${FREE[@]}" \
    --out benchmarks/results/verifier_quality_probe.md
fi
