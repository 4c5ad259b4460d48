#!/usr/bin/env bash
# One lease of a GPU machine for issue 6, as a single prepared command (device time is scarce):
# what the machine is, the GPU kernel tests run for real (tests/cuda_sim/*, compared with the CPU
# kernels), numba-cuda's fixed costs (benchmarks/cuda_overheads.py), `rnnlab train --device cuda`
# against the same run on the CPU, the GEMMs against the recurrence (benchmarks/cuda_breakdown.py,
# with the shipped GEMM tile and a larger one) and step-tile variants at mid shapes; right after the
# tests, rnnlab's CUDA kernels against cuDNN (bench.json, and the markdown table), then an A/B of the
# previous kernels (if .old/ holds them), these with rnnlab's GEMM and these with cuBLAS's (ab.txt).
# ~9 minutes. Every stage has its own time limit and writes under $OUT (9 files, as many as come
# back), so a stage that fails or hangs leaves the others'.
#
#   bash benchmarks/cuda_device_session.sh            # on the GPU machine, from the repository root
#   CELLS=lstm SHAPES="1,100,32,64 64,50,256,512" SKIP_TESTS=1 SKIP_AB=1 SKIP_OVERHEADS=1 SKIP_CLI=1 \
#     SKIP_BREAKDOWN=1 SKIP_TILES=1 bash benchmarks/cuda_device_session.sh
#   BENCH_ARGS="--compare-launch --compare-tiles" ...   # the bench's options (default --compare-launch)
#
# Wheels found in .whl/ are installed first (to /tmp/site, ahead on the path): the machines lent
# here cannot reach a package index, and their image's numba-cuda 0.30.4 fails on its numpy 2.5
# (numpy.row_stack is gone), so a numpy 2.4 wheel travels with the call. Fetch it beforehand,
# on a machine with an index (.whl/ and .old/ are in .gitignore; carry them):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl numpy==2.4.6
set -u
OUT=${OUT:-/tmp/rnnlab-gpu}
mkdir -p "$OUT"
WORK=$(mktemp -d)  # this call's runs and per-cell JSON: a rerun in the same lease must not read the last one's
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
fi
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 RNNLAB_CACHE_DIR=/tmp/rnnlab-numba-cache
BENCH_LIMIT=${BENCH_LIMIT:-100}
TEST_LIMIT=${TEST_LIMIT:-120}
# The whole call stays inside BUDGET seconds (a run's limit is 590): a stage gets at most what is
# left, and one with under 20 s left is skipped and says so, so the call ends with every file.
BUDGET=${BUDGET:-570}
limit() {  # limit N: N seconds, or what is left of the budget if less; 0 when under 20 s remain
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 20 ]; then echo 0; elif [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}
run_for() {  # run_for N command...: the command under timeout limit(N), or a note that time ran out
  local seconds
  seconds=$(limit "$1"); shift
  if [ "$seconds" -eq 0 ]; then echo "skipped, out of time: $*" >&2; return 124; fi
  timeout "$seconds" "$@"
}

{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv
  python3 -c "import sys, numpy, numba, numba_cuda, torch; print(sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__, 'numba-cuda', numba_cuda.__version__, 'torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())"
  python3 -c "from rnnlab.kernels import cuda as g; print(g.cuda_available())"
} 2>&1 | tee "$OUT/env.txt"

if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== GPU kernel tests"
  run_for "$TEST_LIMIT" python3 -m pytest -q -rs -p no:cacheprovider -n 8 tests/cuda_sim/sim_cases.py \
    tests/cuda_sim/ptx_cases.py tests/cuda_sim/memory_cases.py >"$OUT/tests.txt" 2>&1
  echo "exit $?"; grep -E "passed|failed|error|Error" "$OUT/tests.txt" | tail -25
fi

# The bench first after the tests (it is what the issue's targets are read from); bench.json is
# rewritten after each cell, so a call cut short keeps the cells done.
CELL_LIST=${CELLS:-lstm gru rnn_tanh}
for cell in $CELL_LIST; do
  echo "== bench $cell"
  run_for "$BENCH_LIMIT" python3 benchmarks/cuda_vs_cudnn.py --cells "$cell" ${BENCH_ARGS:---compare-launch} --json \
    ${SHAPES:+--shapes $SHAPES} >"$WORK/bench-$cell.json" 2>>"$OUT/bench.err"
  echo "exit $?"; grep -v -i "warn" "$OUT/bench.err" | tail -4
  python3 - "$OUT" "$WORK" "$([ "$cell" = "${CELL_LIST##* }" ] && echo last)" <<'PY'
import glob, json, sys
from rnnlab.bench_cuda import markdown
rows, environment = [], None
for path in sorted(glob.glob(sys.argv[2] + "/bench-*.json")):
    try:
        run = json.load(open(path))
    except Exception as exc:
        print(path, "unreadable:", exc)
        continue
    rows += run["rows"]
    environment = run.get("environment", environment)
json.dump({"environment": environment, "rows": rows}, open(sys.argv[1] + "/bench.json", "w"), indent=1)
if sys.argv[3]:  # the table once, after the last cell (the reply shows only the output's last 12 KB)
    print(markdown(rows))
PY
done

# A/B on the same machine, made without a GPU: the kernels before the vector loads and unrolled K
# loops (6f4ffd6, if their package came along: mkdir .old && git archive 6f4ffd6 rnnlab | tar -x -C .old,
# carry .old), these kernels with their own GEMM (RNNLAB_CUBLAS=0), and these with cuBLAS's GEMMs.
if [ -z "${SKIP_AB:-}" ]; then
  for side in old own-gemm cublas; do
    [ "$side" = old ] && [ ! -d .old/rnnlab ] && continue
    echo "== A/B: $side"
    root=$PWD; [ "$side" = old ] && root=$PWD/.old
    RNNLAB_CUBLAS=$([ "$side" = cublas ] && echo 1 || echo 0) PYTHONPATH=$root:/tmp/site run_for 75 \
      python3 benchmarks/cuda_vs_cudnn.py --cells lstm,gru --no-torch \
      --shapes 32,100,64,128 64,50,256,512 256,100,512,1024 2>&1 | grep -v -i warn | tee -a "$OUT/ab.txt"
  done
fi

if [ -z "${SKIP_OVERHEADS:-}" ]; then
  echo "== fixed costs"
  run_for 60 python3 benchmarks/cuda_overheads.py 2>&1 | grep -v -i "warn" | tee "$OUT/overheads.txt"
fi

if [ -z "${SKIP_CLI:-}" ]; then  # what a user runs: the CLI trains on the GPU, and the lab's numbers match the CPU's
  echo "== rnnlab train --device cuda"
  for device in cuda cpu; do
    run_for 90 python3 -m rnnlab train adding-lstm --device "$device" --steps 100 --seed 3 --json \
      --out "$WORK/run-$device" >/dev/null 2>>"$OUT/train.err"
    echo "$device: exit $?"
  done
  python3 - "$WORK" <<'PY'
import json, sys
try:
    runs = {d: [json.loads(l) for l in open(f"{sys.argv[1]}/run-{d}/metrics.jsonl")] for d in ("cuda", "cpu")}
    steps = {d: len(r) for d, r in runs.items()}
    worst = max(abs(a["loss"] - b["loss"]) / abs(b["loss"]) for a, b in zip(runs["cuda"], runs["cpu"]))
    print(f"steps {steps}; losses' largest relative difference {worst:.1e}; "
          f"steps/s {[json.load(open(f'{sys.argv[1]}/run-{d}/summary.json')).get('steps_per_second') for d in runs]}")
except Exception as exc:
    print("runs unreadable:", exc)
PY
fi

if [ -z "${SKIP_BREAKDOWN:-}" ]; then  # GEMMs against recurrence at B=64 and 256, and the GEMMs against cuBLAS,
  echo "== breakdown"                  # then again with a GEMM tile of 8x8 outputs a thread (the shipped one: 4x4)
  run_for 120 python3 benchmarks/cuda_breakdown.py --gemm-tile 128,128,8,16,16 2>&1 | grep -v -i warn \
    | tee "$OUT/breakdown.txt"
fi

if [ -z "${SKIP_TILES:-}" ]; then  # the step tile by shape: twice the tiles paid 1.24x at B=64 (LSTM), lost at B=256
  echo "== step tiles"
  run_for 150 python3 benchmarks/cuda_tile_variants.py --cells lstm,gru --timeout 35 \
    --shape 32,100,64,128 --shape 32,200,128,256 --shape 64,50,256,512 \
    --variant 32,8,4,32 --variant 32,8,2,32 --variant 16,8,2,32 --variant 16,8,4,32 2>&1 | grep -v -i warn \
    | tee "$OUT/tiles.txt"
  # B=256: twice the rows a thread (8 sequences x 4 gates of one unit: 32 FMAs per 12 shared loads, not 16 per 8)
  run_for 75 python3 benchmarks/cuda_tile_variants.py --cells lstm --timeout 30 --shape 256,100,512,1024 \
    --variant 32,8,4,32 --variant 32,8,8,32 2>&1 | grep -v -i warn | tee -a "$OUT/tiles.txt"
fi

