#!/usr/bin/env bash
# nbval (strict: saved outputs must equal what the code prints) on one numeric path.
# Usage: bash scripts/nbval.sh default|perturbed [notebooks/NAME.ipynb ...]
#        (no notebook: every notebook in _toc.yml)
#
# default    this CPU's own kernels.
# perturbed  ATEN_CPU_CAPABILITY=default (ATen's plain C++ kernels) and MKL_CBWR=COMPATIBLE (MKL's
#            portable code path) make this machine compute like another CPU: other bits from
#            torch.randn, elementwise ops and every matrix product. About twice as slow.
# Two notebooks run at a time with one thread each (the fastest use of two cores);
# NBVAL_THREADS=2 runs one notebook at a time with two threads instead, to vary the thread count
# too (every notebook passed that way on the perturbed path when the policy was introduced).
# A saved output must hold on both paths (CONTRIBUTING.md, "Outputs that hold on every machine").
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:?usage: bash scripts/nbval.sh default|perturbed [notebooks...]}
shift
# Longest first, in that order (no reordering by xdist, which would sort by number of cells):
# the two workers then finish within a short notebook of each other.
if [ $# -gt 0 ]; then notebooks=("$@"); else mapfile -t notebooks < <(.venv/bin/python scripts/toc_notebooks.py --longest-first); fi
case "$path" in
  default) numeric=() ;;
  perturbed) numeric=(ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE) ;;
  *) echo "unknown numeric path '$path': use default or perturbed" >&2; exit 2 ;;
esac
threads=${NBVAL_THREADS:-1}
case "$threads" in
  1) workers=(-n 2 --dist loadscope --no-loadscope-reorder) ;;
  2) workers=(-p no:xdist) ;;
  *) echo "NBVAL_THREADS must be 1 or 2 (two cores)" >&2; exit 2 ;;
esac
# The kernels draw with the inline backend, as when the outputs were saved (scripts/execute_notebooks.py).
env "${numeric[@]}" OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads PYTHONHASHSEED=0 \
  LLM_LESSONS_DEVICE=cpu HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  MPLBACKEND=module://matplotlib_inline.backend_inline \
  .venv/bin/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
  --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 600 "${workers[@]}" "${notebooks[@]}"
