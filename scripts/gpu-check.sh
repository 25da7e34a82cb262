#!/usr/bin/env bash
# Proves Ember on a machine with an NVIDIA GPU and no network, in one run (under 8 minutes on an
# H200): builds for the GPU present, runs the whole test suite (GPU tests included),
# `ember demo --device cuda`, `ember bench` (all tables) beside bench/torch_mlp.py when PyTorch is
# installed, then compute-sanitizer memcheck / racecheck / initcheck over the GPU tests. Full logs
# go to OUTDIR; the benchmark tables and then a verdict table end the output, and
# OUTDIR/validation-entry.md holds them as a draft entry for docs/gpu-validation.md.
#
# Steps run in order of what they prove and stop at a deadline (EMBER_GPU_CHECK_SECONDS, default
# 470 s after the start): a step that would start after it is reported as TIME, and each sanitizer
# run is cut at the deadline.
#
# EMBER_CUDA_ARCHITECTURES overrides the GPU architectures (default: the GPU present, as 90a-real on
# compute capability 9.0 so that the TF32 matmul's wgmma kernel is built, else native).
# Dependencies: the system's fmt, nlohmann-json, CLI11 and GoogleTest, or, where the machine lacks
# them, the copies that scripts/pack-gpu-deps.sh extracted into .deps/ (carried with the tree).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
build=${EMBER_GPU_BUILD_DIR:-build-gpu}
declare -a rows=()
verdict() { rows+=("$(printf '%-28s %-6s %s' "$1" "$2" "$3")"); }
start=$(date +%s)
deadline=$(( start + ${EMBER_GPU_CHECK_SECONDS:-470} ))
left() { local l=$(( deadline - $(date +%s) )); echo $(( l > 1 ? l : 1 )); }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1
  nvcc --version | tail -2
  cmake --version | head -1
} | tee "$out/environment.txt"

architectures=native
[ "$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)" = "9.0" ] && architectures=90a-real
# The emulated GPU suite (tests/emulator) is left out: here the GPU suite runs on the GPU itself.
# So is the Python module: its tests run on the CPU (CI), and pytest as one ctest entry would
# outlast the per-test limit below. Warnings are not errors here (the machine's compiler and
# libraries may be newer than CI's): the build step counts them instead, and ptxas's spills.
configure=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
           -DCMAKE_CUDA_ARCHITECTURES="${EMBER_CUDA_ARCHITECTURES:-$architectures}" -DEMBER_CUDA=ON
           -DEMBER_BUILD_EMULATOR=OFF -DEMBER_PYTHON=OFF -DEMBER_WERROR=OFF)
if [ -d .deps/usr ]; then
  configure+=(-DCMAKE_PREFIX_PATH="$PWD/.deps/usr" -DEMBER_FMT_HEADER_ONLY=ON
              -DEMBER_GTEST_SOURCE_DIR="$PWD/.deps/usr/src/googletest")
fi
if cmake "${configure[@]}" >"$out/configure.log" 2>&1 && cmake --build "$build" >"$out/build.log" 2>&1; then
  verdict build ok "$(grep -c 'Building' "$out/build.log") steps, $(( $(date +%s) - start ))s"
  warnings=$(grep -c 'warning:' "$out/build.log")
  verdict "  compiler warnings" "$([ "$warnings" -eq 0 ] && echo ok || echo WARN)" \
    "$warnings warnings; $(grep -ciE 'spill|lmem' "$out/build.log") ptxas spill lines (build.log)"
else
  verdict build FAIL "see configure.log / build.log"
  tail -30 "$out/build.log" "$out/configure.log" 2>/dev/null
  printf '%s\n' "${rows[@]}"
  exit 1
fi

# What Ember sees of the GPU, including which TF32 kernels it found built for it (wgmma needs sm_90a).
timeout 60 "$build/ember" info >"$out/info.log" 2>&1
verdict "ember info" "$(grep -q '^cuda: available' "$out/info.log" && echo ok || echo FAIL)" \
  "$(grep -o 'TF32 matmul: .*' "$out/info.log" || tail -1 "$out/info.log")"

# A hung test (a kernel that never returns) must not eat the run: each test gets 180 s. Four tests
# at a time share the cores: each CPU test's threads (OMP_NUM_THREADS caps Ember's) get a quarter of them, since
# threads beyond the core count slow a run several times over.
threads=$(( $(nproc) / 4 > 0 ? $(nproc) / 4 : 1 ))
OMP_NUM_THREADS=$threads timeout "$(left)" ctest --test-dir "$build" --output-on-failure -j4 --timeout 180 \
  >"$out/ctest.log" 2>&1
summary=$(grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1)
grep -q '100% tests passed' "$out/ctest.log" && status=ok || status=FAIL
verdict "ctest (all)" "$status" "$summary; $(grep -c '(Skipped)' "$out/ctest.log") skipped"
gpu_passed=$(grep -cE 'Test +#[0-9]+: Gpu[^ ]* \.+ +Passed' "$out/ctest.log")
gpu_other=$(grep -E 'Test +#[0-9]+: Gpu' "$out/ctest.log" | grep -cv ' Passed')
verdict "  of which GPU tests" "$([ "$gpu_other" -eq 0 ] && [ "$gpu_passed" -gt 0 ] && echo ok || echo FAIL)" \
  "$gpu_passed passed, $gpu_other failed or skipped"

# NCCL: one rank's all-reduce captured in the step's graph, bucket by bucket (skipped without NCCL).
nccl_passed=$(grep -cE 'Test +#[0-9]+: GpuTraining\.(OneRankNccl|NcclBuckets)[^ ]* \.+ +Passed' "$out/ctest.log")
verdict "  NCCL in the step's graph" "$([ "$nccl_passed" -eq 2 ] && echo ok || echo FAIL)" \
  "$nccl_passed of 2 passed; $(grep -o '^nccl: .*' "$out/info.log")"

# Two processes sharing the one GPU (where mpiexec is installed and the build found MPI): they sum
# on the host, the split step, and --comm nccl must refuse with one error.
if command -v mpiexec >/dev/null 2>&1 && grep -q 'distributed: MPI available' "$out/info.log"; then
  printf 'x0,x1,y\n' >"$out/ranks.csv"
  for i in $(seq 0 299); do echo "$((i % 7)),$((i % 5)),$((2 * (i % 7) - i % 5 + 1))" >>"$out/ranks.csv"; done
  launch=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=2 timeout 120 mpiexec -n 2
          "$build/ember" train --device cuda --data "$out/ranks.csv" --target y --epochs 20)
  "${launch[@]}" >"$out/ranks.log" 2>&1; shared=$?
  "${launch[@]}" --comm nccl >"$out/ranks-nccl.log" 2>&1; refused=$?
  if [ $shared -eq 0 ] && grep -q 'share 1 GPU' "$out/ranks.log" && [ $refused -eq 2 ]; then
    verdict "2 ranks sharing the GPU" ok "host-staged step; $(grep -o 'val_loss.*\|loss [0-9.e-]*' "$out/ranks.log" | tail -1)"
  else
    verdict "2 ranks sharing the GPU" FAIL "exit $shared / $refused: $(tail -1 "$out/ranks.log")"
  fi
else
  verdict "2 ranks sharing the GPU" n/a "no mpiexec or no MPI in the build"
fi

if timeout 120 "$build/ember" demo --device cuda >"$out/demo.log" 2>&1; then
  verdict "ember demo --device cuda" ok "$(grep -E 'predict\(5\)|R2' "$out/demo.log" | sed 's/.*= //' | tr '\n' ' ')"
else
  verdict "ember demo --device cuda" FAIL "$(tail -1 "$out/demo.log")"
fi
timeout 30 "$build/ember" info >"$out/info.log" 2>&1

if [ "$(left)" -gt 60 ]; then
  timeout "$(left)" "$build/ember" bench --device cuda --csv "$out/bench.csv" >"$out/bench.log" 2>&1
  case $? in 0) verdict "ember bench" ok "tables below" ;; 124) verdict "ember bench" TIME "cut at the deadline" ;;
    *) verdict "ember bench" FAIL "$(tail -1 "$out/bench.log")" ;; esac
else
  verdict "ember bench" TIME "not started: deadline"
fi
if ! python3 -c 'import torch' 2>/dev/null; then
  verdict "bench/torch_mlp.py" n/a "no PyTorch here"
elif [ "$(left)" -gt 30 ]; then
  compare=()
  [ -f "$out/bench.csv" ] && compare=(--ember-csv "$out/bench.csv")
  timeout "$(left)" python3 bench/torch_mlp.py --device cuda "${compare[@]}" >"$out/torch.log" 2>&1
  case $? in 0) verdict "bench/torch_mlp.py" ok "side by side below" ;; 124) verdict "bench/torch_mlp.py" TIME "cut" ;;
    *) verdict "bench/torch_mlp.py" FAIL "$(tail -1 "$out/torch.log")" ;; esac
else
  verdict "bench/torch_mlp.py" TIME "not started: deadline"
fi

# compute-sanitizer from PATH, else from the toolkit beside nvcc.
sanitizer=$(command -v compute-sanitizer || true)
for candidate in "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")/compute-sanitizer" \
                 "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" "${CUDA_HOME:-/usr/local/cuda}/compute-sanitizer/compute-sanitizer"; do
  [ -z "$sanitizer" ] && [ -x "$candidate" ] && sanitizer=$candidate
done
# The sanitizers slow kernels 10-100x: the 1024^3 matmul is left out (EMBER_SANITIZER_RUN), and
# racecheck and initcheck (shared-memory races, uninitialized reads) run the kernel tests only.
for tool in memcheck racecheck initcheck; do
  extra=()
  filter='Gpu*'
  # NCCL probes its own kernels with cudaFuncGetAttributes and gets error 209 for the architectures
  # its build lacks: API errors are left unreported (Ember checks every CUDA call's result itself).
  [ "$tool" = memcheck ] && extra=(--leak-check full --report-api-errors no)
  [ "$tool" != memcheck ] && filter='GpuKernels.*'
  budget=$(( $(left) < 150 ? $(left) : 150 ))
  if [ -z "$sanitizer" ]; then
    verdict "compute-sanitizer $tool" n/a "compute-sanitizer not found"
    continue
  fi
  if [ "$budget" -lt 20 ]; then
    verdict "compute-sanitizer $tool" TIME "not started: deadline"
    continue
  fi
  EMBER_SANITIZER_RUN=1 timeout "$budget" "$sanitizer" --tool "$tool" "${extra[@]}" --error-exitcode 9 \
    "$build/tests/ember_tests" --gtest_filter="$filter" >"$out/sanitizer-$tool.log" 2>&1
  code=$?
  line=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1)
  tests=$(grep -E '^\[  PASSED  \]|^\[  FAILED  \]' "$out/sanitizer-$tool.log" | head -1)
  # Some GPU machines (gVisor sandboxes) do not let compute-sanitizer attach at all: say so, and
  # spend no more time on the other tools.
  if grep -q "Device not supported" "$out/sanitizer-$tool.log"; then
    verdict "compute-sanitizer" n/a "refused here: 'Device not supported' (sandboxed runtime)"
    break
  fi
  case $code in 0) verdict "compute-sanitizer $tool" ok "$filter: $tests; $line" ;;
    124) verdict "compute-sanitizer $tool" TIME "cut after ${budget}s ($filter)" ;;
    *) verdict "compute-sanitizer $tool" FAIL "exit $code; $tests; $line" ;; esac
done

# The benchmark tables, then the verdicts last, so that the end of the output always holds them.
[ -f "$out/bench.log" ] && cat "$out/bench.log"
[ -f "$out/torch.log" ] && cat "$out/torch.log"
echo
echo "=== gpu-check ($(( $(date +%s) - start ))s) ==="
printf '%s\n' "${rows[@]}" | tee "$out/summary.txt"

# A draft entry for docs/gpu-validation.md, from this run's own output only.
{
  echo "### $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo '```'
  cat "$out/environment.txt"
  echo '```'
  echo
  echo '| step | verdict | detail |'
  echo '|---|---|---|'
  printf '%s\n' "${rows[@]}" | sed -E 's/^(.{28}) (.{6}) (.*)$/| \1 | \2 | \3 |/; s/ +\|/ |/g'
  for log in bench.log torch.log; do
    [ -f "$out/$log" ] && { echo; echo '```'; cat "$out/$log"; echo '```'; }
  done
} >"$out/validation-entry.md"
echo "(draft docs/gpu-validation.md entry: $out/validation-entry.md)"
! grep -qE ' (FAIL|TIME) ' "$out/summary.txt"
