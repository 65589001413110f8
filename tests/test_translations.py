"""The Chinese edition is a whole translation of the English one, and cannot drift from it.

``locale/zh_CN/LC_MESSAGES/<page>.po`` holds the translation of every paragraph, heading, list
item, caption and table cell of the book (scripts/book_editions.py). These tests re-extract the
messages from today's sources and fail, listing each one, when a message is untranslated, fuzzy
(its English changed after it was translated), missing from its catalog (never extracted), or
translated with different markup (a lost link target, code span or formula); and they check that
the translation uses the glossary's words for the book's key terms.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "locale" / "zh_CN" / "LC_MESSAGES"

_spec = importlib.util.spec_from_file_location("book_editions", ROOT / "scripts" / "book_editions.py")
book_editions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book_editions)


@cache
def messages() -> list[tuple[str, str, str]]:
    """(page, English, Chinese) for every translated message."""
    out = []
    for path in sorted(CATALOGS.rglob("*.po")):
        with path.open("rb") as f:
            for m in read_po(f):
                if m.id and m.string and not m.fuzzy:
                    out.append((path.relative_to(CATALOGS).as_posix(), m.id, m.string))
    return out


def test_every_page_has_a_catalog():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]] + [
        entry["file"] for part in toc["parts"] for chapter in part["chapters"]
        for entry in [chapter, *chapter.get("sections", [])]]
    missing = [p for p in pages if not (CATALOGS / f"{p}.po").exists()]
    assert missing == [], "pages without a catalog: run scripts/book_editions.py extract"


def test_every_message_is_translated_none_fuzzy_none_missing():
    """The drift check: fresh templates from the sources against the catalogs, every message."""
    problems = book_editions.check()
    assert problems == [], (f"{len(problems)} messages keep the Chinese edition from being whole "
                            "(scripts/book_editions.py extract, then translate):\n"
                            + "\n".join(problems))


def test_the_drift_check_catches_each_kind_of_drift(tmp_path):
    """An untranslated, a fuzzy, a never-extracted message, lost markup and a heading that
    Markdown would read as a list item are each reported."""
    po, pot = tmp_path / "po" / "book", tmp_path / "pot" / "book"
    po.mkdir(parents=True)
    pot.mkdir(parents=True)
    (po / "p.po").write_text(
        'msgid "Kept"\nmsgstr "保留"\n\n'
        'msgid "New"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Edited"\nmsgstr "旧译文"\n\n'
        'msgid "See {doc}`chapter 4 <04_math>`."\nmsgstr "见第 4 章。"\n\n'
        'msgid "5. Training"\nmsgstr "5. 训练"\n', encoding="utf-8")
    (pot / "p.pot").write_text(
        'msgid "Kept"\nmsgstr ""\n\nmsgid "Added later"\nmsgstr ""\n', encoding="utf-8")
    problems = book_editions.catalog_problems(tmp_path / "po", tmp_path / "pot")
    assert any("untranslated: 'New'" in p for p in problems), problems
    assert any("fuzzy" in p and "'Edited'" in p for p in problems), problems
    assert any("missing ref:doc:04_math" in p for p in problems), problems
    assert any("not in the catalog" in p and "'Added later'" in p for p in problems), problems
    assert any("numbered list item" in p and "5\\." in p for p in problems), problems
    assert len(problems) == 5, problems


# The book's key terms and their one Chinese rendering (book/glossary/*.yml): wherever the English
# says the term, the Chinese must say it the glossary's way.
KEY_TERMS = {
    "perplexity": "困惑度", "cross-entropy": "交叉熵", "tokenizer": "分词器", "attention": "注意力",
    "fluency": "流畅度", "embedding": "嵌入", "positional encoding": "位置编码",
    "greedy decoding": "贪心解码", "beam search": "束搜索", "exposure bias": "暴露偏差",
    "autoregressive": "自回归", "masked language model": "掩码语言模型",
}


@cache
def glossary() -> list[dict]:
    """Every glossary entry, shortest English term first."""
    entries = [e for path in sorted((ROOT / "book" / "glossary").glob("*.yml"))
               for e in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return sorted(entries, key=lambda e: len(e["en"]))


def glossary_zh(term: str) -> str:
    """The glossary's Chinese for ``term`` (its entry, or the entry it begins)."""
    for entry in glossary():
        if entry["en"].lower() == term or entry["en"].lower().startswith(term + " "):
            return entry["zh"]
    raise KeyError(term)


@pytest.mark.parametrize("term", sorted(KEY_TERMS))
def test_key_terms_follow_the_glossary(term):
    assert KEY_TERMS[term] in glossary_zh(term), "the table above disagrees with the glossary"
    pattern = re.compile(rf"\b{re.escape(term)}\b", re.I)
    wrong = []
    for page, en, zh in messages():
        prose = re.sub(r"\{[a-z:]+\}`[^`]*`|`[^`]*`|\$[^$]*\$", "", en)  # not code, math, refs
        if zh == en or en.lstrip().startswith("\\") or (
                " · " in en and zh.endswith(en.rsplit(" · ", 1)[1])):
            continue  # a display formula; a bilingual heading given by its Chinese half
        # the English may choose its own Chinese for the term: "a **word embedding** (词向量)"
        own = re.findall(rf"{re.escape(term)}\**\s*\(([\u3400-\u9fff]+)", en, flags=re.I)
        if pattern.search(prose) and not any(w in zh for w in [KEY_TERMS[term], *own]):
            wrong.append(f"{page}: {en[:60]!r} -> {zh[:60]!r}")
    assert wrong == [], f"{term} not rendered {KEY_TERMS[term]}:\n" + "\n".join(wrong)


def test_the_articles_words_appear_only_as_the_articles():
    """令牌 and 流利度 are the article's words: the Chinese edition says 词元 and 流畅度, and uses
    the article's word only when it says so (原文) or quotes the English that does."""
    wrong = [f"{page}: {zh[:80]!r}" for page, en, zh in messages()
             for word in ("令牌", "流利度")
             if word in zh and word not in en and "原文" not in zh]
    assert wrong == [], "\n".join(wrong)


# The article's own word, given beside the book's at its first use on each page, so a reader who
# opens any page (a search result, a link) learns that 词元 is the article's 令牌.
ARTICLE_WORDS = {"词元": "令牌", "流畅度": "流利度"}


@pytest.mark.parametrize("book_word", sorted(ARTICLE_WORDS))
def test_the_articles_word_is_given_at_first_use_on_each_page(book_word):
    article_word = ARTICLE_WORDS[book_word]
    missing = []
    pages: dict[str, list[str]] = {}
    for page, _en, zh in messages():  # in the order of the page
        pages.setdefault(page, []).append(zh)
    for page, texts in pages.items():
        if page.startswith("book/appendix_"):
            continue  # the glossary and the FAQ discuss the two words themselves
        # the first sentence that uses it (a heading such as "2.1b 分词与词元" carries no note)
        first = next((t for t in texts if book_word in t and re.search("[。，]", t)), None)
        if first is not None and article_word not in first:
            missing.append(f"{page}: {first[:80]!r}")
    assert missing == [], (f"first use of {book_word} without the article's {article_word} "
                           f"(write {book_word}（…，原文作“{article_word}”）):\n" + "\n".join(missing))


def test_a_dead_weak_proxy_cannot_break_the_build():
    """sphinx-external-toc calls isinstance() on every object the garbage collector knows; a
    weakref.proxy whose object is gone (torch.compile leaves some in a test process) raised
    ReferenceError there and failed the gettext build. The build hides such proxies."""
    import gc
    import weakref

    class Thing:
        pass

    thing = Thing()
    proxy = weakref.proxy(thing)
    del thing  # the proxy outlives its object
    with pytest.raises(ReferenceError):
        isinstance(proxy, int)
    with book_editions._without_dead_proxies():
        assert all(type(obj) is not type(proxy) for obj in gc.get_objects())
    assert any(obj is proxy for obj in gc.get_objects())  # restored afterwards
