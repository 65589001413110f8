#!/usr/bin/env bash
# Build the rendered book from the notebooks' saved outputs (nbval proves them in the tests), in
# both editions: English in <output-dir>/_build/html, Chinese in <output-dir>/_build/html/zh (the
# same sources with the prose from locale/zh_CN: scripts/book_editions.py).
# Usage: bash scripts/build_book.sh [output-dir]   (default: .)
#
# The book is self-contained: book/_ext/offline_assets.py fetches MathJax, mermaid, the widget
# manager and bertviz's libraries from the npm registry (pinned, checksummed, cached in
# .book_assets/) and serves them from _static, so the pages work with no network.
# LLM_LESSONS_OFFLINE_ASSETS=0 builds with CDN links instead; so does a machine that cannot reach
# npm, saying so; under CI=true the self-contained book is required.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
out=${1:-.}
rm -rf "$out/_build/.doctrees"  # a stale environment can hide warnings; always rebuild every page
start=$SECONDS
.venv/bin/jupyter-book build . --path-output "$out" --all -W -n --keep-going
english=$((SECONDS - start))
.venv/bin/python scripts/book_editions.py html "$out" --edition zh
chinese=$((SECONDS - start - english))
html="$(cd "$out/_build/html" && pwd)"
.venv/bin/python - "$html/_static/offline/manifest.json" <<'EOF'
import json
import sys

state = json.load(open(sys.argv[1]))
if state["self_contained"]:
    print(f"[offline-assets] self-contained: {state['files']} files, "
          f"{state['bytes'] / 2**20:.1f} MiB of scripts, styles and fonts in _static/offline/")
else:
    print("[offline-assets] NOT SELF-CONTAINED: pages load MathJax, mermaid, widgets and bertviz's "
          f"libraries from public CDNs and show raw LaTeX and empty views offline ({state['reason']})")
EOF
echo "The book is at: $html/index.html (English, built in $english s)"
echo "          and: $html/zh/index.html (Chinese, built in $chinese s)"
