#!/usr/bin/env bash
# The GPU checks of the deep methods, in one run on a machine with a CUDA GPU (docs/deep.md
# "GPU"): the CUDA tests, inference speed (float32 and bf16-mixed) and training speed.
#   OUT=gpu-out bash benchmarks/gpu_check.sh
# Needs ../shared/data/cia_e2starfm/geotiff_50m (bench_deep's scene) and pytest-timeout. Each
# step has its own time limit so one overrun does not lose the others' results.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
step() { echo "== $(date +%T) $*"; }
step machine
nvidia-smi -L
$PY -c "import torch, lightning, numpy, rasterio, rioxarray; print('torch', torch.__version__, 'lightning', lightning.__version__, 'numpy', numpy.__version__, 'rasterio', rasterio.__version__)"
step CUDA tests
timeout 420 $PY -m pytest -q -rA --tb=short -s -p no:cacheprovider --timeout 120 --maxfail 4 \
  tests/test_gpu.py > "$OUT/test_gpu.log" 2>&1
grep -E "RMSE|vs float32|passed|failed|FAILED|ERROR|Error" "$OUT/test_gpu.log" | tail -60
step inference speed, float32 and bf16-mixed
for p in 32 bf16-mixed; do
  timeout 60 $PY benchmarks/bench_deep.py --device cuda --batch 8 --precision "$p" --repeat 2 \
    --out "$OUT/deep_gpu_${p%%-*}.json" 2>&1 | tail -16
done
step training speed
timeout 80 $PY benchmarks/bench_train.py --dates 10 --threads 8 --out "$OUT/train" 2>&1 | tail -5
mv "$OUT/train/train.json" "$OUT/train_gpu.json" 2>/dev/null; rmdir "$OUT/train" 2>/dev/null
step done
