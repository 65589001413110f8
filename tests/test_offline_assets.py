"""The book's offline-assets extension (book/_ext/offline_assets.py), without building the book.

The browser test (tests/test_book_browser.py) proves the built pages; these tests pin the pieces:
the checksum format npm uses, safe extraction, the fallback when npm fails, the detection of
off-site loads, and the rewriting of bertviz's real output.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import stat
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("offline_assets", ROOT / "book/_ext/offline_assets.py")
oa = sys.modules.setdefault("offline_assets", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(oa)

# FIPS 180-2's test vector: SHA-512("abc").
SHA512_ABC = ("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
              "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")


def test_integrity_is_npms_sha512_base64_format():
    assert oa.integrity_of(b"abc") == "sha512-" + base64.b64encode(bytes.fromhex(SHA512_ABC)).decode()
    for asset in oa.ASSETS.values():  # every pin is a well-formed sha512 (64 bytes)
        assert len(base64.b64decode(asset.integrity.removeprefix("sha512-"))) == 64, asset.name


def _tarball(path: Path, files: dict[str, bytes], evil: bool = False) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if evil:
            info = tarfile.TarInfo("package/../../escaped.js")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
            link = tarfile.TarInfo("package/dist/link.mjs")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    return path


def test_extract_copies_only_selected_regular_files_and_strips_the_prefix(tmp_path):
    asset = oa.Asset("demo", "1.0.0", "sha512-x", "MIT", ("dist/*.mjs", "LICENSE"), strip="dist/")
    tgz = _tarball(tmp_path / "demo.tgz", {"package/dist/a.mjs": b"A", "package/dist/chunks/b.mjs": b"B",
                                           "package/dist/c.map": b"C", "package/README.md": b"R",
                                           "package/LICENSE": b"L"}, evil=True)
    staging = tmp_path / "static"
    staging.mkdir()
    oa._extract(asset, tgz, staging)
    out = staging / asset.folder
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["LICENSE", "a.mjs", "chunks/b.mjs"]  # fnmatch's * spans folders
    assert (out / "chunks/b.mjs").read_bytes() == b"B"
    assert not (tmp_path / "escaped.js").exists() and not any(p.is_symlink() for p in out.rglob("*"))


def _fake_npm(folder: Path, payload: bytes) -> None:
    """An `npm` that 'packs' a tarball holding `payload` into --pack-destination."""
    script = folder / "npm"
    script.write_text(f"""#!/usr/bin/env python3
import sys, tarfile, io
dest = sys.argv[sys.argv.index("--pack-destination") + 1]
with tarfile.open(dest + "/pkg-1.0.0.tgz", "w:gz") as tar:
    info = tarfile.TarInfo("package/require.js"); data = {payload!r}; info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
print("[]")
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_fetch_rejects_a_tarball_whose_checksum_differs(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_npm(bin_dir, b"not what was pinned")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(oa.AssetsUnavailable, match="sha512 .* differs from the pinned"):
        oa.fetch(tmp_path / "cache")


def test_fetch_without_npm_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm anywhere
    with pytest.raises(oa.AssetsUnavailable, match="npm is not installed"):
        oa.fetch(tmp_path / "cache")


@pytest.mark.parametrize(("html", "expected"), [
    ('<script src="https://cdn.x/a.js"></script>', ["https://cdn.x/a.js"]),
    ('<script defer src="//cdn.x/b.js"></script>', ["//cdn.x/b.js"]),
    ('<link rel="stylesheet" href="https://fonts.x/c.css">', ["https://fonts.x/c.css"]),
    ('<link rel="canonical" href="https://book.x/page.html">', []),
    ('<a href="https://colab.research.google.com/github/o/r/blob/main/n.ipynb">Colab</a>', []),
    ('<img src="https://img.x/d.png" alt="d">', ["https://img.x/d.png"]),
    ('<script type="module">import mermaid from "https://cdn.x/m.mjs";</script>', ["https://cdn.x/m.mjs"]),
    ("<script>require.config({paths: {d3: 'https://cdn.x/d3', jq: 'https://cdn.x/jq'}});</script>",
     ["https://cdn.x/d3", "https://cdn.x/jq"]),
    ('<div style="background: url(https://img.x/e.png)"></div>', ["https://img.x/e.png"]),
    ('<script src="x.js" data-jupyter-widgets-cdn="https://cdn.x/npm/"></script>', ["https://cdn.x/npm/"]),
    ('<p>Data from https://example.org, see <code>import x</code>.</p>', []),
    ('<script src="../_static/offline/d3-5.7.0/d3.min.js"></script>', []),
])
def test_offsite_loads(html, expected):
    assert oa.offsite_loads(html) == expected


def test_bertviz_urls_cover_every_cdn_url_in_the_installed_bertviz():
    bertviz = pytest.importorskip("bertviz")
    sources = "".join(p.read_text() for p in Path(bertviz.__file__).parent.glob("*_view.*"))
    urls = set(re.findall(r"https://cdnjs\.cloudflare\.com/[^'\"\s]+", sources))
    assert urls == set(oa.BERTVIZ_URLS), "bertviz's CDN URLs changed: update BERTVIZ_URLS and ASSETS"


def test_rewritten_bertviz_output_loads_nothing_off_site():
    torch = pytest.importorskip("torch")
    from bertviz import head_view, model_view

    tokens = ["[CLS]", "hi", "[SEP]"]
    attn = (torch.softmax(torch.randn(1, 2, 3, 3), dim=-1),)  # (layers) of (B, nh, T, T)
    body = "".join(view(attn, tokens, html_action="return").data for view in (head_view, model_view))
    assert len(oa.offsite_loads(body)) == 3  # require.js, d3 and jQuery, as bertviz ships them
    app = SimpleNamespace(offline_assets={"self_contained": True})
    context = {"body": body, "pathto": lambda path, resource: f"../{path}"}
    oa._rewrite_page(app, "notebooks/x", "page.html", context, None)
    assert oa.offsite_loads(context["body"]) == []
    for key, file in oa.BERTVIZ_URLS.values():  # each target is a file the asset really copies
        local = f"../_static/{oa.local_url(key, file)}"
        assert local in context["body"]
        asset = oa.ASSETS[key]
        wanted = f"{asset.strip}{file if file.endswith('.js') else file + '.js'}"
        assert any(re.fullmatch(p.replace("*", ".*"), wanted) for p in asset.files), wanted


def test_pages_keep_each_inline_script_once():
    js = [SimpleNamespace(filename=None, attributes={"body": "const A = 1"}),
          SimpleNamespace(filename="", attributes={"body": "const A = 1"}),
          SimpleNamespace(filename="_static/x.js", attributes={}),
          SimpleNamespace(filename="_static/x.js", attributes={"defer": "defer"})]
    context = {"script_files": list(js), "body": ""}
    app = SimpleNamespace(offline_assets={"self_contained": False})
    oa._rewrite_page(app, "p", "page.html", context, None)
    assert context["script_files"] == [js[0], js[2], js[3]]
