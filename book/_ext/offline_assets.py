"""A self-contained book: every script, style and font is served from the book's own ``_static``.

Without this extension a page loads MathJax, mermaid, the Jupyter widget manager and bertviz's
require.js/d3/jQuery from public CDNs, so a reader behind a firewall, in an offline classroom or
with a downloaded copy sees raw LaTeX, diagram source and empty views. At build time this
extension obtains the pinned npm packages below with ``npm pack`` (one tarball each, checked
against its pinned sha512), keeps them in an ignored cache (``.book_assets/``), copies the files a
page needs into ``_static/offline/`` and points Sphinx, myst-nb, sphinxcontrib-mermaid and
bertviz's outputs at them. No third-party code lives in the repository.

Environment: ``LLM_LESSONS_OFFLINE_ASSETS=0`` builds with CDN links on purpose; if the assets
cannot be obtained the build says so and falls back to CDN links, except under ``CI=true``, where
the self-contained book is required and the build stops. ``build-finished`` scans every page for a
script, stylesheet, image or module loader that still points off-site (a warning, so an error
under ``-W``) and writes ``_static/offline/manifest.json`` (mode, packages, bytes) for the build
script and the browser test.

>>> ASSETS["d3"].folder
'offline/d3-5.7.0'
>>> integrity_of(b"")[:20]
'sha512-z4PhNX7vuL3xV'
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LLM_LESSONS_ASSETS_CACHE", ROOT / ".book_assets"))
MANIFEST = "_static/offline/manifest.json"


@dataclass(frozen=True)
class Asset:
    """One npm package: which tarball (pinned by sha512) and which of its files the book serves."""

    name: str
    version: str
    integrity: str
    license: str
    files: tuple[str, ...]  # globs under the tarball's package/ folder
    strip: str = ""  # prefix removed when copying (e.g. "dist/")

    @property
    def folder(self) -> str:
        """Where the files land, relative to ``_static``."""
        return f"offline/{self.name.lstrip('@').replace('/', '-')}-{self.version}"


ASSETS = {
    # MathJax 3 with its CHTML fonts, the TeX extensions it autoloads, and the accessibility
    # components (explorer, speech) that its menu loads on demand.
    "mathjax": Asset("mathjax", "3.2.2", "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9Nl"
                     "iPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==", "Apache-2.0",
                     ("es5/tex-mml-chtml.js", "es5/output/chtml/*", "es5/input/tex/*", "es5/input/mml/*",
                      "es5/ui/*", "es5/a11y/*", "es5/sre/*", "LICENSE"), strip="es5/"),
    # The ES module sphinxcontrib-mermaid imports, and the chunks it imports in turn.
    "mermaid": Asset("mermaid", "11.12.1", "sha512-UlIZrRariB11TY1RtTgUWp65tphtBv4CSq7vyS2ZZ2TgoMjs2"
                     "nloq+wFqxiwcxlhHUvs7DPGgMjs2aeQxz5h9g==", "MIT",
                     ("dist/mermaid.esm.min.mjs", "dist/chunks/mermaid.esm.min/*.mjs", "LICENSE"),
                     strip="dist/"),
    # The widget manager for ipywidgets 8 (same @jupyter-widgets/* ranges as ipywidgets 8.1.9) and
    # the Font Awesome fonts it loads relative to itself (woff2/woff: what browsers pick first).
    "widgets": Asset("@jupyter-widgets/html-manager", "1.0.15", "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKm"
                     "SazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==", "BSD-3-Clause",
                     ("dist/embed-amd.js", "dist/*.woff2", "dist/*.woff"), strip="dist/"),
    # bertviz's output asks for require.js 2.3.6, d3 5.7.0 and jQuery 2.0.0; npm has no jQuery
    # 2.0.0, so the last release of the same major line stands in.
    "requirejs": Asset("requirejs", "2.3.6", "sha512-ipEzlWQe6RK3jkzikgCupiTbTvm4S0/CAU5GlgptkN5SO6F3u"
                       "0UD0K18wy6ErDqiCyP4J4YYe1HuAShvsxePLg==", "MIT", ("require.js",)),
    "d3": Asset("d3", "5.7.0", "sha512-8KEIfx+dFm8PlbJN9PI0suazrZ41QcaAufsKE9PRcqYPWLngHIyWJZX96n6IQKePG"
                "geSu0l7rtlueSSNq8Zc3g==", "BSD-3-Clause", ("dist/d3.min.js", "LICENSE"), strip="dist/"),
    "jquery": Asset("jquery", "2.2.4", "sha512-lBHj60ezci2u1v2FqnZIraShGgEXq35qCzMv4lITyHGppTnA13rwR0Mg"
                    "wyNJh9TnDs3aXUvd1xjAotfraMHX/Q==", "MIT", ("dist/jquery.min.js", "LICENSE.txt"),
                    strip="dist/"),
}

# bertviz hard-codes these in its HTML and in its require.config; each maps to a local file
# (require.js paths omit ".js").
BERTVIZ_URLS = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js": ("requirejs", "require.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min": ("d3", "d3.min"),
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min": ("jquery", "jquery.min"),
}

# What loads a resource from off-site: tags with src/href (links to pages are fine), module
# imports, require.js paths, CSS url() and the widget manager's CDN fallback.
_TAG = re.compile(r"<(script|img|link|iframe|source|video|audio)\b[^>]*>", re.I)
_OFFSITE_ATTR = re.compile(r"""\b(src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", re.I)
_OFFSITE_CODE = (re.compile(r"""(?:\bimport\s*\(?\s*|\bfrom\s*)["']((?:https?:)?//[^"']+)["']"""),
                 re.compile(r"""\burl\(\s*["']?((?:https?:)?//[^"')\s]+)"""),
                 re.compile(r"""data-jupyter-widgets-cdn\s*=\s*["']((?:https?:)?//[^"']+)"""))
_REQUIRE_PATHS = re.compile(r"\bpaths\s*:\s*\{([^}]*)\}")
_QUOTED_URL = re.compile(r"""["']((?:https?:)?//[^"']+)["']""")


class AssetsUnavailable(RuntimeError):
    """The pinned packages could not be obtained (no npm, no registry, a checksum mismatch)."""


def integrity_of(data: bytes) -> str:
    """The npm-style ``sha512-<base64>`` integrity string of ``data``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _npm_pack(asset: Asset, dest: Path) -> Path:
    """Download one tarball from the npm registry into ``dest`` and check its pinned sha512."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetsUnavailable("npm is not installed (it comes with Node.js)")
    spec = f"{asset.name}@{asset.version}"
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [npm, "pack", spec, "--pack-destination", tmp, "--json", "--prefer-offline",
               "--fetch-retries=1", "--fetch-timeout=60000", "--fetch-retry-mintimeout=2000",
               "--fetch-retry-maxtimeout=5000", "--loglevel=error"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp)
        except subprocess.TimeoutExpired as err:
            raise AssetsUnavailable(f"`npm pack {spec}` timed out after 300 s") from err
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            said = [line.removeprefix("npm error").strip() for line in done.stderr.splitlines()]
            why = [line for line in said if line.startswith("code ") or "Error:" in line] or said[:2]
            raise AssetsUnavailable(f"`npm pack {spec}` failed: {'; '.join(why) or done.returncode}")
        got = integrity_of(tarballs[0].read_bytes())
        if got != asset.integrity:
            raise AssetsUnavailable(f"{spec}: tarball sha512 {got} differs from the pinned {asset.integrity}")
        target = dest / f"{Path(asset.folder).name}.tgz"
        os.replace(tarballs[0], target)
    return target


def _extract(asset: Asset, tarball: Path, staging: Path) -> None:
    """Copy the asset's selected regular files from the tarball into ``staging/<folder>``."""
    tmp = Path(tempfile.mkdtemp(dir=staging))
    try:
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                rel = member.name.removeprefix("package/")
                if not member.isfile() or ".." in rel.split("/") or rel.startswith("/"):
                    continue
                if any(fnmatch.fnmatch(rel, pattern) for pattern in asset.files):
                    path = tmp / rel.removeprefix(asset.strip)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(tar.extractfile(member).read())
        if not any(tmp.iterdir()):
            raise AssetsUnavailable(f"{asset.name}@{asset.version}: no file matched {asset.files}")
        out = staging / asset.folder
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)  # whole folders only: a concurrent build never sees half an asset
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(cache: Path = CACHE) -> Path:
    """Obtain every asset (from the cache when it is there) and return the staging folder.

    The staging folder holds ``offline/<package>-<version>/...``; add it to ``html_static_path``.
    """
    staging, tarballs, stamps = cache / "static", cache / "tarballs", cache / "stamps"
    for folder in (staging, tarballs, stamps):
        folder.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS.values():
        name = Path(asset.folder).name
        stamp, want = stamps / f"{name}.txt", repr(asset)  # re-extract when the pin or file list changes
        if stamp.exists() and stamp.read_text() == want and (staging / asset.folder).is_dir():
            continue
        tarball = tarballs / f"{name}.tgz"
        if not tarball.exists() or integrity_of(tarball.read_bytes()) != asset.integrity:
            tarball = _npm_pack(asset, tarballs)
        _extract(asset, tarball, staging)
        stamp.write_text(want)
    wanted = {Path(a.folder).name for a in ASSETS.values()}
    for old in (staging / "offline").iterdir():  # versions no longer pinned stay out of the book
        if old.is_dir() and old.name not in wanted:
            shutil.rmtree(old)
    notices = [f"{a.name} {a.version} ({a.license}) in {a.folder}/" for a in ASSETS.values()]
    (staging / "offline" / "THIRD-PARTY-NOTICES.txt").write_text(
        "Third-party files served by this book, fetched from the npm registry at build time:\n"
        + "\n".join(notices) + "\n")
    return staging


def local_url(key: str, file: str) -> str:
    """Path of one asset file relative to ``_static`` (``local_url('d3', 'd3.min.js')``)."""
    return f"{ASSETS[key].folder}/{file}"


def offsite_loads(html: str) -> list[str]:
    """Off-site URLs that a page would *load* (not links a reader may follow).

    >>> offsite_loads('<a href="https://x.org">x</a><script src="https://cdn.x/a.js"></script>')
    ['https://cdn.x/a.js']
    """
    found = []
    for tag in _TAG.finditer(html):
        text = tag.group(0)
        if tag.group(1).lower() == "link" and not re.search(
                r"""rel\s*=\s*["'][^"']*(stylesheet|icon|preload|modulepreload)""", text, re.I):
            continue
        found += [m.group(2) for m in _OFFSITE_ATTR.finditer(text)]
    found += [m.group(1) for pattern in _OFFSITE_CODE for m in pattern.finditer(html)]
    for block in _REQUIRE_PATHS.finditer(html):
        found += [m.group(1) for m in _QUOTED_URL.finditer(block.group(1))]
    return sorted(set(found))


def _say(app, message: str) -> None:
    from sphinx.util import logging
    from sphinx.util.console import bold, red

    logging.getLogger(__name__).info(bold(red(f"[offline-assets] {message}")))


def _configure(app, config) -> None:
    from sphinx.errors import ExtensionError

    ci = os.environ.get("CI", "").lower() == "true"
    app.offline_assets = {"self_contained": False, "reason": ""}
    if os.environ.get("LLM_LESSONS_OFFLINE_ASSETS", "1") == "0":
        reason = "LLM_LESSONS_OFFLINE_ASSETS=0"
    else:
        try:
            staging = fetch()
        except (AssetsUnavailable, OSError, tarfile.TarError) as err:
            reason = str(err)
        else:
            config.html_static_path = [*config.html_static_path, str(staging)]
            config.mathjax_path = local_url("mathjax", "tex-mml-chtml.js")
            config.mermaid_use_local = local_url("mermaid", "mermaid.esm.min.mjs")
            config.mermaid_version = ASSETS["mermaid"].version
            config.nb_ipywidgets_js = {local_url("requirejs", "require.js"): {},
                                       local_url("widgets", "embed-amd.js"): {}}
            app.offline_assets = {"self_contained": True, "reason": ""}
            _say(app, f"self-contained book: {len(ASSETS)} packages served from _static/offline/")
            return
    if ci:
        raise ExtensionError(f"CI builds the self-contained book, but the assets are unavailable: {reason}")
    app.offline_assets["reason"] = reason
    _say(app, f"NOT SELF-CONTAINED: pages will load MathJax, mermaid, widgets and bertviz's "
              f"libraries from public CDNs ({reason})")


# ipywidgets' manager typesets widget labels with MathJax 2's API (MathJax.Hub.Queue), an
# uncaught TypeError under the book's MathJax 3: route those calls to MathJax 3. By
# DOMContentLoaded the deferred MathJax script has run; the manager renders at "load".
_WIDGETS_JS = """%s
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (!mj || !mj.typesetPromise || mj.Hub) return;
  mj.Hub = {Queue: function () {
    Array.prototype.forEach.call(arguments, function (job) {
      if (Array.isArray(job) && job[0] === "Typeset") {
        mj.startup.promise.then(function () { return mj.typesetPromise(job[2] ? [job[2]] : undefined); });
      }
    });
  }};
});"""


def _rewrite_page(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        # sphinx-thebe and sphinx-togglebutton add their inline scripts twice (once with filename
        # None, once with ""); a second `const THEBE_JS_URL` is a SyntaxError: keep each once.
        unique, seen = [], set()
        for js in scripts:
            attributes = sorted(getattr(js, "attributes", {}).items())
            key = (str(getattr(js, "filename", js) or ""), repr(attributes))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
        if any(str(getattr(js, "filename", "") or "").endswith("embed-amd.js") for js in scripts):
            assets = ""
            if app.offline_assets["self_contained"]:
                # The manager finds its fonts next to the URL require.js gives its module: a
                # global `require` set before require.js loads is require.js's configuration.
                folder = context["pathto"](f"_static/{ASSETS['widgets'].folder}", 1)
                paths = {"@jupyter-widgets/html-manager": f"{folder}/embed-amd",
                         "@jupyter-widgets/html-manager/dist": folder}
                assets = (f"window.__jupyter_widgets_assets_path__ = {json.dumps(folder + '/')};\n"
                          f"var require = {json.dumps({'paths': paths})};")
            app.builder.add_js_file(None, body=_WIDGETS_JS % assets, priority=499)
    if not app.offline_assets["self_contained"] or "body" not in context:
        return
    body = context["body"]
    for url, (key, file) in BERTVIZ_URLS.items():
        if url in body:
            body = body.replace(url, context["pathto"](f"_static/{local_url(key, file)}", 1))
    context["body"] = body


def _check_and_report(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    out = Path(app.outdir)
    state = dict(app.offline_assets)
    if state["self_contained"]:
        for page in sorted(out.rglob("*.html")):
            for url in offsite_loads(page.read_text(encoding="utf-8", errors="replace")):
                logging.getLogger(__name__).warning(
                    f"[offline-assets] {page.relative_to(out)} loads {url} from off-site; "
                    "serve it from _static (see book/_ext/offline_assets.py)")
        files = [p for p in (out / "_static" / "offline").rglob("*") if p.is_file()]
        state["bytes"] = sum(p.stat().st_size for p in files)
        state["files"] = len(files)
    state["packages"] = {a.name: {"version": a.version, "license": a.license, "folder": a.folder}
                         for a in ASSETS.values()}
    (out / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(state, indent=1) + "\n")


def setup(app):
    app.connect("config-inited", _configure, priority=900)
    app.connect("html-page-context", _rewrite_page, priority=900)
    app.connect("build-finished", _check_and_report)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
