"""Two editions from one source: the English book and its Chinese translation.

``scripts/book_editions.py`` builds the Chinese edition with ``language = zh_CN`` into
``_build/html/zh/``, beside the English pages in ``_build/html/``. This extension gives both:

- a language switcher in every page's header that opens *the same page* in the other edition
  (``book/04_math.html`` ⇄ ``zh/book/04_math.html``), plus ``<link rel="alternate" hreflang>``;
- bilingual pages (the FAQ, the glossary) that read as Chinese-only in the Chinese edition:
  a block marked ``:::{container} lang-en`` holds English that sits next to its Chinese version,
  so the Chinese edition drops it, and the gettext extraction never asks for its translation;
- in the Chinese edition, the bibliography marked ``lang="en"`` (the works are English) and
  author–year citations written the Chinese way ("Vaswani 等 [2017]");
- the part captions of ``_toc.yml`` translated too (Sphinx's own transform runs too early for
  the toctrees that sphinx-external-toc inserts);
- a guard against emphasis markers left as text ("**第 2 章（…）**用": after Chinese
  punctuation a closing ``**`` needs a space or punctuation after it to close);
- a guard: a translation that Sphinx could not apply (it skips, silently, a translated title
  that Markdown reads as a list item, "5. 训练", where "5\\. 训练" was meant) is a warning,
  so an error in the ``-W`` build, instead of an English paragraph in the Chinese edition;
- for the Chinese edition's search, a jieba user dictionary made of the glossary's Chinese terms
  (``html_search_options['dict']``), so 困惑度 or 令牌 is indexed as one word.

>>> other_edition_url("book/04_math", "en")
'../zh/book/04_math.html'
>>> other_edition_url("book/04_math", "zh_CN")
'../../book/04_math.html'
>>> other_edition_url("index", "en")
'zh/index.html'
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.i18n import docname_to_domain
from sphinx.util.nodes import extract_messages

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
ZH_SUBDIR = "zh"  # where the Chinese edition lives, under the English edition's root
ZH_FOOTER = """<p class="llm-lessons-licence">文字采用
<a href="https://creativecommons.org/licenses/by/4.0/deed.zh-hans" rel="license">CC BY 4.0</a>
许可，代码采用 <a href="https://opensource.org/license/mit" rel="license">MIT</a> 许可。</p>"""


def is_chinese(language: str | None) -> bool:
    return (language or "").lower().startswith("zh")


def other_edition_url(pagename: str, language: str | None) -> str:
    """Relative URL, from ``pagename`` in this edition, of the same page in the other one."""
    up = "../" * pagename.count("/")
    if is_chinese(language):
        return f"{up}../{pagename}.html"
    return f"{up}{ZH_SUBDIR}/{pagename}.html"


class DropEnglishTwins(SphinxTransform):
    """Remove ``lang-en`` containers from the Chinese edition and from the message catalogs.

    Runs before Sphinx's own translation transform (priority 20), so the English twin of a
    Chinese paragraph is neither translated nor shown twice.
    """

    default_priority = 10

    def apply(self, **kwargs) -> None:
        if not (is_chinese(self.config.language) or self.app.builder.name == "gettext"):
            return
        for node in list(self.document.findall(nodes.container)):
            if "lang-en" in node["classes"]:
                node.parent.remove(node)


def page_catalog(app, docname: str):
    """The gettext catalog of one page in this edition's language, or None."""
    domain = docname_to_domain(docname, app.config.gettext_compact)
    dirs = [str(Path(app.srcdir) / d) for d in app.config.locale_dirs]
    catalog, found = init_locale(dirs, app.config.language, domain)
    return catalog if found else None


class TranslateTocCaptions(SphinxTransform):
    """Translate the part captions of ``_toc.yml`` ("Background · 背景介绍" -> "背景介绍").

    sphinx-external-toc inserts the toctrees (priority 100) after Sphinx's translation
    transform (20) has run, so their captions would stay as ``_toc.yml`` has them; the root
    page's catalog holds their translations (the gettext build extracts them).
    """

    default_priority = 150

    def apply(self, **kwargs) -> None:
        if not is_chinese(self.config.language):
            return
        toctrees = list(self.document.findall(addnodes.toctree))
        catalog = page_catalog(self.app, self.env.docname) if toctrees else None
        for node in toctrees:
            caption = node.get("rawcaption") or node.get("caption")
            if catalog is not None and caption:
                node["caption"] = catalog.gettext(caption)


def check_translations_applied(app, doctree) -> None:
    """Warn about every message of a Chinese page whose catalog translation is not on the page."""
    if not is_chinese(app.config.language):
        return
    catalog = page_catalog(app, app.env.docname)
    if catalog is None:
        return
    for node, msg in extract_messages(doctree):
        msgstr = catalog.gettext(msg) if msg else ""
        if not msgstr or msgstr == msg or node.get("translated"):
            continue
        if isinstance(node, addnodes.toctree) and node.get("caption") == msgstr:
            continue  # translated by TranslateTocCaptions, which leaves no mark
        if isinstance(node, nodes.image) and node.get("alt") != msg:
            continue  # an image's alt text is replaced without the "translated" mark
        logger.warning("the translation of %r was not applied (does Markdown read it as "
                       "something else, a list item or a heading?): %r", msg[:60], msgstr[:60],
                       location=node, type="i18n", subtype="not-applied")
    # Markdown closes **bold** only where the closing ** is "right-flanking": after Chinese
    # punctuation it must be followed by a space or punctuation ("**第 2 章（…）**用" shows its
    # asterisks). Left-over markers in a translated paragraph's text are such a failure.
    for node in doctree.findall(nodes.TextElement):
        if not node.get("translated") or isinstance(node, nodes.FixedTextElement):
            continue
        for text in node.findall(nodes.Text):
            if isinstance(text.parent, (nodes.literal, nodes.math, nodes.raw)):
                continue
            if "**" in text or re.search(r"(?<![\w*])\*(?=[^\s*])[^*]*(?<=\S)\*(?![\w*])", text):
                logger.warning("emphasis markers left as text in the translation (move the closing "
                               "** before the punctuation, or add a space after it): %r",
                               str(text)[:80], location=node, type="i18n", subtype="emphasis")


def add_switch(app, pagename, templatename, context, doctree) -> None:
    chinese = is_chinese(app.config.language)
    context["edition_switch"] = {
        "url": other_edition_url(pagename, app.config.language),
        "hreflang": "en" if chinese else "zh-CN",
        "label": "English" if chinese else "中文",
        "title": "Read this page in English" if chinese else "阅读本页的中文版",
    }
    if chinese and "body" in context:
        # The references are English-language works, cited as published: say so to browsers and
        # screen readers. In the running text, Chinese writes "Vaswani 等", not "et al.".
        context["body"] = (context["body"]
                           .replace('<div role="list" class="citation-list">',
                                    '<div role="list" class="citation-list" lang="en">')
                           .replace("<em>et al.</em>", "等"))
    link = (f'<link rel="alternate" hreflang="{context["edition_switch"]["hreflang"]}" '
            f'href="{context["edition_switch"]["url"]}" />\n')
    context["metatags"] = context.get("metatags", "") + link


def glossary_terms() -> list[str]:
    """Every Chinese word of the glossary (terms, alternatives, the article's words)."""
    words = set()
    for path in sorted((ROOT / "book" / "glossary").glob("*.yml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            words.add(entry["zh"])
            words.update(entry.get("also", []))
            if entry.get("article"):
                words.add(entry["article"])
    return sorted(w for w in words if w and " " not in w)


def configure(app, config) -> None:
    options = config.html_theme_options
    end = options.get("article_header_end", ["article-header-buttons.html"])
    if isinstance(end, str):
        end = [end]
    options["article_header_end"] = ["edition-switch.html", *end]
    config.templates_path = [*config.templates_path, str(ROOT / "book" / "_templates")]
    if is_chinese(config.language):
        options["extra_footer"] = ZH_FOOTER  # the English one is _config.yml's html.extra_footer
        out = Path(app.doctreedir) / "jieba_glossary.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{w} 100000 n\n" for w in glossary_terms()), encoding="utf-8")
        config.html_search_options = {**(config.html_search_options or {}), "dict": str(out)}


def setup(app):
    app.connect("config-inited", configure)
    app.add_transform(DropEnglishTwins)
    app.add_transform(TranslateTocCaptions)
    app.connect("doctree-read", check_translations_applied)
    app.connect("html-page-context", add_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
