"""The built documentation: maths rendered offline by the bundled KaTeX, clean API reference.

One strict `mkdocs build` per session (module fixture); the checks read the built HTML. The
headless-browser check runs only where Debian's `chromium` is installed.
"""

from __future__ import annotations

import html
import importlib
import os
import re
import shutil
import subprocess
import sys
import typing
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every module of the package: its rendered docstrings must be free of reST roles (":meth:`x`"
# shows up verbatim in Markdown).
MODULE_FILES = {
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
    for path in sorted((ROOT / "bss_sampler").rglob("*.py"))
}
ROLE_FREE_MODULES = tuple(MODULE_FILES)
REST_ROLES = (":meth:`", ":func:`", ":class:`", ":mod:`")

KATEX_FILES = ("assets/katex/katex.min.js", "assets/katex/katex.min.css", "js/katex-init.js")
MATH_PAGES = ("equations/index.html", "presets/index.html")

# HTML elements without an end tag.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
_SKIPPED = {"code", "pre", "script", "style"}
# Maths Markdown left alone: a `$...$` holding a LaTeX command, sub/superscript or brace.
_RAW_INLINE_MATH = re.compile(r"\$[^$\n]*[\\_^{][^$\n]*\$")


class _Page(HTMLParser):
    """Splits a page into prose text (outside code and maths) and its maths elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.prose: list[str] = []
        self.maths: list[str] = []  # text of each class="arithmatex" element
        self.tags_in_maths: list[str] = []  # elements Markdown put inside maths (garbling)
        self.resources: list[str] = []  # scripts, stylesheets, images the browser loads
        self._stack: list[str] = []  # "skip", "math" or "" per open element
        self._math_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.resources.append(str(a["src"]))
        if tag == "img" and a.get("src"):
            self.resources.append(str(a["src"]))
        rel = set((a.get("rel") or "").split())
        if tag == "link" and rel & {"stylesheet", "preconnect", "preload", "modulepreload", "icon"}:
            self.resources.append(str(a.get("href")))
        if tag in _VOID:
            return
        if self._math_depth:
            self.tags_in_maths.append(tag)
        if "arithmatex" in (a.get("class") or "").split():
            self._stack.append("math")
            self._math_depth += 1
            self.maths.append("")
        else:
            self._stack.append("skip" if tag in _SKIPPED else "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not self._stack:
            return
        if self._stack.pop() == "math":
            self._math_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._math_depth:
            self.maths[-1] += data
        elif "skip" not in self._stack:
            self.prose.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for name in ("mkdocs", "material", "mkdocstrings"):
        pytest.importorskip(name)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    assert pages
    return pages


def test_no_raw_latex_left_in_any_page(site: Path) -> None:
    for path in _pages(site):
        text = "".join(_parse(path).prose)
        where = path.relative_to(site)
        assert "$$" not in text, f"raw $$ in {where}"
        raw = _RAW_INLINE_MATH.search(text)
        assert raw is None, f"raw LaTeX {raw.group(0)!r} in {where}"
        assert not re.search(r"\\[(\[]", text), f"a maths delimiter outside maths in {where}"


@pytest.mark.parametrize("page", MATH_PAGES)
def test_maths_reaches_katex_as_plain_latex(site: Path, page: str) -> None:
    parsed = _parse(site / page)
    assert len(parsed.maths) >= 10
    # Markdown must not have turned `_..._` inside an equation into <em> (Eq. 6 was garbled so).
    assert parsed.tags_in_maths == []
    for tex in parsed.maths:
        assert tex.startswith(("\\(", "\\[")), tex


def test_eq6_reaches_katex_whole(site: Path) -> None:
    eq6 = "\\[s(x_i) = \\mathrm{Norm}(\\mathrm{sim}_i) - \\mathrm{Norm}(\\mathcal L_{\\mathrm{total},i}),"
    assert any(tex.startswith(eq6) for tex in _parse(site / "equations/index.html").maths)


def test_every_loaded_resource_is_a_local_file(site: Path) -> None:
    for path in _pages(site):
        for ref in _parse(path).resources:
            url = urlparse(ref)
            assert not url.scheme and not url.netloc, f"{path.relative_to(site)} loads {ref}"
            # 404.html is served from any depth, so it links from the site root.
            base = site if url.path.startswith("/") else path.parent
            assert (base / url.path.lstrip("/")).resolve().is_file(), f"missing {ref} for {path}"


@pytest.mark.parametrize("page", MATH_PAGES)
def test_math_pages_load_the_bundled_katex(site: Path, page: str) -> None:
    path = site / page
    loaded = {(path.parent / ref).resolve() for ref in _parse(path).resources}
    for name in KATEX_FILES:
        assert (site / name).resolve() in loaded, f"{page} does not load {name}"


def test_katex_fonts_and_licence_are_bundled(site: Path) -> None:
    katex = site / "assets" / "katex"
    css = (katex / "katex.min.css").read_text(encoding="utf-8")
    fonts = re.findall(r"url\((fonts/[^)]+\.woff2)\)", css)
    assert len(fonts) >= 20
    for font in fonts:
        assert (katex / font).is_file(), font
    assert "MIT" in (katex / "LICENSE").read_text(encoding="utf-8")
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)


def test_api_reference_hides_private_bases(site: Path) -> None:
    text = "".join(_parse(site / "api/samplers/index.html").prose)
    assert "Bases:" not in text
    assert "_ScoredSampler" not in text


@pytest.mark.parametrize("page", ["scorer", "scoring", "functional"])
def test_api_reference_shows_the_value_of_a_constant_default(site: Path, page: str) -> None:
    # All text, code included: the signature is a code block.
    html_text = re.sub(r"<[^>]+>", "", (site / "api" / page / "index.html").read_text("utf-8"))
    text = html.unescape(html_text)
    assert "= CRITERIA" not in text
    assert 'criteria: Sequence[str] = ("similarity", "loss")' in text


def _module_of(anchor: str) -> str | None:
    """The module that defines the object a mkdocstrings anchor names (re-exports resolved)."""
    parts = anchor.split(".")
    obj: object = None
    module = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        module = obj.__name__ if isinstance(obj, ModuleType) else None
        rest = parts[i:]
        break
    else:
        return None
    for name in rest:
        obj = getattr(obj, name, None)
        owner = getattr(obj, "__module__", None)
        if isinstance(owner, str) and owner.startswith("bss_sampler"):
            module = owner
    return module


def test_no_rest_roles_in_the_api_reference_of_converted_modules(site: Path) -> None:
    found = []
    for path in sorted((site / "api").rglob("*.html")):
        source = path.read_text(encoding="utf-8")
        anchors = [(m.start(), m.group(1)) for m in re.finditer(r'id="(bss_sampler[\w.]*)', source)]
        # Markdown turns ":meth:`x`" into ":meth:<code>x</code>"; look for both spellings.
        spellings = [role.replace("`", "<code>") for role in REST_ROLES] + list(REST_ROLES)
        for hit in re.finditer("|".join(map(re.escape, spellings)), source):
            before = [name for start, name in anchors if start < hit.start()]
            module = _module_of(before[-1]) if before else None
            if module in ROLE_FREE_MODULES:
                found.append(f"{path.relative_to(site)}: {hit.group(0)} in {module}")
    assert found == []


@pytest.mark.parametrize("module", ROLE_FREE_MODULES)
def test_no_rest_roles_in_the_docstrings_of_converted_modules(module: str) -> None:
    source = MODULE_FILES[module].read_text(encoding="utf-8")
    assert [role for role in REST_ROLES if role in source] == []


@pytest.mark.parametrize("page", MATH_PAGES)
def test_equations_render_in_a_headless_browser(site: Path, page: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium")
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path}", "--virtual-time-budget=5000", "--dump-dom",
        (site / page).as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    expected = len(_parse(site / page).maths)
    assert expected >= 10
    assert dom.count('class="katex"') == expected
    assert "katex-error" not in dom


def test_docs_describe_findings_instead_of_citing_tracker_issues() -> None:
    # Readers of the docs cannot see the project's issue tracker.
    for path in sorted((ROOT / "docs").rglob("*.md")):
        cited = re.search(r"\bissues? #?\d+", path.read_text(encoding="utf-8"), re.IGNORECASE)
        assert cited is None, f"{path.relative_to(ROOT)} cites {cited.group(0)!r}"


def test_the_home_page_names_every_sampler_and_the_core() -> None:
    # A sampler the package exports but the home page never names is one users do not find.
    import bss_sampler

    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    samplers = [name for name in bss_sampler.__all__ if name.endswith("Sampler")]
    assert len(samplers) >= 4  # the three samplers and the ScoredSampler protocol at least
    # and each protocol the integrations take a sampler by (SMVSampler is a ValuedSampler, not
    # a ScoredSampler: a page naming only the latter says SMV is not taken)
    from bss_sampler.integrations._common import BSSSampler

    protocols = [protocol.__name__ for protocol in typing.get_args(BSSSampler)]
    assert protocols == ["ScoredSampler", "ValuedSampler"]
    for name in [*samplers, "PolicySampler", "OrderPolicy", *protocols]:
        assert f"`{name}`" in home, f"docs/index.md never names {name}"
