#!/usr/bin/env bash
# nbval (strict: saved outputs must equal what the code prints) on one numeric path.
# Usage: bash scripts/nbval.sh default|perturbed [notebooks/NAME.ipynb ...]
#        (no notebook: every notebook in _toc.yml)
#
# default    this CPU's own kernels; one thread per kernel, two notebooks at a time.
# perturbed  ATEN_CPU_CAPABILITY=default (ATen's plain C++ kernels) and MKL_CBWR=COMPATIBLE (MKL's
#            portable code path) make this machine compute like another CPU: other bits from
#            torch.randn, elementwise ops and every matrix product. Two threads per kernel, one
#            notebook at a time, so the thread count is varied as well.
# A saved output must hold on both paths (CONTRIBUTING.md, "Outputs that hold on every machine").
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:?usage: bash scripts/nbval.sh default|perturbed [notebooks...]}
shift
if [ $# -gt 0 ]; then notebooks=("$@"); else mapfile -t notebooks < <(.venv/bin/python scripts/toc_notebooks.py); fi
case "$path" in
  default) threads=1 workers=(-n 2 --dist loadscope) numeric=() ;;
  perturbed) threads=2 workers=(-p no:xdist) numeric=(ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE) ;;
  *) echo "unknown numeric path '$path': use default or perturbed" >&2; exit 2 ;;
esac
# The kernels draw with the inline backend, as when the outputs were saved (scripts/execute_notebooks.py).
env "${numeric[@]}" OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads PYTHONHASHSEED=0 \
  LLM_LESSONS_DEVICE=cpu HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  MPLBACKEND=module://matplotlib_inline.backend_inline \
  .venv/bin/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
  --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 600 "${workers[@]}" "${notebooks[@]}"
