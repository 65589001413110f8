"""The rendered book, opened page by page in a real browser with no network but 127.0.0.1.

Serves a built book (``LLM_LESSONS_BOOK_HTML``, which ``scripts/test.sh`` sets after its build; run
alone, the test builds the book itself) on a free port of 127.0.0.1 and drives Debian's headless
Chromium through Playwright (``LLM_LESSONS_CHROMIUM`` overrides ``/usr/bin/chromium``; never
``playwright install``). Requests to any other host are blocked three ways (DNS rules, a dead
proxy, request interception) and every request is recorded. Each page of ``_toc.yml`` is checked
for what it contains: no console errors or failed loads, images loaded with alt text, every
equation typeset by MathJax, every mermaid diagram drawn, every bertviz view drawn with its
tokens, every saved widget view rendered, launch buttons pointing at the page's notebook,
internal links and anchors that resolve, the "Runs in … GPU …" note on notebook pages, the footer,
and a layout that fits the window over the whole page (``check_layout``): on the desktop every
equation and table fits; at phone width (390 px) nothing is wider than the window unless it
scrolls inside its own box, and nothing is clipped. Screenshots (desktop and phone, full page)
go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LLM_LESSONS_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("LLM_LESSONS_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
CI = os.environ.get("CI", "").lower() == "true"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
COLLECT_JS = (Path(__file__).parent / "book_page_facts.js").read_text(encoding="utf-8")


def toc_docnames() -> list[str]:
    """Every document of ``_toc.yml`` in book order (root first)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", n) for n in names]


PAGES = toc_docnames()
# The English edition at the root, the Chinese one (scripts/book_editions.py) under zh/.
EDITIONS = {"en": "", "zh": "zh/"}
ZH_PROSE_SHARE = 0.90  # of the letters of a Chinese page's prose, at least this many are Chinese
# Two pages tell the history of the models by name (GPT-3, Chinchilla, Gopher, Megatron-Turing NLG,
# DeepSeek-V3, Vaswani, Kaplan, ...), names Chinese writing keeps in Latin letters: fully
# translated, they measure 88%. Each gets its own floor, and must still be >= 97% Chinese once
# the letters of names are set aside, so an English sentence left there would still fail.
NAME_DENSE = {"book/01_background": 0.87, "notebooks/01_scale": 0.87}
ZH_SHARE_WITHOUT_NAMES = 0.97
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
             "WenQuanYi Micro Hei")


def is_notebook(docname: str) -> bool:
    return (ROOT / f"{docname}.ipynb").exists()


def launch_urls(docname: str) -> dict[str, str]:
    """The Colab and Binder URLs a notebook page must offer, from ``_config.yml``'s repository."""
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/").strip("/")
    branch = CONFIG["repository"].get("branch", "main")
    launch = CONFIG["launch_buttons"]
    path = f"{docname}.ipynb"
    ui = "tree" if launch.get("notebook_interface", "classic") == "classic" else "lab/tree"
    return {"colab": f"{launch['colab_url']}/github/{repo}/blob/{branch}/{path}",
            "binder": f"{launch['binderhub_url']}/v2/gh/{repo}/{branch}?urlpath={ui}/{path}"}


def bertviz_views(html: str) -> dict[str, dict]:
    """The params bertviz embedded in a page, by root div id (what each view must draw)."""
    views, decoder = {}, json.JSONDecoder()
    for match in re.finditer(r"const params = ", html):
        params, _ = decoder.raw_decode(html, match.end())
        views[params["root_div_id"]] = params
    return views


# -- the served book ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    given = os.environ.get("LLM_LESSONS_BOOK_HTML")
    if given:
        html = Path(given)
        if not (html / "index.html").exists():
            pytest.fail(f"LLM_LESSONS_BOOK_HTML={given} holds no built book (no index.html)")
    else:  # run on its own: build the book first (scripts/test.sh passes its build instead)
        out = tmp_path_factory.mktemp("book")
        subprocess.run(["bash", str(ROOT / "scripts/build_book.sh"), str(out)], check=True)
        html = out / "_build" / "html"
    manifest = json.loads((html / "_static/offline/manifest.json").read_text())
    if not manifest["self_contained"]:
        message = (f"the book was built with CDN links ({manifest['reason']}); the offline browser "
                   "check needs the self-contained build")
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return html


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature is http.server's
        pass


@pytest.fixture(scope="module")
def base_url(book_html):
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", autouse=True)
def fresh_screenshots():
    """This run's screenshots only (pages removed from the book leave none behind). Under
    pytest-xdist the workers share the folder, so whoever starts them (scripts/test.sh) empties
    it instead."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for old in [*SHOTS.glob("*.png"), SHOTS / "zh_prose_share.tsv"]:
        old.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = (f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; "
                   "scripts/test.sh does so in CI) to run the browser check")
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1"},
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-features=Translate,OptimizationHints,MediaRouter"])
        yield browser
        browser.close()


class Visit:
    """One browser tab on one page, recording every request and every complaint."""

    def __init__(self, browser, base_url: str, viewport: dict, mobile: bool = False):
        self.context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile,
                                           service_workers="block", locale="en-US")
        self.origin = base_url.rstrip("/")
        self.requests: list[str] = []
        self.offsite: list[str] = []
        self.problems: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(
            f"failed to load {r.url}: {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"HTTP {r.status} for {r.url}"))

    def _route(self, route):
        url = route.request.url
        if urllib.parse.urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.offsite.append(url)
            route.abort("blockedbyclient")

    def _console(self, msg):
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def open(self, path: str) -> dict:
        self.page.goto(f"{self.origin}/{path}", wait_until="load")
        return self.page.evaluate(COLLECT_JS)

    def network_problems(self) -> list[str]:
        left = [u for u in self.requests if not u.startswith((self.origin, "data:", "blob:"))]
        return ([f"request left 127.0.0.1: {u}" for u in sorted(set(left + self.offsite))]
                + self.problems)

    def close(self):
        self.context.close()


# -- the checks --------------------------------------------------------------------------------


def check_content(facts: dict, html: str, docname: str) -> list[str]:
    """Everything a page's own content must show, as found in the settled page."""
    bad = []
    bad += [f"still waiting after 30 s for: {', '.join(facts['pending'])}"] if facts["pending"] else []
    for img in facts["images"]:
        if not img["loaded"]:
            bad.append(f"image not loaded: {img['src']}")
        # A widget's own images (an Output widget's figure) cannot carry alt text; CONTRIBUTING
        # asks for a static, described figure beside every interactive one.
        if img["inArticle"] and not img["decorative"] and not img["inWidget"] and (
                not img["alt"].strip() or re.search(r"\.(png|jpe?g|svg|gif)$", img["alt"].strip())):
            if img["cell"]:
                bad.append(f"image without alt text: the output of the cell `{img['cell']}` "
                           '(give that cell the metadata {"mystnb": {"image": {"alt": "..."}}})')
            else:
                bad.append(f"image without alt text: {img['src']}")
    bad += [f"figure without a caption: {f['src']}" for f in facts["figures"] if not f["caption"]]
    math = facts["math"]
    if math["typeset"] != math["count"]:
        bad.append(f"MathJax typeset {math['typeset']} of {math['count']} equations")
    bad += [f"MathJax error: {e}" for e in math["errors"]]
    merm = facts["mermaid"]
    if merm["rendered"] != merm["count"]:
        bad.append(f"mermaid drew {merm['rendered']} of {merm['count']} diagrams")
    bad += [f"mermaid error: {e}" for e in merm["errors"]]
    expected = bertviz_views(html)
    drawn = {v["id"]: v for v in facts["bertviz"]}
    if set(drawn) != set(expected):
        bad.append(f"bertviz containers {sorted(drawn)} differ from the views in the page {sorted(expected)}")
    for vid, params in expected.items():
        view, att = drawn.get(vid), params["attention"][int(params["default_filter"])]
        if view is None or not view["svg"]:
            bad.append(f"bertviz view {vid} drew no SVG")
        elif "display_mode" in params:  # model_view: a thumbnail per (layer, head), a line per token pair
            n_lh = len(att["attn"]) * len(att["attn"][0])
            want_lines = n_lh * len(att["left_text"]) * len(att["right_text"])
            if view["thumbnails"] != n_lh or view["lines"] != want_lines:
                bad.append(f"bertviz model_view {vid}: {view['thumbnails']} thumbnails and {view['lines']}"
                           f" lines, expected {n_lh} and {want_lines}")
        elif view["left"] != att["left_text"] or view["right"] != att["right_text"]:
            bad.append(f"bertviz head_view {vid} shows tokens {view['left']} / {view['right']}, "
                       f"expected {att['left_text']} / {att['right_text']}")
    widgets = facts["widgets"]
    if widgets["rendered"] != widgets["views"]:
        bad.append(f"rendered {widgets['rendered']} of {widgets['views']} saved widget views")
    bad += [f"font failed to load: {f}" for f in facts["fontErrors"]]
    footer = facts["footer"]
    for needed in (CONFIG["author"], str(CONFIG["copyright"]), "CC BY 4.0", "MIT"):
        if needed not in footer:
            bad.append(f"footer lacks {needed!r}: {footer!r}")
    if is_notebook(docname):
        want = launch_urls(docname)
        for name, url in want.items():
            if url not in facts["launch"]:
                bad.append(f"no {name} launch button to {url} (found {facts['launch']})")
        note = facts["runsIn"]
        if not (note["text"] and note["beforeCode"] and "GPU" in note["text"]):
            bad.append(f"no '**Runs in** … · **GPU** …' note above the first code cell (found {note})")
    return bad


def check_layout(layout: dict, desktop: bool, chapter: bool) -> list[str]:
    """The whole page fits the window: wide things scroll in their own boxes, nothing is clipped.

    At any width: the page itself never scrolls sideways, prose never reaches past the window,
    no element does unless it sits in a scroll container, and a display equation or a table wider
    than its box must scroll inside it (MathJax containers: scroll width against client width).
    On a chapter page (``book/``) read on the desktop, equations and tables must fit outright: no
    reader should have to scroll a formula of the prose there.
    """
    bad = []
    if layout["scrollWidth"] > layout["innerWidth"] + 1:
        bad.append(f"the page scrolls sideways ({layout['scrollWidth']} px wide, window "
                   f"{layout['innerWidth']} px)")
    bad += [f"prose overflows: {o}" for o in layout["overflowing"]]
    bad += [f"wider than the window, outside any scroll container: {w}" for w in layout["wide"]]
    boxes = [("equation", eq, f"{eq['scrollWidth']} px of content in {eq['clientWidth']} px: {eq['tex']}")
             for eq in layout["equations"]]
    boxes += [("table", t, f"{t['width']} px in {t['room']} px: {t['header']}") for t in layout["tables"]]
    for kind, box, size in boxes:
        if not box["scrolls"]:
            bad.append(f"clipped {kind}, {size}")
        elif desktop and chapter:
            bad.append(f"{kind} does not fit the page, {size}")
    return bad


_targets: dict[str, set[str] | None] = {}


def check_links(facts: dict, base_url: str) -> list[str]:
    """Every same-site link resolves to a served file, and every #anchor to an element id."""
    bad = []
    for href in sorted(set(facts["links"])):
        if not href.startswith(base_url):
            continue
        target, _, anchor = href.partition("#")
        if target not in _targets:
            try:
                with urllib.request.urlopen(target, timeout=10) as resp:
                    body = resp.read().decode("utf-8", "replace")
                _targets[target] = set(re.findall(r'\bid="([^"]+)"', body))
            except urllib.error.URLError:
                _targets[target] = None
        ids = _targets[target]
        if ids is None:
            bad.append(f"broken link: {href}")
        elif anchor and target.endswith(".html") and urllib.parse.unquote(anchor) not in ids:
            bad.append(f"broken anchor: {href}")
    return bad


def full_page_screenshot(page, path: Path) -> None:
    """The whole page as one image; the first screen where Chromium cannot capture the whole.

    A long page at phone width can exceed the largest image Chromium captures in one go. The
    layout checks do not depend on the picture: they measure every element of the page.
    """
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.screenshot(path=str(path), full_page=True)
    except PlaywrightError:
        page.screenshot(path=str(path))


def shot_name(docname: str) -> str:
    return docname.replace("/", "__")


def check_edition(facts: dict, edition: str, docname: str, base_url: str) -> list[str]:
    """The page says its language, links to itself in the other edition, and (Chinese) reads
    as Chinese: at least ``ZH_PROSE_SHARE`` of its prose letters are CJK, set in a CJK font."""
    bad = []
    lang = {"en": "en", "zh": "zh-CN"}[edition]
    if facts["edition"]["lang"] != lang:
        bad.append(f'<html lang="{facts["edition"]["lang"]}">, expected "{lang}"')
    other = EDITIONS["zh" if edition == "en" else "en"]
    want = f"{base_url}{other}{docname}.html"
    if facts["edition"]["switchTo"] != want:
        bad.append(f"the language switcher goes to {facts['edition']['switchTo']!r}, not {want!r}")
    if edition == "zh":
        prose = facts["prose"]
        share = prose["cjk"] / max(1, prose["cjk"] + prose["latin"])
        words = prose["latin"] - prose["latinInNames"]
        without_names = prose["cjk"] / max(1, prose["cjk"] + words)
        with (SHOTS / "zh_prose_share.tsv").open("a", encoding="utf-8") as log:
            log.write(f"{docname}\t{prose['cjk']}\t{prose['latin']}\t{share:.3f}\t"
                      f"{without_names:.3f}\n")
        floor = NAME_DENSE.get(docname, ZH_PROSE_SHARE)
        if share < floor or (docname in NAME_DENSE and without_names < ZH_SHARE_WITHOUT_NAMES):
            bad.append(f"the prose is only {share:.1%} Chinese ({without_names:.1%} without names;"
                       f" {prose['cjk']} CJK characters, {prose['latin']} Latin letters; Latin "
                       f"words: {prose['latinWords'][:60]})")
        if not any(font in facts["edition"]["font"] for font in CJK_FONTS):
            bad.append(f"no CJK font in the prose's font stack: {facts['edition']['font']}")
    return bad


@pytest.mark.parametrize("docname", PAGES)
@pytest.mark.parametrize("edition", sorted(EDITIONS))
def test_page_renders_offline(edition, docname, browser, base_url, book_html):
    path = f"{EDITIONS[edition]}{docname}.html"
    html = (book_html / path).read_text(encoding="utf-8")
    chapter = docname.startswith("book/")  # a chapter's prose page, not a notebook
    shot = f"{edition}__{shot_name(docname)}"
    desk = Visit(browser, base_url, DESKTOP)
    try:
        facts = desk.open(path)
        problems = check_content(facts, html, docname) + check_links(facts, base_url)
        problems += check_edition(facts, edition, docname, base_url)
        layout = check_layout(facts["layout"], desktop=True, chapter=chapter)
        problems += [f"[desktop] {p}" for p in layout]
        full_page_screenshot(desk.page, SHOTS / f"{shot}.desktop.png")
        problems += desk.network_problems()
    finally:
        desk.close()
    phone = Visit(browser, base_url, PHONE, mobile=True)
    try:
        facts = phone.open(path)
        full_page_screenshot(phone.page, SHOTS / f"{shot}.phone.png")
        layout = check_layout(facts["layout"], desktop=False, chapter=chapter)
        problems += [f"[{PHONE['width']} px] {p}" for p in layout]
        problems += [f"[phone] {p}" for p in phone.network_problems()]
    finally:
        phone.close()
    assert not problems, f"{path}:\n  " + "\n  ".join(problems)


def test_index_and_search_work_offline(browser, base_url):
    visit = Visit(browser, base_url, DESKTOP)
    try:
        visit.page.goto(base_url, wait_until="load")  # index.html redirects to the root page
        visit.page.wait_for_url(f"**/{PAGES[0]}.html")
        word = re.search(r"[A-Za-z]{5,}", visit.page.locator("article h1").first.inner_text()).group(0)
        icon = visit.page.locator("link[rel~='icon']").first.get_attribute("href")
        with urllib.request.urlopen(urllib.parse.urljoin(visit.page.url, icon), timeout=10) as resp:
            assert resp.read() == (ROOT / CONFIG["html"]["favicon"]).read_bytes(), "the favicon is not ours"
        visit.page.locator(".search-button__button:visible").first.click()
        box = visit.page.locator("#pst-search-dialog input[name='q']")
        box.fill(word)
        box.press("Enter")
        visit.page.wait_for_url("**/search.html?q=*")
        results = visit.page.locator("#search-results ul.search li")
        results.first.wait_for(timeout=20_000)
        assert results.count() >= 1, f"searching for {word!r} found nothing"
        visit.page.screenshot(path=str(SHOTS / "search.desktop.png"))
        assert not visit.network_problems(), "\n".join(visit.network_problems())
    finally:
        visit.close()


@pytest.mark.parametrize("word", ["令牌", "流利度", "困惑度", "掩码"])
@pytest.mark.parametrize("edition", sorted(EDITIONS))
def test_search_finds_the_articles_words(edition, word, browser, base_url):
    """The article's own Chinese terms (令牌 for token, 流利度 for fluency, ...) find the glossary,
    in either edition (the Chinese one splits its text into words with jieba, the glossary's
    terms added to its dictionary)."""
    visit = Visit(browser, base_url, DESKTOP)
    try:
        visit.page.goto(f"{base_url}{EDITIONS[edition]}search.html?q={urllib.parse.quote(word)}",
                        wait_until="load")
        # results appear one by one; the summary line (empty until then) is written when the
        # last one is shown, in the edition's language
        visit.page.wait_for_function(
            "() => (document.querySelector('#search-results .search-summary') || {})"
            ".textContent", timeout=30_000)
        results = visit.page.locator("#search-results ul.search li")
        links = [results.nth(i).locator("a").first for i in range(results.count())]
        hrefs = [link.get_attribute("href") or "" for link in links]
        assert any("appendix_glossary" in h for h in hrefs), f"searching {word} found only {hrefs}"
        if edition == "zh":
            visit.page.screenshot(path=str(SHOTS / f"search.zh.{word}.png"))
        assert not visit.network_problems(), "\n".join(visit.network_problems())
    finally:
        visit.close()


def test_built_book_is_self_contained_on_disk(book_html):
    """Every pinned package is in the built _static, each named with its licence in the notices."""
    manifest = json.loads((book_html / "_static/offline/manifest.json").read_text())
    for name, pkg in manifest["packages"].items():
        folder = book_html / "_static" / pkg["folder"]
        assert folder.is_dir() and any(folder.iterdir()), f"{name} {pkg['version']} is missing from _static"
    notices = (book_html / "_static/offline/THIRD-PARTY-NOTICES.txt").read_text()
    for pkg in manifest["packages"].values():
        assert f"({pkg['license']}) in {pkg['folder']}/" in notices, f"no licence notice for {pkg}"


def test_layout_check_catches_clipping(browser, base_url):
    """The layout check is not vacuous: break a chapter page at phone width and it complains.

    Display equations and tables lose their scroll boxes (so they are clipped by the column), and
    a 600 px block is added to the prose: each must be reported.
    """
    phone = Visit(browser, base_url, PHONE, mobile=True)
    try:
        facts = phone.open("book/01_background.html")
        assert check_layout(facts["layout"], desktop=False, chapter=True) == [], "not clean to start"
        phone.page.add_style_tag(content=(
            'mjx-container[display="true"], .pst-scrollable-table-container, .table-wrapper '
            "{ overflow: hidden !important; }"))
        phone.page.evaluate("""() => {
            const block = document.createElement("div");
            block.style.width = "600px";
            block.textContent = "a block too wide for a phone";
            document.querySelector("article p").after(block);
        }""")
        problems = check_layout(phone.page.evaluate(COLLECT_JS)["layout"], desktop=False, chapter=True)
    finally:
        phone.close()
    assert any(p.startswith("clipped equation") for p in problems), problems
    assert any(p.startswith("clipped table") for p in problems), problems
    assert any("a block too wide for a phone" in p for p in problems), problems
    assert any(p.startswith("the page scrolls sideways") or p.startswith("wider than the window")
               for p in problems), problems
