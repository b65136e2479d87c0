#!/usr/bin/env bash
# Are pyproject.toml's floors true? Installs the lowest version that each declared dependency
# allows (uv's `--resolution lowest-direct`; their own dependencies resolve to the newest), with
# the dev extra, in a fresh Python 3.11 venv (the lowest Python allowed), then runs the fast tests
# there. Exit status: pytest's. A floor that does not hold fails here, not on a user's machine.
#
#   bash benchmarks/floors.sh [WORK_DIR]   # default: a new temporary folder, kept for a rerun
#
# Needs: python3.11 on PATH, the package registry, ~6 GB of disk (torch and its CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d -t mmfusion-floors.XXXXXX)}
mkdir -p "$work"
unset PYTHONPATH VIRTUAL_ENV

if [[ ! -x $work/tool/bin/uv ]]; then
    python3.11 -m venv "$work/tool"
    "$work/tool/bin/pip" install -q uv
fi
uv=$work/tool/bin/uv
rm -rf "$work/venv"
"$uv" venv -q --python "$(command -v python3.11)" "$work/venv"
VIRTUAL_ENV=$work/venv "$uv" pip install --resolution lowest-direct -e ".[dev]"
echo "--- installed (direct dependencies at their floors):"
VIRTUAL_ENV=$work/venv "$uv" pip freeze | grep -iE "^($(
    "$work/venv/bin/python" - <<'EOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
print("|".join(re.split(r"[<>=\[ ]", r, maxsplit=1)[0].replace("-", "[-_]") for r in requirements))
EOF
))=="
echo "--- fast tests"
"$work/venv/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider
