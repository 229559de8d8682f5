#!/usr/bin/env bash
# The GPU checks of the deep methods, in one run on a machine with a CUDA GPU (docs/deep.md
# "GPU"): the CUDA tests, inference speed (float32 and bf16-mixed), training memory and speed,
# and the CPU suite of the deep methods with the GPU visible ("auto" devices pick it).
#   OUT=gpu-out bash benchmarks/gpu_check.sh
# Each step has its own time limit so one overrun does not lose the others' results.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
step() { echo "== $(date +%T) $*"; }
step machine
nvidia-smi -L
$PY -c "import torch, lightning, numpy, rasterio; print('torch', torch.__version__, 'lightning', lightning.__version__, 'numpy', numpy.__version__, 'rasterio', rasterio.__version__)"
step CUDA tests
timeout 200 $PY -m pytest -q -rA -s -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/test_gpu.log" | grep -E "RMSE|vs float32|passed|failed|FAILED|ERROR|Error"
step inference speed, float32 and bf16-mixed
for p in 32 bf16-mixed; do
  timeout 75 $PY benchmarks/bench_deep.py --device cuda --batch 8 --precision "$p" --repeat 2 \
    --out "$OUT/deep_gpu_${p%%-*}.json" 2>&1 | tail -20
done
step training memory and speed
timeout 120 $PY benchmarks/bench_train.py --dates 10 --threads 8 --out "$OUT/train" 2>&1 | tail -5
mv "$OUT/train/train.json" "$OUT/train_gpu.json" 2>/dev/null; rmdir "$OUT/train" 2>/dev/null
step deep-method suite with the GPU visible
timeout 90 $PY -m pytest -q -rf -p no:cacheprovider -n 8 tests/test_dl_*.py > "$OUT/test_dl_on_gpu_machine.log" 2>&1
tail -15 "$OUT/test_dl_on_gpu_machine.log"
step done
