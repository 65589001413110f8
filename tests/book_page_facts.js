// Run in a book page by tests/test_book_browser.py (Playwright's page.evaluate): wait until the
// page has settled (images loaded, MathJax done, mermaid, bertviz and widgets drawn, fonts ready;
// 30 s at most), then report what a reader sees, for the Python side to check.
async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const all = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const article = document.querySelector("article.bd-article") || document.querySelector("article") || document.body;
  all('img[loading="lazy"]').forEach((img) => { img.loading = "eager"; });

  const widgetViews = () => all('script[type="application/vnd.jupyter.widget-view+json"]');
  const widgetRendered = (tag) => {
    const area = tag.previousElementSibling;
    return !!(area && area.classList.contains("widget-subarea") && area.querySelector(".lm-Widget"));
  };
  const bertvizRoots = () => all('div[id^="bertviz-"]');
  const pending = () => {
    const waiting = [];
    if (all("img").some((img) => !img.complete)) waiting.push("images");
    if (all(".math").some((m) => !m.querySelector("mjx-container"))) waiting.push("MathJax");
    if (all(".mermaid").some((m) => m.getAttribute("data-processed") !== "true")) waiting.push("mermaid");
    if (bertvizRoots().some((root) => !root.querySelector("#vis svg"))) waiting.push("bertviz");
    if (widgetViews().some((tag) => !widgetRendered(tag))) waiting.push("widgets");
    return waiting;
  };
  const deadline = Date.now() + 30000;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise.catch(() => null), sleep(30000)]);
  }
  while (pending().length && Date.now() < deadline) await sleep(100);
  await Promise.race([document.fonts.ready, sleep(5000)]);
  await sleep(200);  // let late layout (mermaid's fullscreen buttons, MathJax menus) finish

  // The letters of the visible prose: the article without code, outputs, math, diagrams, table
  // cells of bare names and numbers, and anything marked lang="en" (the English headwords of
  // the bilingual glossary, the list of references), counted as CJK
  // characters and Latin letters, for the Chinese edition's "is it Chinese" check.
  const proseLetters = () => {
    const copy = article.cloneNode(true);
    copy.querySelectorAll('pre, code, kbd, samp, .cell_input, .cell_output, .output, mjx-container, '
      + '.math, script, style, svg, .mermaid, [lang="en"], .headerlink, .widget-subarea')
      .forEach((el) => el.remove());
    // A table cell holding only a name or a number ("GPT-3", "OpenAI", "175B": no Chinese, at
    // most three words) is data, not prose; an English sentence left in a table still counts.
    copy.querySelectorAll("td, th").forEach((cell) => {
      const words = cell.textContent.trim().split(/\s+/).filter((w) => /[A-Za-z]/.test(w));
      if (!/[\u3400-\u9fff]/.test(cell.textContent) && words.length <= 3) cell.remove();
    });
    const t = copy.textContent;
    // Letters of names (a capital or a digit in the word: GPT-3, Chinchilla, Vaswani, BLEU),
    // as opposed to English words (perplexity, the, shifted targets).
    const names = (t.match(/[A-Za-z0-9][A-Za-z0-9'-]*/g) || [])
      .filter((w) => /[A-Z0-9]/.test(w) && /[A-Za-z]/.test(w))
      .reduce((n, w) => n + (w.match(/[A-Za-z]/g) || []).length, 0);
    return {
      cjk: (t.match(/[\u3400-\u9fff\uf900-\ufaff]/g) || []).length,
      latin: (t.match(/[A-Za-z]/g) || []).length,
      latinInNames: names,
      latinWords: Array.from(new Set(t.match(/[A-Za-z][A-Za-z'-]{2,}/g) || [])).slice(0, 400),
    };
  };
  const text = (el) => (el ? el.textContent.replace(/\s+/g, " ").trim() : "");
  const images = all("img").map((img) => ({
    src: img.getAttribute("src"),
    alt: img.getAttribute("alt") || "",
    decorative: img.getAttribute("alt") === "" || img.getAttribute("role") === "presentation",
    loaded: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
    inArticle: article.contains(img),
    inWidget: !!img.closest(".widget-subarea"),  // drawn by a widget from its saved state
    // For a notebook output: the first line of the code cell that drew it.
    cell: ((img.closest("div.cell") || {}).querySelector ? text(img.closest("div.cell").querySelector(".cell_input pre")) : "").slice(0, 70),
  }));
  const figures = all("figure", article).map((fig) => ({
    src: (fig.querySelector("img") || {}).src || "",
    caption: text(fig.querySelector("figcaption")),
  }));
  const maths = all(".math");
  const mermaids = all(".mermaid");
  const bertviz = bertvizRoots().map((root) => ({
    id: root.id,
    svg: !!root.querySelector("#vis svg"),
    left: all("#vis svg g#left text", root).map((t) => t.textContent),
    right: all("#vis svg g#right text", root).map((t) => t.textContent),
    thumbnails: all("#vis svg rect.attn_background", root).length,
    lines: all("#vis svg g > g[source-index] > line", root).length,
  }));

  // The first paragraph that says "Runs in", and whether it comes before the first code cell.
  const firstCell = article.querySelector("div.cell");
  const note = all("p", article).find((p) => /Runs in|运行时间/.test(p.textContent));
  const runsIn = {
    text: text(note),
    beforeCode: !!note && (!firstCell || !!(note.compareDocumentPosition(firstCell) & Node.DOCUMENT_POSITION_FOLLOWING)),
  };

  // The width the page was opened at. A mobile browser widens its layout viewport (and so
  // window.innerWidth) to fit content that is too wide, which would hide the very overflow
  // looked for here; the screen keeps the device's width.
  const viewWidth = Math.min(window.innerWidth, screen.width);

  // At phone width: prose must fit; code, tables, outputs and equations scroll inside their own boxes.
  const inScrollBox = (el) => !!el.closest("pre, table, .highlight, .cell_output, .output, mjx-container, .mermaid, .math, [id^='bertviz-'], .widget-subarea");
  const overflowing = all("p, li, h1, h2, h3, h4, h5, h6, dt, dd, blockquote, figcaption", article)
    .filter((el) => !inScrollBox(el) && el.getBoundingClientRect().right > viewWidth + 1)
    .slice(0, 10)
    .map((el) => `<${el.tagName.toLowerCase()}> ${text(el).slice(0, 60)} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`);

  // The whole page, top to bottom (not only the first screen): nothing may reach past the right
  // edge of the window unless it sits inside a scroll container (overflow-x auto or scroll), and
  // every equation and table either fits its box or scrolls inside it; clipped is never right.
  const scrolls = (el) => /(auto|scroll)/.test(getComputedStyle(el).overflowX);
  const scrollContainer = (el, self = false) => {
    for (let a = self ? el : el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(a)) return a;
    }
    return null;
  };
  const visible = (el, r) => r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  const describe = (el) => {
    const cls = typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\s+/).slice(0, 2).join(".") : "";
    return `<${el.tagName.toLowerCase()}${cls}> ${text(el).slice(0, 50)}`;
  };
  const wide = [];
  const inWide = new Set();  // report the outermost wide element, not each of its descendants
  for (const el of all("body *")) {
    if (inWide.has(el.parentElement)) { inWide.add(el); continue; }
    const r = el.getBoundingClientRect();
    // Entirely past the right edge: a closed drawer (the page's table of contents), not content.
    if (r.right <= viewWidth + 1 || r.left >= viewWidth - 1 || !visible(el, r)) continue;
    if (el.closest("mjx-assistive-mml") || scrollContainer(el)) continue;
    inWide.add(el);
    if (wide.length < 10) wide.push(`${describe(el)} (right edge ${Math.round(r.right)} px)`);
  }
  // Display equations only: an inline formula's box is a few pixels narrower than its italic
  // glyphs by design; inline formulas are held to the window by the check above.
  const equations = all('mjx-container[display="true"]', article)
    .filter((m) => m.clientWidth > 0)
    .map((m) => ({
      scrollWidth: m.scrollWidth,
      clientWidth: m.clientWidth,
      scrolls: !!scrollContainer(m, true),
      tex: text((m.closest(".math") || m.parentElement)).slice(0, 60),
    }))
    .filter((e) => e.scrollWidth > e.clientWidth + 1);
  const tables = all("table", article).map((t) => {
    const box = t.parentElement;
    return {
      width: Math.round(t.getBoundingClientRect().width),
      room: box.clientWidth,
      scrolls: !!scrollContainer(t),
      header: text(t.querySelector("tr")).slice(0, 60),
    };
  }).filter((t) => t.width > t.room + 1);

  return {
    pending: pending(),
    images,
    figures,
    math: {
      count: maths.length,
      typeset: maths.filter((m) => m.querySelector("mjx-container")).length,
      errors: all("mjx-merror").map((e) => e.getAttribute("data-mjx-error") || text(e)),
    },
    mermaid: {
      count: mermaids.length,
      rendered: mermaids.filter((m) => m.getAttribute("data-processed") === "true" && m.querySelector("svg")
        && m.querySelector("svg").getBoundingClientRect().width > 0
        && !m.querySelector('svg[aria-roledescription="error"], .error-icon')).length,
      errors: mermaids.filter((m) => m.querySelector('svg[aria-roledescription="error"], .error-icon'))
        .map((m) => text(m).slice(0, 120)),
    },
    bertviz,
    widgets: { views: widgetViews().length, rendered: widgetViews().filter(widgetRendered).length },
    fontErrors: Array.from(document.fonts).filter((f) => f.status === "error").map((f) => f.family),
    footer: text(document.querySelector("footer.bd-footer-content") || document.querySelector("footer")),
    launch: all("a[href]").map((a) => a.href).filter((h) => /colab\.research|mybinder/.test(h)),
    runsIn,
    prose: proseLetters(),
    edition: {
      lang: document.documentElement.lang,
      switchTo: (document.querySelector("a.edition-switch") || {}).href || "",
      font: getComputedStyle(article).fontFamily,
    },
    links: all("a[href]").map((a) => a.href),
    layout: {
      innerWidth: viewWidth,
      scrollWidth: document.documentElement.scrollWidth,
      overflowing,
      wide,
      equations,
      tables,
    },
  };
}
