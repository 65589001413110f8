"""Build the book's editions from one source: English (the source) and Chinese (its translation).

    python scripts/book_editions.py html OUT [--edition en|zh]   # OUT/_build/html[/zh]
    python scripts/book_editions.py extract                      # refresh locale/zh_CN/*.po
    python scripts/book_editions.py check                        # 0 untranslated, 0 fuzzy?

The Chinese edition is the English build with ``language = zh_CN``: Sphinx replaces each
paragraph, heading, list item, caption and table cell by its translation from
``locale/zh_CN/LC_MESSAGES/<page>.po`` (one catalog per page), so code cells, saved outputs
and figures are the English edition's own, never copies. ``extract`` re-reads the sources
(Sphinx's gettext builder), and ``sphinx-intl update`` merges the new messages into the
catalogs: a paragraph edited in English since it was translated becomes *fuzzy* (its old
translation kept as a hint), a new one *untranslated*. ``check`` lists both and fails on
either, so the Chinese edition cannot drift from the English one silently.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import re
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
LANGUAGE = "zh_CN"
ZH_TITLE = "大语言模型原理基础与前沿·评估"
ZH_SUBDIR = "zh"  # the Chinese edition's folder inside the English one


@contextlib.contextmanager
def _without_dead_proxies():
    """Hide dead weak-reference proxies from ``gc.get_objects`` while Sphinx starts.

    sphinx-external-toc finds Sphinx's toctree collector by calling ``isinstance`` on every
    object ``gc.get_objects()`` returns, and ``isinstance`` on a ``weakref.proxy`` whose object
    is gone raises ``ReferenceError``. A process that built the book after other work (the test
    command builds the gettext templates inside a pytest worker that may have run
    ``torch.compile`` tests) can hold such proxies; ``type()`` sees them without touching them.
    """
    real = gc.get_objects
    dead = (weakref.ProxyType, weakref.CallableProxyType)

    def live_objects(*args, **kwargs):
        return [obj for obj in real(*args, **kwargs) if type(obj) not in dead]

    gc.get_objects = live_objects
    try:
        yield
    finally:
        gc.get_objects = real


def build(builder: str, out: Path, edition: str = "en", quiet: bool = False) -> int:
    """Run Jupyter Book 1's Sphinx build with the repository's ``_config.yml`` and ``_toc.yml``.

    The same call as ``jupyter-book build . --all -W -n --keep-going``, plus the edition's
    overrides. The Chinese pages are built in ``_build/zh/html`` (myst-nb writes its
    ``jupyter_execute`` folder beside the html folder, which must not land inside the English
    edition) and then moved to ``_build/html/zh``, beside the English pages they link to.
    """
    from jupyter_book.sphinx import build_sphinx  # noqa: PLC0415 (slow import, only here)

    overrides = {"external_toc_path": "_toc.yml", "latex_individualpages": False,
                 "nitpicky": True}
    target = out / "_build" / builder
    doctrees = out / "_build" / f".doctrees-{builder}-{edition}"
    if edition == "zh":
        # Citations as Chinese publications number them (GB/T 7714's sequential style: [12]),
        # where the English edition writes author and year.
        # myst-nb's fold labels ("Show code cell source") are not in Sphinx's catalogs.
        overrides.update({"language": LANGUAGE, "html_title": ZH_TITLE,
                          "bibtex_reference_style": "label", "bibtex_default_style": "plain",
                          "nb_code_prompt_show": "显示代码", "nb_code_prompt_hide": "隐藏代码"})
        target = out / "_build" / "zh" / builder
    shutil.rmtree(doctrees, ignore_errors=True)  # stale environments hide warnings
    with _without_dead_proxies():
        status = build_sphinx(ROOT, target, noconfig=True, path_config=str(ROOT / "_config.yml"),
                              confoverrides=overrides, builder=builder, doctreedir=doctrees,
                              warningiserror=True, keep_going=True, freshenv=True,
                              quiet=quiet, really_quiet=quiet)
    if edition == "zh" and builder == "html" and not status:
        final = out / "_build" / "html" / ZH_SUBDIR
        shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target), str(final))
        print(f"The Chinese edition is in {final}")
    return status


def catalog_problems(locale_dir: Path, pot_dir: Path | None = None) -> list[str]:
    r"""Everything that keeps the Chinese edition from being a whole translation of the English.

    Each catalog message must be translated and not fuzzy, and keep the English's markup (the
    same code, math, link targets and cross-references); with ``pot_dir`` (fresh templates from
    the sources) every message of every page must also be in its catalog, so an English
    paragraph edited but never re-extracted is caught too.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "p.po").write_text('msgid "See `x`."\nmsgstr "见 `y`。"\n\n'
    ...                             'msgid "Two"\nmsgstr ""\n', encoding="utf-8")
    >>> for line in catalog_problems(d): print(line)
    p.po: markup differs (missing code:`x`; extra code:`y`): 'See `x`.'
    p.po: untranslated: 'Two'
    """
    from babel.messages.pofile import read_po  # noqa: PLC0415

    problems = []
    catalogs = {}
    for path in sorted(locale_dir.rglob("*.po")):
        name = path.relative_to(locale_dir).as_posix()
        with path.open("rb") as f:
            catalogs[name[:-3]] = catalog = read_po(f)
        for m in catalog:
            if not m.id:
                continue
            if not m.string:
                problems.append(f"{name}: untranslated: {m.id[:70]!r}")
            elif m.fuzzy:
                problems.append(f"{name}: fuzzy (the English changed since it was translated): "
                                f"{m.id[:70]!r}")
            elif m.string != m.id and "[^" in m.id:
                # MyST cannot resolve a footnote reference in a message parsed on its own
                problems.append(f"{name}: holds a footnote reference, so it must stay as the "
                                f"English has it: {m.id[:70]!r}")
            elif m.string != m.id and re.match(r"\d+[.)]\s", m.string):
                problems.append(f"{name}: reads as a numbered list item, not a heading (write "
                                f"'{m.string.split()[0][:-1]}\\{m.string.split()[0][-1]}'): "
                                f"{m.string[:70]!r}")
            else:
                want, got = markup(m.id), markup(m.string)
                if want != got:
                    lost = "; ".join(sorted(want - got))
                    extra = "; ".join(sorted(got - want))
                    problems.append(f"{name}: markup differs (missing {lost}; extra {extra}): "
                                    f"{m.id[:70]!r}")
    if pot_dir is not None:
        for path in sorted(pot_dir.rglob("*.pot")):
            page = path.relative_to(pot_dir).as_posix()[:-4]
            if page not in catalogs:
                problems.append(f"{page}.po: missing (run scripts/book_editions.py extract)")
                continue
            with path.open("rb") as f:
                wanted = {m.id for m in read_po(f) if m.id}
            have = {m.id for m in catalogs[page]}
            problems += [f"{page}.po: not in the catalog (run scripts/book_editions.py extract, "
                         f"then translate): {i[:70]!r}" for i in sorted(wanted - have)]
    return problems


def markup(text: str) -> set[str]:
    r"""The markup a translation must keep: code, math, URLs and cross-reference targets.

    >>> sorted(markup("See {doc}`chapter 4 <04_math>` and `x` at $p$ [here](https://a.b)."))
    ['code:`x`', 'math:$p$', 'ref:doc:04_math', 'url:https://a.b']
    >>> markup(r"$\text{bits per byte} = b$") == markup(r"$\text{每字节比特数} = b$")
    True
    """
    found = set()
    role = re.compile(r"\{([a-z:-]+)\}`([^`]*)`")
    for name, body in role.findall(text):
        target = re.search(r"<([^<>]+)>\s*$", body)
        found.add(f"ref:{name}:" + (target.group(1) if target else body))
    text = role.sub("", text)
    found |= {"code:" + x for x in re.findall(r"``?[^`]+``?", text)}
    # A formula must stay the same, except for words in \text{...}, which are prose.
    found |= {"math:" + re.sub(r"\\text\{[^{}]*\}", r"\\text{}", x)
              for x in re.findall(r"\$\$?[^$]+\$\$?", text)}
    found |= {"url:" + x for x in re.findall(r"\]\(([^)\s]+)\)", text)}
    return found


def extract() -> None:
    """Re-extract every page's messages and merge them into ``locale/zh_CN``."""
    from babel.messages.pofile import read_po, write_po  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        if build("gettext", Path(tmp)):
            raise SystemExit("gettext build failed")
        pot = Path(tmp) / "_build" / "gettext"
        subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot),
                        "-l", LANGUAGE, "-d", str(LOCALE)], check=True)
    # Messages of removed paragraphs would linger as "obsolete" entries: drop them (git keeps
    # the history; a fuzzy message keeps its old translation as the starting point). Chinese
    # that the sources already hold (the bilingual appendix) is its own translation.
    for path in sorted((LOCALE / LANGUAGE).rglob("*.po")):
        with path.open("rb") as f:
            catalog = read_po(f)
        own = [m for m in catalog if m.id and (not m.string or m.fuzzy) and already_chinese(m.id)]
        for m in own:
            m.string = m.id
            m.flags.discard("fuzzy")
        if catalog.obsolete or own:
            catalog.obsolete.clear()
            with path.open("wb") as f:
                write_po(f, catalog, width=76)


def already_chinese(text: str) -> bool:
    """Whether a source message needs no translation: its prose is mostly Chinese already (or
    it has none), once code, math, references and ``lang="en"`` headwords are set aside.

    >>> already_chinese("训练计算量的估算 C≈6ND：每个参数前向约 2 次浮点运算。")
    True
    >>> already_chinese('<span lang="en">**perplexity**</span> · 困惑度')
    True
    >>> already_chinese("→ {doc}`/notebooks/01_scale`")
    True
    >>> already_chinese('<span lang="en">**GPT**</span> · 生成式预训练Transformer')
    True
    >>> already_chinese("Is lower perplexity always better text? · 困惑度越低，文本就越好吗？")
    False
    >>> already_chinese("**Self-attention** (自注意力) lets every token look at every other token")
    False
    """
    prose = re.sub(r'<span lang="en">.*?</span>', "", text)
    prose = re.sub(r"\{[a-z:-]+\}`[^`]*`|``?[^`]+``?|\$\$?[^$]+\$\$?", "", prose)
    if not re.search(r"[A-Za-z]", prose):
        return True
    # Chinese that names things in English ("OpenAI 于 2018 年提出的模型") has no run of three
    # English words; English with a Chinese term in it ("lets every token look") does.
    english_phrase = re.search(r"[A-Za-z][\w'’-]*(?:[ ,]+[A-Za-z][\w'’-]*){2,}", prose)
    return bool(re.search(r"[\u3400-\u9fff]", prose)) and not english_phrase


def check() -> list[str]:
    """``catalog_problems`` against templates freshly extracted from the sources."""
    with tempfile.TemporaryDirectory() as tmp:
        if build("gettext", Path(tmp), quiet=True):
            return ["the gettext build failed"]
        return catalog_problems(LOCALE / LANGUAGE / "LC_MESSAGES",
                                Path(tmp) / "_build" / "gettext")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    html = sub.add_parser("html")
    html.add_argument("out", type=Path)
    html.add_argument("--edition", choices=["en", "zh"], default="en")
    sub.add_parser("extract")
    sub.add_parser("check")
    args = parser.parse_args()
    if args.command == "html":
        sys.exit(build("html", args.out, args.edition))
    if args.command == "extract":
        extract()
    else:
        problems = check()
        print("\n".join(problems) if problems else "every message translated, none fuzzy")
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
