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


def term_pairs(text: str) -> list[tuple[str, str]]:
    """``**term** (中文…)`` or ``phrase (中文…)`` pairs: the English words before a bracket that
    opens with Chinese, and that Chinese (up to a comma or semicolon: "(词元, the article's 令牌)"
    gives 词元).

    >>> term_pairs("a **tokenizer** (分词器) cuts text into tokens (词元, the article's 令牌)")
    [('tokenizer', '分词器'), ('cuts text into tokens', '词元')]
    """
    pattern = r"\*{0,2}([A-Za-z][A-Za-z'’\- ]{1,40}?)\*{0,2} \(([\u3400-\u9fff][^)（）;,，:：]{0,20})[^)]*\)"
    return [(m.group(1).split("**")[-1].strip(), m.group(2).strip())
            for m in re.finditer(pattern, text.replace("\n", " "))]


def glossary_entry(phrase: str, glossary: dict[str, dict]) -> dict | None:
    """The entry of the longest glossary term that ends ``phrase`` ("cuts text into tokens" ->
    token), or None."""
    words = normal(phrase).split()
    for i in range(len(words)):
        tail = " ".join(words[i:])
        for key in (tail, tail.removesuffix("s")):
            if key in glossary:
                return glossary[key]
    return None


def term_mismatches(text: str, glossary: dict[str, dict]) -> tuple[int, list[str]]:
    """How many glossary terms ``text`` pairs with Chinese, and those whose Chinese does not hold
    the glossary's term (or the article's word). Containing is enough, so "Embedding and
    positional encoding (嵌入与位置编码)" passes; the renderings under ``also`` are for search,
    not for the book, which uses one term."""
    checked, wrong = 0, []
    for en, zh in term_pairs(text):
        entry = glossary_entry(en, glossary)
        if entry is None:
            continue
        checked += 1
        allowed = [entry["zh"], entry.get("article")]
        if not any(a and a in zh for a in allowed):
            wrong.append(f"{en} ({zh}), glossary: {entry['zh']}")
    return checked, wrong


GLOSSARY = {normal(e["en"]): e for e in ENTRIES}


def test_a_term_at_odds_with_the_glossary_is_caught():
    text = "We measure **fluency** (流畅性) and positional encodings (位置编码) of tokens (训练词元)."
    assert term_mismatches(text, GLOSSARY) == (3, ["fluency (流畅性), glossary: 流畅度"])


def test_the_book_uses_the_glossarys_chinese_terms():
    """Where a page pairs a glossary term with Chinese in brackets, it is the glossary's Chinese:
    流畅度 everywhere, never 流畅度 here and 流畅性 there."""
    pages = [f"book/{p.stem}" for p in sorted((ROOT / "book").glob("*.md"))
             if not p.stem.startswith("appendix")]
    pages += [f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    checked, wrong = 0, []
    for page in pages:
        n, bad = term_mismatches(page_text(page), GLOSSARY)
        checked += n
        wrong += [f"{page}: {b}" for b in bad]
    assert checked >= 80, f"only {checked} term pairs found: is the pattern still right?"
    assert wrong == []
