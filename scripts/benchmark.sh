#!/usr/bin/env bash
# Measure this machine's budgets from a fresh clone: environment from nothing, unit tests, each notebook
# on the tiny profile (`make run`), and the full `make test`. Prints one line per budget.
#   scripts/benchmark.sh            all of them (~35 min on 2 CPU cores)
#   scripts/benchmark.sh --no-test  without `make test`
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
git clone --quiet "$repo" "$scratch/clone"
cd "$scratch/clone"
export TUTORIAL_WORKDIR="$scratch/work"

timed() {  # timed <label> <command...>: run quietly, log to $scratch/<label>.log, print the seconds
  local label="$1" start=$SECONDS
  shift
  "$@" >"$scratch/$label.log" 2>&1 || { echo "$label FAILED: see $scratch/$label.log"; exit 1; }
  printf '%-28s %5d s\n' "$label" $((SECONDS - start))
}

timed environment make env
# Every time below depends on the CPU: bf16 is ~24x slower where it is emulated (no AVX512-BF16 / AMX).
.venv/bin/python -c "from helpers import cpu_dtype; r = cpu_dtype.report(); print(f'{r}; the tiny teacher trains in {str(cpu_dtype.choose(r)).removeprefix(\"torch.\")}')" 2>/dev/null
printf 'cores: %s, model: %s\n' "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
timed unit-tests .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit
timed make-run make run
grep -E '^0[1-4]_.*\.ipynb: [0-9]+ s$' "$scratch/make-run.log" | sed 's/^/  /'
[[ "${1:-}" == "--no-test" ]] || timed make-test make test
echo "logs and work directory: $scratch"
