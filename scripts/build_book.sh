#!/usr/bin/env bash
# Build the rendered book from the notebooks' saved outputs (nbval proves them in the tests).
# Usage: bash scripts/build_book.sh [output-dir]   (default: _build)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
out=${1:-_build}
rm -rf "$out/.doctrees"  # a stale environment can hide warnings; always rebuild every page
.venv/bin/jupyter-book build . --path-output "$out" --all -W -n --keep-going
echo "The book is at: $(cd "$out/html" && pwd)/index.html"
