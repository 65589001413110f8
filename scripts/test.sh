#!/usr/bin/env bash
# Every check the project has: lint, unit tests and doctests, nbval over every notebook in
# _toc.yml (strict: saved outputs must equal what the code produces) on two numeric paths
# (this CPU's, and a simulated other CPU: scripts/nbval.sh), each also for the unit tests, the book build
# with warnings as errors (both editions, English and Chinese), the Chinese catalogs' completeness, and
# every page of both built editions in headless Chromium with no network.
# .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/setup_env.sh
echo "== environment ready after $((SECONDS - start)) s"
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONHASHSEED=0 LLM_LESSONS_DEVICE=cpu
# The browser check drives Debian's chromium (a CJK font so that screenshots show the Chinese
# titles); as root, install it when missing, as CI's fresh machine needs.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's chromium for the browser check"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-wqy-microhei >/dev/null
fi
echo "== ruff"
ruff check .
echo "== unit tests and doctests"
# One thread per worker, as for nbval: two workers with two threads each oversubscribe two cores
# (the unit tests took 177 s that way on this project's 2-core machine, 58 s this way).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MPLBACKEND=Agg python -m pytest -q -n 2 tests llm_lessons --ignore=tests/test_book_browser.py
echo "== (at $((SECONDS - start)) s) unit tests and doctests again, on another numeric path"
# ATen's plain kernels and MKL's portable path simulate another CPU: no test may depend on the bits.
ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE MPLBACKEND=Agg python -m pytest -q -n 2 -p no:cacheprovider \
  tests llm_lessons --ignore=tests/test_book_browser.py
echo "== (at $((SECONDS - start)) s) nbval (strict) over every notebook in _toc.yml, this CPU's numeric path"
bash scripts/nbval.sh default
echo "== (at $((SECONDS - start)) s) nbval (strict) again, on a simulated other CPU"
bash scripts/nbval.sh perturbed
echo "== (at $((SECONDS - start)) s) book build (-W -n --keep-going), self-contained"
rm -rf _build_test
bash scripts/build_book.sh _build_test
echo "== (at $((SECONDS - start)) s) every page of both editions in headless Chromium, network off (screenshots in artifacts/screenshots/)"
# Two workers: a page mostly waits (MathJax, fonts), so two browsers share 2 cores well.
rm -rf artifacts/screenshots
LLM_LESSONS_BOOK_HTML="$PWD/_build_test/_build/html" python -m pytest -q -p no:cacheprovider -n 2 \
  tests/test_book_browser.py
echo "   Chinese pages with the lowest share of Chinese prose (page, CJK, Latin, share, share without names):"
sort -t "$(printf '\t')" -k4 -n artifacts/screenshots/zh_prose_share.tsv | head -3 | sed 's/^/   /'
echo "== all checks passed in $((SECONDS - start)) s"
