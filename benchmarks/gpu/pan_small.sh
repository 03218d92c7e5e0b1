#!/usr/bin/env bash
# pan-small on a lent GPU in one device call (see docs/reference-model.md, "pan-small on a GPU").
# Carried: .device (from benchmarks/gpu/prepare.sh). Writes its tables and logs to $OUT.
#   STEPS: global training steps of small.yaml to run (stage 1 is its first 10,000; the
#   learning-rate schedules follow the config's totals). The weights stay on the device.
#   LIMIT: episodes per pan-core task (empty: full runs).
#   MFU_STEPS: timed steps per stage of the MFU table (default 10).
# On this CPU machine the same script runs end to end with, for example,
#   OUT=/tmp/out DEVICE=cpu CONFIG=reference_model/configs/tiny.yaml STEPS=4 LIMIT=1 \
#     SITE=none TASKS=agent-sim,counterfactual bash benchmarks/gpu/pan_small.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:?set OUT to the folder for the results}
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-reference_model/configs/small.yaml}
STEPS=${STEPS:-10600}
LIMIT=${LIMIT:-}
TASKS=${TASKS:-}
SITE=${SITE:-.device/site.txz}
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
if [ "$SITE" != none ]; then
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('/tmp', filter='data')" "$SITE"
  # panbench itself, with its task specs as the package panbench.tasks (setup.py), no network.
  python3 -m pip install -q --no-deps --no-index --no-build-isolation --target /tmp/panbench-site .
  export PYTHONPATH=/tmp/panbench-site:/tmp/site312
  PANBENCH=(python3 -m panbench.cli)
  PYTHON=python3
else
  PYTHON=${PY:-.nox/tests/bin/python}
  PANBENCH=("$PYTHON" -m panbench.cli)
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PYTHON" benchmarks/bench_train_mfu.py --config "$CONFIG" --device "$DEVICE" --steps "${MFU_STEPS:-10}" \
  | tee "$OUT/mfu.md"
start=$(date +%s)
"${PANBENCH[@]}" train --config "$CONFIG" --out "$OUT/run" --max-steps "$STEPS" \
  --device "$DEVICE" 2>&1 | tee "$OUT/train.log"
echo "training: $(($(date +%s) - start)) s for $STEPS steps" | tee -a "$OUT/train.log"
cp "$OUT/run/log.csv" "$OUT/train_log.csv"
what=(--suite pan-core)
[ -n "$TASKS" ] && what=(--tasks "$TASKS")
extra=()
[ -n "$LIMIT" ] && extra=(--limit "$LIMIT")
start=$(date +%s)
"${PANBENCH[@]}" evaluate --model pan-ref --model-args "path=$OUT/run/model" "${what[@]}" \
  --device "$DEVICE" --out "$OUT/eval" --no-progress "${extra[@]}" 2>&1 | tee "$OUT/eval.log"
echo "evaluation: $(($(date +%s) - start)) s" | tee -a "$OUT/eval.log"
cp "$OUT/eval/results.json" "$OUT/results.json"
# Only $OUT's first two levels come back, at most 8 files of 16 MiB: keep the small ones.
rm -rf "$OUT/run" "$OUT/eval"
