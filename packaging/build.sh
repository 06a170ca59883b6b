#!/usr/bin/env bash
# Build the onedir bundle dist/workbench/ (executable dist/workbench/workbench) from this checkout.
# Installs PyInstaller and the project's dependencies into the current Python environment.
# Usage: packaging/build.sh   (PYTHON=python3.11 packaging/build.sh to choose the interpreter)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"

"$python" -m pip install -q "pyinstaller>=6.22,<7"
# Editable, so that the dependencies come in and a development install of this checkout stays as it is.
"$python" -m pip install -q -e .
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/workbench.spec

echo "built dist/workbench/workbench ($(du -sh dist/workbench | cut -f1))"
