#!/usr/bin/env bash
# Measure this machine's budgets from a fresh clone: environment from nothing, unit tests, the series
# (`make run`) on each profile in $PROFILES, and the full `make test`. Prints one line per budget (wall and
# CPU seconds), then, for each series, where its time went: per notebook and per command, start-up (until
# NeMo is imported) against work, and the CPU seconds each used.
#   scripts/benchmark.sh                                   tiny series and make test (~45 min on 2 CPU cores)
#   scripts/benchmark.sh --no-test                         without make test
#   PROFILES="tiny smollm2-135m" scripts/benchmark.sh      also the real model's series (~30 min more)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
git clone --quiet "$repo" "$scratch/clone"
cd "$scratch/clone"
export TUTORIAL_WORKDIR="$scratch/work"

timed() {  # timed <label> <command...>: run quietly, log to $scratch/<label>.log, print wall and CPU seconds
  local label="$1" TIMEFORMAT="%R %U %S" measured
  shift
  measured=$( { time "$@" >"$scratch/$label.log" 2>&1; } 2>&1 ) || { echo "$label FAILED: see $scratch/$label.log"; exit 1; }
  # CPU seconds (user + system, of every process the step started) over wall seconds: how many cores it kept busy.
  awk -v label="$label" -v m="$measured" 'BEGIN { split(m, t, " "); cpu = t[2] + t[3];
    printf "%-28s %5.0f s  %6.0f CPU s  (%.2f cores busy)\n", label, t[1], cpu, cpu / t[1] }'
}

timed environment make env
# Every time below depends on the CPU: bf16 is ~24x slower where it is emulated (no AVX512-BF16 / AMX).
.venv/bin/python -c "from helpers.data import cpu_dtype; r = cpu_dtype.report(); print(f'{r}; the tiny teacher trains in {str(cpu_dtype.choose(r)).removeprefix(\"torch.\")}')" 2>/dev/null
printf 'cores: %s, model: %s\n' "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
timed unit-tests .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit
for profile in ${PROFILES:-tiny}; do
  timed "series-$profile" make run PROFILE="$profile"
  sed -n '/^Where the time went/,/^$/p; /^Each command/,/^$/p' "$scratch/series-$profile.log" | sed 's/^/  /'
done
[[ "${1:-}" == "--no-test" ]] || timed make-test make test
echo "logs and work directory: $scratch"
