#!/usr/bin/env bash
# The long coverage-guided run (fuzz/README.md): build the seed corpus, fuzz the engine for SECONDS
# (default 600) with atheris, then print the figures docs/robustness.md records.
# Usage: fuzz/run_long.sh [SECONDS]     (needs: pip install atheris; qemu-img adds qemu's images as seeds)
# WORKBENCH_FUZZ_WORK sets the work folder (default $TMPDIR/workbench-fuzz; an existing corpus there is reused).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
work="${WORKBENCH_FUZZ_WORK:-${TMPDIR:-/tmp}/workbench-fuzz}"
mkdir -p "$work/corpus" "$work/artifacts"
rm -f "$work/artifacts/failures.jsonl"

python -m fuzz.corpus "$work/seeds"

# New inputs go to corpus/ (the first folder); seeds/ is read only. A hang (-timeout) or a process
# above -rss_limit_mb ends the run with a timeout-* or oom-* file; other failures are logged and counted.
status=0
WORKBENCH_FUZZ_LOG="$work/artifacts/failures.jsonl" python fuzz/atheris_engine.py \
    "$work/corpus" "$work/seeds" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 2>"$work/log.txt" || status=$?

echo "--- figures (log: $work/log.txt)"
grep -E '^stat::' "$work/log.txt" || true
grep -E '^#[0-9]+.*(DONE|pulse)' "$work/log.txt" | tail -1 || true
echo "corpus inputs: $(find "$work/corpus" -type f | wc -l)"
echo "hangs (timeout-*): $(find "$work/artifacts" -name 'timeout-*' | wc -l)"
echo "memory (oom-*): $(find "$work/artifacts" -name 'oom-*' | wc -l)"
echo "crashes that stopped the run (crash-*): $(find "$work/artifacts" -name 'crash-*' | wc -l)"
failures="$work/artifacts/failures.jsonl"
echo "failing inputs (logged): $( [ -f "$failures" ] && wc -l <"$failures" || echo 0)"
if [ -f "$failures" ]; then
    python -c '
import collections, json, sys
classes = collections.Counter(json.loads(line)["class"] for line in open(sys.argv[1]))
for name, count in classes.most_common():
    print(f"  {count:6d}  {name}")
' "$failures"
fi
echo "libFuzzer exit status: $status"
