// Render the maths that pymdownx.arithmatex (generic mode) leaves in the page:
// <span class="arithmatex">\( ... \)</span> inline and <div class="arithmatex">\[ ... \]</div>
// display. KaTeX is bundled under assets/katex/, so nothing is fetched from the network.
// mkdocs-material's document$ fires on every page load (also under instant navigation).
document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (element) {
    var tex = element.textContent.trim();
    var display = tex.startsWith("\\[");
    if (display || tex.startsWith("\\(")) {
      tex = tex.slice(2, -2);
    }
    katex.render(tex, element, { displayMode: display, throwOnError: false });
  });
});
