"""The documentation as a reader meets it: the offline build of `make docs`, served on 127.0.0.1 and opened page by page
in headless Chromium. Fails on a page that does not load or is blank, a broken link or image inside the site, an
exported function or class without its API entry, a library page without a figure or table output, a search that does
not find `attach_masks`, or code cut off at 420 or 1280 px. Screenshots land in test-output/docs/.

The notebooks are executed as `make docs` executes them (cached in `_proc/`, so a run after `make docs` is quick);
`DOCS_EXECUTE=0` builds them unexecuted (a cold CI run without the cache), and the output checks are then skipped.

The real site has no figures until `make paper` has run, so a small project with a figure output, an image from
`figures/`, maths, a tutorial and links between notebooks is built too, and then broken on purpose to see the check
fail.
"""
import base64
import functools
import os
import http.server
import importlib
import inspect
import io
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import nbformat
import pytest

from conftest import ROOT

if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # the renderer, tools/docs/, is outside the package
SHOTS = ROOT / "test-output" / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MIN_TEXT_CHARS = 100  # a page whose main column shows less visible text than this is blank
SCREENSHOTS = {"index.html": "home.png", "core.html": "api-core.png", "masks.html": "api-masks.png"}
EXECUTED = os.environ.get("DOCS_EXECUTE", "1").strip().lower() not in ("0", "no", "false", "off")
BUILT_FROM: list[str] = []  # the notebooks there were when the site was built (others may be added meanwhile)


def _build(root: Path, dest: Path, execute: bool = EXECUTED) -> Path:
    from tools.docs.build import build_docs
    start = time.time()
    site = build_docs("offline", dest=dest, root=root, execute=execute)
    print(f"docs of {root.name} built in {time.time() - start:.1f} s")
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """This project's site as `make docs` builds it without Quarto (into a temporary folder; `_proc/` caches)."""
    from tools.docs.build import find_notebooks
    BUILT_FROM[:] = find_notebooks(ROOT / "nbs")
    return _build(ROOT, tmp_path_factory.mktemp("docs") / "_docs")


def _png(width: int = 40, height: int = 24) -> bytes:
    import matplotlib.image
    import numpy as np
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, np.linspace(0, 1, width * height).reshape(height, width), format="png")
    return buf.getvalue()


@pytest.fixture(scope="module")
def small_site(tmp_path_factory) -> Path:
    """A three-page project: a figure output, an image from figures/, maths, a tutorial, links between notebooks."""
    root = tmp_path_factory.mktemp("small")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "nbs" / "tutorials").mkdir(parents=True)
    (root / "figures").mkdir()
    (root / "figures" / "law.png").write_bytes(_png())
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell

    def write(path, *cells):
        nb = nbformat.v4.new_notebook()
        nb.cells = list(cells)
        nbformat.write(nb, root / "nbs" / path)

    plot = code("#| fig-cap: A gradient\nplt.imshow(x)")
    plot.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(_png()).decode(),
                                                                 "text/plain": "<Figure>"})]
    write("index.ipynb", md("# small\n\n> A small site for the docs test."),
          md("## Figures\n\nThe law $S = c\\gamma^{-\\alpha}$ as drawn by the report:\n\n"
             "![the law](../figures/law.png)\n\n"
             "See [the figure page](01_fig.ipynb#a-figure) and [the tutorial](tutorials/start.ipynb). "
             + "Words. " * 20))
    write("01_fig.ipynb", md("# fig\n\n> A page with a figure output."),
          md("## A figure\n\nA figure drawn by a code cell, written beside the page. " + "More words. " * 15), plot)
    write("tutorials/start.ipynb", md("# Start here\n\n> A tutorial."),
          md("Back to [the home page](../index.ipynb) or [the figure](../01_fig.ipynb#a-figure). " + "Text. " * 30))
    return _build(root, root / "_docs", execute=False)


def test_a_page_per_notebook(site):
    from nbdev.config import nbpath2html
    assert "index.ipynb" in BUILT_FROM and (site / "index.html").is_file()
    missing = [nb for nb in BUILT_FROM if not (site / nbpath2html(nb)).is_file()]
    assert not missing, f"notebooks without a page: {missing}"


def test_every_exported_function_and_class_has_an_api_entry(site):
    """Each public function and class a module exports has the entry nbdev's doc links point at (page#id)."""
    from nbdev.config import nbpath2html
    from hyperflux._modidx import d
    from tools.docs.build import tag_ids
    built = {nbpath2html(nb).as_posix() for nb in BUILT_FROM}
    ids, missing = {}, []
    for mod_name, syms in d["syms"].items():
        if not any(v[0].partition("#")[0] in built for v in syms.values()): continue  # a notebook newer than the site
        mod = importlib.import_module(mod_name)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, "__module__", None) != mod_name:
                continue
            page, _, anchor = syms[f"{mod_name}.{name}"][0].partition("#")
            if page not in ids: ids[page] = tag_ids((site / page).read_text()) if (site / page).exists() else set()
            if anchor not in ids[page]: missing.append(f"{mod_name}.{name} (no #{anchor} on {page})")
    assert not missing, "exported symbols without an API entry:\n" + "\n".join(missing)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@contextmanager
def serve(folder: Path):
    """`folder` on 127.0.0.1 at a free port, from a thread; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try: yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through chromedriver, with a fresh profile and no background networking."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (make install)")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--disable-extensions", "--no-default-browser-check",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


# What a reader's browser shows of a page: its visible text, its links and images as loaded, the ids it holds.
_PAGE_FACTS = """
const main = document.querySelector('main');
return {
  title: document.title,
  text: main ? main.innerText.trim().length : 0,
  sidebar: Array.from(document.querySelectorAll('nav.sidebar a[href]'), a => a.href),
  links: Array.from(document.querySelectorAll('a[href], link[href]'), a => a.href),
  images: Array.from(document.images, i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
  ids: Array.from(document.querySelectorAll('[id]'), e => e.id),
};
"""


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r: return r.status
    except urllib.error.HTTPError as e: return e.code


def browse(site: Path, browser, screenshots: dict | None = None) -> tuple[list[str], dict]:
    """Open every page of `site` served on 127.0.0.1; return what a reader would find wrong, and counts."""
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    problems, facts, statuses = [], {}, {}
    with serve(site) as base:
        for page in pages:
            url = base + page
            if (code := _status(url)) != 200:
                problems.append(f"{page}: HTTP {code}"); continue
            browser.get(url)
            f = facts[url] = browser.execute_script(_PAGE_FACTS)
            if not f["title"]: problems.append(f"{page}: no <title>")
            if f["text"] < MIN_TEXT_CHARS: problems.append(f"{page}: blank ({f['text']} characters of visible text)")
            if len(set(f["sidebar"])) != len(pages):
                problems.append(f"{page}: the sidebar links {len(set(f['sidebar']))} pages, the site has {len(pages)}")
            problems += [f"{page}: image does not show: {i['src']}" for i in f["images"] if not i["ok"]]
            problems += [f"{page}: browser console: {e['message']}" for e in browser.get_log("browser")
                         if e["level"] == "SEVERE"]
            if page in (screenshots or {}):
                SHOTS.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(SHOTS / screenshots[page]))
        for url, f in facts.items():
            where = urlparse(url).path.lstrip("/")
            for target in f["links"] + [i["src"] for i in f["images"]]:
                if not target.startswith(base): continue  # outside the site: the repository, sources on GitHub
                bare, frag = urldefrag(target)
                if bare not in statuses: statuses[bare] = _status(bare)
                if statuses[bare] != 200: problems.append(f"{where}: broken link {target} (HTTP {statuses[bare]})")
                elif frag and bare in facts and frag not in facts[bare]["ids"]:
                    problems.append(f"{where}: link {target}: no #{frag} on that page")
    counts = {"pages": len(pages), "internal_urls": len(statuses),
              "images": sum(len(f["images"]) for f in facts.values())}
    return problems, counts


def test_every_page_in_a_browser(site, browser):
    start = time.time()
    problems, counts = browse(site, browser, SCREENSHOTS)
    print(f"{counts} checked in the browser in {time.time() - start:.1f} s")
    assert not problems, "\n".join(problems)
    for name in SCREENSHOTS.values(): assert (SHOTS / name).stat().st_size > 10_000, f"screenshot {name} is empty"


def _library_pages() -> dict[str, str]:
    """Library notebook (relative to nbs/) -> its page."""
    from nbdev.config import nbpath2html
    from tools.docs.build import find_notebooks, is_library_notebook
    nbs = ROOT / "nbs"
    return {nb: nbpath2html(nb).as_posix() for nb in find_notebooks(nbs) if is_library_notebook(nbs / nb)}


_OUTPUTS = """return document.querySelectorAll(
  'main figure.output-figure img, main .output-html table, main .output-md table').length;"""


@pytest.fixture(scope="module")
def outputs_per_page(site, browser) -> dict:
    """How many figure and table outputs each library page shows in the browser."""
    counts = {}
    with serve(site) as base:
        for page in _library_pages().values():
            browser.get(base + page)
            counts[page] = browser.execute_script(_OUTPUTS)
    return counts


@pytest.mark.parametrize("notebook", list(_library_pages()))
def test_library_page_shows_an_output(notebook, outputs_per_page):
    if not EXECUTED: pytest.skip("DOCS_EXECUTE=0: the notebooks were not executed, so no page has outputs")
    page = _library_pages()[notebook]
    assert outputs_per_page[page] > 0, f"{page} (from nbs/{notebook}) shows no figure or table output"


def test_search_finds_attach_masks(site, browser):
    """Type into the search box as a reader would: a result must link to the masks page, and lead there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    with serve(site) as base:
        browser.get(base + "index.html")
        box = browser.find_element(By.ID, "search-box")
        box.click()
        box.send_keys("attach_masks")
        results = WebDriverWait(browser, 10).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results a") or False)
        hrefs = [a.get_attribute("href") for a in results]
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "search.png"))
        assert any(urlparse(h).path.endswith("/masks.html") for h in hrefs), hrefs
        first = next(a for a in results if urlparse(a.get_attribute("href")).path.endswith("/masks.html"))
        first.click()
        WebDriverWait(browser, 10).until(lambda d: urlparse(d.current_url).path.endswith("/masks.html"))
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


# Code that neither wraps nor scrolls, or that runs past the page's right edge, as the browser lays it out.
_CUT_OFF = """
const width = document.documentElement.clientWidth, bad = [];
if (document.documentElement.scrollWidth > width + 1) bad.push('the page scrolls sideways: ' +
    document.documentElement.scrollWidth + ' > ' + width + ' px');
for (const el of document.querySelectorAll('main pre, main table, main .math.display')) {
  const st = getComputedStyle(el), box = el.getBoundingClientRect();
  const wraps = ['pre-wrap', 'pre-line', 'break-spaces', 'normal'].includes(st.whiteSpace) && el.tagName === 'PRE';
  const scrolls = ['auto', 'scroll'].includes(st.overflowX);
  const what = el.tagName + ' ' + JSON.stringify(el.textContent.slice(0, 50));
  if (el.scrollWidth > el.clientWidth + 1 && !scrolls) bad.push(what + ' is cut off');
  if (box.right > width + 1) bad.push(what + ' runs past the right edge');
  if (el.tagName === 'PRE' && !wraps && !scrolls) bad.push('PRE neither wraps nor scrolls');
}
return bad;
"""


@pytest.mark.parametrize("width", [420, 1280])
def test_code_wraps_or_scrolls(site, browser, width):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    problems = []
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        with serve(site) as base:
            for page in pages:
                browser.get(base + page)
                problems += [f"{page} at {width} px: {p}" for p in browser.execute_script(_CUT_OFF)]
                if width < 600 and page in ("masks.html", "index.html"):
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    browser.save_screenshot(str(SHOTS / f"narrow-{page.replace('.html', '')}.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    assert not problems, "\n".join(problems[:40])


def test_figures_links_and_broken_ones_in_a_browser(small_site, browser):
    problems, counts = browse(small_site, browser, {"fig.html": "figure-page.png"})
    assert not problems, "\n".join(problems)
    assert counts["pages"] == 3 and counts["images"] == 2, counts
    assert (small_site / "assets" / "figures" / "law.png").is_file()
    assert (small_site / "fig_files" / "figure-html").is_dir()
    # now break it as a careless edit would: the check must say so
    (small_site / "assets" / "figures" / "law.png").unlink()
    (small_site / "tutorials" / "start.html").unlink()
    problems, _ = browse(small_site, browser)
    assert any("image does not show" in p and "law.png" in p for p in problems), problems
    assert any("broken link" in p and "tutorials/start.html" in p for p in problems), problems
