#!/usr/bin/env bash
# Every check the project has: lint, unit tests and doctests, nbval over every notebook in
# _toc.yml (strict: saved outputs must equal what the code produces), and the book build
# with warnings as errors. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONHASHSEED=0 LLM_LESSONS_DEVICE=cpu
echo "== ruff"
ruff check .
echo "== unit tests and doctests"
python -m pytest -q -n 2 tests llm_lessons
echo "== nbval (strict) over every notebook in _toc.yml"
# One thread per worker: two kernels share two cores, and results are thread-count independent.
mapfile -t notebooks < <(python scripts/toc_notebooks.py)
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m pytest -q -p no:cacheprovider --nbval \
  --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 600 \
  -n 2 --dist loadscope "${notebooks[@]}"
echo "== book build (-W -n --keep-going)"
tmp=$(mktemp -d)
bash scripts/build_book.sh "$tmp/_build"
rm -rf "$tmp"
echo "== all checks passed in $((SECONDS - start)) s"
