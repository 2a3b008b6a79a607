#!/usr/bin/env bash
# CI for the Python package: a fresh venv, build and install the extension the way the
# README says, run the pytest suite (no tests collected is a failure) and mypy --strict on
# a typed usage example. Called by .ci/run; runs from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$here"

python="${PYTHON:-python3}"
venv="$(mktemp -d "${TMPDIR:-/tmp}/perf-python-ci.XXXXXX")"
trap 'rm -rf "$venv"' EXIT

step() { printf '\n=== python: %s (%s)\n' "$1" "$(date +%T)"; }

step "venv"
"$python" -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "maturin>=1.5,<2" "pytest>=7" "mypy>=1.8"

step "build and install (pip install ./python)"
# maturin is in the venv already; no isolated build env to download it into again.
python -m pip install --quiet --no-build-isolation "$here"

step "perf-drainer for the end-to-end tests"
if [ -z "${PERF_DRAINER_BIN:-}" ]; then
  target="${CARGO_TARGET_DIR:-$repo/target}"
  case "$target" in /*) ;; *) target="$repo/$target" ;; esac
  (cd "$repo" && cargo build --quiet -p perf-drainer --bin perf-drainer)
  export PERF_DRAINER_BIN="$target/debug/perf-drainer"
fi
echo "PERF_DRAINER_BIN=$PERF_DRAINER_BIN"

step "pytest"
# Run against the installed package, not the source tree (which has no extension in it).
set +e
(cd "$here/tests" && python -m pytest -c "$here/pyproject.toml" --rootdir "$here" -p no:cacheprovider "$here/tests")
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

step "mypy --strict (typed usage example)"
(cd "$here/tests" && python -m mypy --strict --no-incremental typing_example.py)

step "python done"
