#!/usr/bin/env bash
# Many quality.py runs at once on one GPU machine (16 cores): more seeds of the default recipe,
# and the same three modes at a GPU-sized budget. Each run is one process and one part file;
# the parts come back as one archive, merged per seed here with `quality.py --merge`.
#
#   benchmarks/gpu_quality_study.sh OUT_DIR [SECONDS]
#
# Seeds 3..5 train the default model for the default steps on the GPU and answer on the CPU
# (one thread each, as the CPU benchmark does); "base" trains models.sizes' GPU stack for
# 4000 steps (two threads each). Training on the GPU changes the arithmetic, not the recipe.
set -uo pipefail
out=${1:?usage: gpu_quality_study.sh OUT_DIR [SECONDS]}
limit=${2:-520}
parts=$out/parts
mkdir -p "$parts"
export PYTHONUNBUFFERED=1 VERACITY_HOME=$out/home
python=${PYTHON:-python3}
modes=${MODES:-dense apr all}
smoke=${SMOKE:-}  # e.g. "--steps 20 --n 60 --eval-per-domain 5" for a dry run

run() {  # name threads args...
  local name=$1 threads=$2
  shift 2
  timeout "$limit" "$python" benchmarks/quality.py --threads "$threads" "$@" $smoke \
    --out "$parts/$name.json" >"$parts/$name.log" 2>&1
  echo "$name rc=$? $(date +%T)" >>"$parts/done.txt"
}

"$python" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" \
  >"$parts/env.txt" 2>&1
nproc >>"$parts/env.txt"
pids=()
base=(--model n_layer=4 --model d_model=256 --model probe_layer=1 --model warmup_steps=100)
for seed in 3 4 5; do
  for mode in $modes; do
    run "seed$seed-$mode" 1 --seed "$seed" --modes "$mode" --eval-per-domain 300 &
    pids+=($!)
  done
done
for mode in $modes; do
  run "base-$mode" 2 --seed 0 --modes "$mode" --steps 4000 --eval-per-domain 300 "${base[@]}" &
  pids+=($!)
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 30 >"$parts/gpu.csv" 2>&1 &
smi=$!
wait "${pids[@]}"
kill "$smi" 2>/dev/null
tar czf "$out/parts.tgz" -C "$out" parts
