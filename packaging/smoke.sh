#!/usr/bin/env bash
# Smoke tests of the built bundle: packaging/smoke.sh [BUNDLE_DIR]   (default dist/workbench)
# Needs python3 (3.11+) to write sample images with the project's own builders. With strace it also
# proves that the engine processes are the frozen executable and that no process of an inspection
# loads Qt; with desktop-file-utils and appstream it validates a staged installation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$(cd "${1:-$root/dist/workbench}" && pwd -P)"  # physical: the path the engine children are started by
exe="$bundle/workbench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A private home: the window and the command line read and write their settings there, not the user's.
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_CACHE_HOME="$work/home/.cache"
mkdir -p "$HOME"
strace="$(command -v strace || true)"
failures=0

pass() { echo "ok    $1"; }
fail() {
    echo "FAIL  $1" >&2
    failures=$((failures + 1))
}
# check WHAT COMMAND...: one result line saying whether COMMAND succeeded.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
# traced NAME COMMAND...: COMMAND under strace (execve and openat of every process, in $work/NAME.trace).
traced() {
    local name=$1
    shift
    if [ -n "$strace" ]; then
        "$strace" -f -qq -s 4096 -e 'trace=execve,openat' -o "$work/$name.trace" "$@"
    else
        "$@"
    fi
}
# Python code run against the checkout (not the bundle): from_source CODE [ARG...], the ARGs in sys.argv[1:].
from_source() { python3 -I -c "import sys; sys.path.insert(0, sys.argv.pop(1)); $1" "$root" "${@:2}"; }
# The engine processes of a trace: their pids (the bootloader execs itself once more, under the same pid).
engine_pids() { grep -F -- "$exe\", \"--engine-worker\"$1" "$work/$2.trace" | cut -d' ' -f1 | sort -u; }
loaded_qt() { grep -v ENOENT "$work/$1.trace" | grep -m1 'libQt6'; }

# 1. --version names the source's version.
expected="workbench $(from_source 'import workbench; print(workbench.__version__)')"
version="$("$exe" --version)"
check "--version: $version (source: $expected)" test "$version" = "$expected"

# 2. Subcommands and formats are found by pkgutil inside the frozen program, all of them.
help="$("$exe" --help)"
missing=""
for command in $(from_source 'from workbench.cli.commands import discover; print(*discover())'); do
    grep -q -E -- "^    $command( |\$)" <<<"$help" || missing="$missing $command"
done
check "every subcommand of the source is in the frozen --help${missing:+ (missing:$missing)}" test -z "$missing"
formats="$(from_source 'from workbench.engine.formats import KNOWN_NAMES; print(", ".join(KNOWN_NAMES))')"
usage="$("$exe" inspect --help | tr -s ' \n' ' ')"
check "every format of the source is in the frozen inspect --help: $formats" grep -qF -- "$formats" <<<"$usage"

# 3. An image with a backing file is rejected (exit 20) by a sandboxed frozen engine child.
image="$work/child.qcow2"
from_source "from workbench.demo.qcow2 import qcow2; open(sys.argv[1], 'wb').write(qcow2(1 << 20, backing='base.qcow2'))" \
    "$image"
status=0
traced inspect "$exe" inspect --json "$image" >"$work/report.json" || status=$?
check "inspect exit status $status (20: reject)" test "$status" = 20
check_report() {
    python3 - "$work/report.json" <<'EOF'
import json
import sys

report = json.load(open(sys.argv[1]))
layers = report.get("sandbox") or {}
ids = {finding["id"] for finding in report.get("findings", [])}
print("      sandbox:", json.dumps(layers))
assert report["verdict"] == "reject", report["verdict"]
assert "backing-file" in ids, ids
assert layers and any(status.startswith("on") for status in layers.values()), layers
assert not [name for name, status in layers.items() if status.startswith("failed")], layers
EOF
}
check "inspect --json: verdict reject, finding backing-file, a sandbox report with layers on" check_report
if [ -n "$strace" ]; then
    check "the engine child is the frozen executable (--engine-worker)" test -n "$(engine_pids '' inspect)"
    qt="$(loaded_qt inspect || true)"
    check "no process of the inspection loaded Qt${qt:+: $qt}" test -z "$qt"
else
    echo "note  strace not installed: the engine-process and no-Qt checks were not run"
fi

# 4. Triage of the demonstration images (every kind of image the window's demo shows) runs the frozen
# engine as a fork server (zygote): each image gets a verdict, none fails.
mkdir "$work/demo"
count="$(from_source 'from pathlib import Path; from workbench.demo.images import write_demo; print(len(write_demo(Path(sys.argv[1]))))' \
    "$work/demo")"
status=0
traced triage "$exe" triage -q --jsonl "$work/triage.jsonl" "$work/demo" >/dev/null 2>"$work/triage.err" || status=$?
verdicts="$(python3 -c 'import json, sys; print(*sorted({json.loads(line)["verdict"] for line in open(sys.argv[1])}))' \
    "$work/triage.jsonl")"
reports="$(wc -l <"$work/triage.jsonl")"
inspected() { [ "$reports" = "$count" ] && [[ "$status" =~ ^(0|10|20)$ ]] && [[ " $verdicts " != *" failed "* ]]; }
check "triage of $count demonstration images: $reports reports, verdicts: $verdicts, exit status $status" inspected
check "triage used the zygote" test -z "$(grep "zygote unavailable" "$work/triage.err")"
if [ -n "$strace" ]; then
    check "the zygote is the frozen executable (--engine-worker --zygote)" test -n "$(engine_pids ', "--zygote"' triage)"
fi

# 5. sandbox-check: every layer the policy requires is on and every forbidden attempt is blocked.
status=0
"$exe" sandbox-check >"$work/sandbox.txt" || status=$?
[ "$status" = 0 ] || cat "$work/sandbox.txt" >&2
check "sandbox-check exit status $status (0)" test "$status" = 0

# 6. The window starts offscreen on the demonstration images and quits by itself (exit status 0) one second
# after their last inspection (--quit-after); timeout only guards against a hang (124).
deadline=60
status=0
QT_QPA_PLATFORM=offscreen traced window timeout "$deadline" "$exe" --demo --quit-after 1 >"$work/window.log" 2>&1 ||
    status=$?
errors="$(grep -c -E "Traceback|Internal error" "$work/window.log" || true)"
[ "$status:$errors" = "0:0" ] || cat "$work/window.log" >&2
check "the window inspected the demonstration images offscreen and quit by itself (exit status $status, 0)" \
    test "$status:$errors" = "0:0"
if [ -n "$strace" ]; then
    children="$(engine_pids '' window | wc -l)"
    check "the window ran the frozen engine ($children engine processes)" test "$children" -gt 0
fi

# 7. A staged installation: the launcher link works, the desktop file and metainfo validate together.
stage="$work/stage"
DESTDIR="$stage" PREFIX=/usr BUNDLE="$bundle" "$root/packaging/install-linux.sh" >/dev/null
installed="$("$stage/usr/lib/workbench/workbench" --version)"
link="$(readlink "$stage/usr/bin/workbench")"
check "staged installation: $installed, /usr/bin/workbench -> $link" \
    test "$installed:$link" = "$expected:/usr/lib/workbench/workbench"
if command -v desktop-file-validate >/dev/null && command -v appstreamcli >/dev/null; then
    check "the staged desktop file validates" desktop-file-validate "$stage/usr/share/applications/workbench.desktop"
    validate_tree() {
        appstreamcli validate-tree --no-net "$stage" >"$work/tree.txt" && return
        cat "$work/tree.txt" >&2
        return 1
    }
    check "the staged metainfo validates with its desktop file and icons" validate_tree
else
    echo "note  desktop-file-utils or appstream not installed: the staged tree was not validated"
fi

if [ "$failures" != 0 ]; then
    echo "$failures smoke test(s) failed" >&2
    exit 1
fi
echo "smoke tests passed: $bundle ($(du -sh "$bundle" | cut -f1))"
