#!/usr/bin/env bash
# CI step: build the bundle from this checkout, hold it to its size budget, and smoke-test it.
# Runs in the current Python environment (build.sh installs PyInstaller there). Wants strace,
# desktop-file-utils and appstream installed so that every smoke test runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
budget_mb="${BUNDLE_BUDGET_MB:-150}"

started=$SECONDS
"$root/packaging/build.sh"
built=$SECONDS

size_mb=$(($(du -sk "$root/dist/workbench" | cut -f1) / 1024))
if [ "$size_mb" -gt "$budget_mb" ]; then
    echo "bundle is $size_mb MiB, over its budget of $budget_mb MiB" >&2
    exit 1
fi
"$root/packaging/smoke.sh" "$root/dist/workbench"
echo "packaging: build $((built - started)) s, smoke tests $((SECONDS - built)) s, bundle $size_mb MiB"
