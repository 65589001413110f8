"""The bilingual glossary (``book/glossary/*.yml`` -> ``book/appendix_glossary.md``) and the FAQ.

Each entry must be complete in both languages, unique, and point at a page of the book that
really uses the term; the rendered page must be what ``scripts/make_glossary.py`` writes from
the entries today (so the page and its sources cannot drift apart).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u3400-\u9fff]")
LETTER = re.compile(r"[^\W\d_]")

spec = importlib.util.spec_from_file_location("make_glossary", ROOT / "scripts" / "make_glossary.py")
make_glossary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_glossary)
ENTRIES = make_glossary.load_entries()


def toc_files() -> set[str]:
    """The documents of ``_toc.yml`` (its root and every ``file:``)."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return set(re.findall(r"(?:root|file):\s*([\w./-]+)", toc))


def page_text(docname: str) -> str:
    """The words of a page: a MyST page's text, or a notebook's markdown and code."""
    md = ROOT / f"{docname}.md"
    if md.exists():
        return md.read_text(encoding="utf-8")
    cells = json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells)


def normal(text: str) -> str:
    """Lower case, dashes and hyphens as spaces, curly quotes straight: how a term is matched."""
    text = text.lower().replace("’", "'")
    return re.sub(r"\s+", " ", re.sub(r"[-‐‑–—]", " ", text))


def cjk_share(text: str) -> float:
    letters = LETTER.findall(text)
    return sum(bool(CJK.match(c)) for c in letters) / max(len(letters), 1)


def test_enough_entries_and_no_duplicates():
    assert len(ENTRIES) >= 150
    seen: dict[str, str] = {}
    clashes = []
    for e in ENTRIES:
        key = normal(e["en"])
        if key in seen:
            clashes.append(f"{e['en']!r} in {e['source']} and {seen[key]}")
        seen[key] = e["source"]
    assert clashes == []


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["en"])
def test_entry_is_complete_in_both_languages(entry):
    # a name Chinese writers keep as it is (PyTorch, BERT, FlashAttention) may stay in English
    assert CJK.search(entry["zh"]) or entry["zh"] == entry["en"], "the Chinese term holds no Chinese"
    assert not CJK.search(entry["en"]) and not CJK.search(entry["en_def"]), "Chinese in the English"
    assert 40 <= len(entry["en_def"]) <= 260, "the English definition is not one sentence"
    # formulas and names are Latin letters, so a Chinese definition is judged by its Chinese
    assert len(CJK.findall(entry["zh_def"])) >= 15, "the Chinese definition is not Chinese"
    assert cjk_share(entry["zh_def"]) >= 0.25, "the Chinese definition is mostly not Chinese"
    assert len(entry["zh_def"]) <= 130, "the Chinese definition is not one sentence"
    assert all(isinstance(a, str) and a.strip() for a in entry.get("also") or []), entry.get("also")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["en"])
def test_entry_points_at_a_page_that_uses_it(entry):
    assert entry["section"] in toc_files(), f"{entry['section']} is not a page of _toc.yml"
    text = normal(page_text(entry["section"]))
    term = normal(entry["en"])
    forms = {term, term.rstrip("s"), term[:-1] + "ies" if term.endswith("y") else term}
    assert any(f in text for f in forms), f"{entry['section']} never says {entry['en']!r}"


def test_the_articles_own_words_are_there():
    article = {e["article"]: e["en"] for e in ENTRIES if e.get("article")}
    assert article.get("令牌") == "token"
    assert article.get("流利度") == "fluency"


def test_the_page_is_what_the_entries_make():
    page = (ROOT / "book" / "appendix_glossary.md").read_text(encoding="utf-8")
    assert page == make_glossary.render(ENTRIES), "re-run scripts/make_glossary.py"
    for word in ("令牌", "流利度", "困惑度", "掩码"):  # set apart, so search indexes each as a word
        assert re.search(rf"(^|[^\w]){word}($|[^\w])", page, flags=re.M), word


def test_a_broken_entry_is_refused(tmp_path):
    (tmp_path / "bad.yml").write_text("- en: token\n  zh: 词元\n  section: book/intro\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing \['en_def', 'zh_def'\]"):
        make_glossary.load_entries(tmp_path)


def test_faq_answers_in_both_languages_with_links():
    text = (ROOT / "book" / "appendix_faq.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 15
    for section in sections:
        title, _, body = section.partition("\n")
        assert " · " in title and CJK.search(title.split(" · ")[1]), title
        paragraphs = [p for p in body.split("\n\n") if p.strip()]
        assert any(cjk_share(p) < 0.1 for p in paragraphs), f"{title}: no English answer"
        assert any(cjk_share(p) > 0.5 for p in paragraphs), f"{title}: no Chinese answer"
        assert "{doc}`" in body, f"{title}: no link into the book"


@pytest.mark.parametrize("page", ["appendix_faq.md", "appendix_glossary.md"])
def test_no_line_break_inside_chinese_text(page):
    """A browser shows a line break between two Chinese characters as a space ("疑问。 每个")."""
    text = (ROOT / "book" / page).read_text(encoding="utf-8")
    wide = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"  # CJK, its punctuation, full-width forms
    breaks = re.findall(wide + r"\n" + wide, text)
    assert breaks == []
