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
  const note = all("p", article).find((p) => /Runs in/.test(p.textContent));
  const runsIn = {
    text: text(note),
    beforeCode: !!note && (!firstCell || !!(note.compareDocumentPosition(firstCell) & Node.DOCUMENT_POSITION_FOLLOWING)),
  };

  // At phone width: prose must fit; code, tables, outputs and equations scroll inside their own boxes.
  const inScrollBox = (el) => !!el.closest("pre, table, .highlight, .cell_output, .output, mjx-container, .mermaid, .math, [id^='bertviz-'], .widget-subarea");
  const overflowing = all("p, li, h1, h2, h3, h4, h5, h6, dt, dd, blockquote, figcaption", article)
    .filter((el) => !inScrollBox(el) && el.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 10)
    .map((el) => `<${el.tagName.toLowerCase()}> ${text(el).slice(0, 60)} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`);

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
    links: all("a[href]").map((a) => a.href),
    layout: {
      innerWidth: window.innerWidth,
      scrollWidth: document.documentElement.scrollWidth,
      overflowing,
    },
  };
}
