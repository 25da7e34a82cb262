#!/usr/bin/env bash
# Proves Ember on a machine with an NVIDIA GPU and no network, in one run (under 8 minutes on an
# H200): builds for the GPU present, runs the whole test suite (GPU tests included),
# compute-sanitizer memcheck / racecheck / initcheck over the GPU tests, `ember demo --device cuda`,
# and `ember bench` when this build has it. Full logs go to OUTDIR; a verdict table ends the output.
#
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

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1
  nvcc --version | tail -2
  cmake --version | head -1
} | tee "$out/environment.txt"

configure=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=native -DEMBER_CUDA=ON)
if [ -d .deps/usr ]; then
  configure+=(-DCMAKE_PREFIX_PATH="$PWD/.deps/usr" -DEMBER_FMT_HEADER_ONLY=ON
              -DEMBER_GTEST_SOURCE_DIR="$PWD/.deps/usr/src/googletest")
fi
if cmake "${configure[@]}" >"$out/configure.log" 2>&1 && cmake --build "$build" >"$out/build.log" 2>&1; then
  verdict build ok "$(grep -c 'Building' "$out/build.log") steps, $(( $(date +%s) - start ))s"
else
  verdict build FAIL "see configure.log / build.log"
  tail -30 "$out/build.log" "$out/configure.log" 2>/dev/null
  printf '%s\n' "${rows[@]}"
  exit 1
fi

ctest --test-dir "$build" --output-on-failure >"$out/ctest.log" 2>&1
summary=$(grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1)
skipped=$(grep -c '(Skipped)' "$out/ctest.log")
grep -q '100% tests passed' "$out/ctest.log" && status=ok || status=FAIL
verdict "ctest (all)" "$status" "$summary; $skipped skipped"
ctest --test-dir "$build" -L gpu >"$out/ctest-gpu.log" 2>&1
verdict "ctest -L gpu" "$(grep -q '100% tests passed' "$out/ctest-gpu.log" && echo ok || echo FAIL)" \
  "$(grep -E 'tests passed|tests failed' "$out/ctest-gpu.log" | tail -1); $(grep -c '(Skipped)' "$out/ctest-gpu.log") skipped"

# The sanitizers slow kernels 10-100x: the GPU tests run with the 1024^3 matmul left out.
for tool in memcheck racecheck initcheck; do
  extra=()
  [ "$tool" = memcheck ] && extra=(--leak-check full)
  EMBER_SANITIZER_RUN=1 timeout 150 compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 9 \
    "$build/tests/ember_tests" --gtest_filter='Gpu*' >"$out/sanitizer-$tool.log" 2>&1
  code=$?
  line=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1)
  case $code in 0) verdict "compute-sanitizer $tool" ok "$line" ;; 124) verdict "compute-sanitizer $tool" TIME "over 150s" ;;
    *) verdict "compute-sanitizer $tool" FAIL "exit $code; $line" ;; esac
done

if "$build/ember" demo --device cuda >"$out/demo.log" 2>&1; then
  verdict "ember demo --device cuda" ok "$(grep -E 'predict\(5\)|R2' "$out/demo.log" | sed 's/.*= //' | tr '\n' ' ')"
else
  verdict "ember demo --device cuda" FAIL "$(tail -1 "$out/demo.log")"
fi
"$build/ember" info >"$out/info.log" 2>&1

if "$build/ember" bench --help >/dev/null 2>&1; then
  "$build/ember" bench --device cuda --csv "$out/bench.csv" >"$out/bench.log" 2>&1 &&
    verdict "ember bench" ok "tables in bench.log" || verdict "ember bench" FAIL "$(tail -1 "$out/bench.log")"
  if python3 -c 'import torch' 2>/dev/null && [ -f bench/torch_mlp.py ]; then
    python3 bench/torch_mlp.py --device cuda >"$out/torch.log" 2>&1 && verdict "bench/torch_mlp.py" ok "torch.log" ||
      verdict "bench/torch_mlp.py" FAIL "$(tail -1 "$out/torch.log")"
  fi
else
  verdict "ember bench" n/a "not in this build"
fi

echo
echo "=== gpu-check ($(( $(date +%s) - start ))s) ==="
printf '%s\n' "${rows[@]}" | tee "$out/summary.txt"
[ -f "$out/bench.log" ] && cat "$out/bench.log"
! grep -qE ' (FAIL|TIME) ' "$out/summary.txt"
