"""The documentation as a reader meets it: the offline build of `make docs`, served on 127.0.0.1 and opened page by page
in headless Chromium. Fails on a page that does not load or is blank, a broken link or image inside the site, or an
exported function or class without its API entry. Screenshots land in test-output/docs/."""
import functools
import http.server
import importlib
import inspect
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

from conftest import ROOT

SHOTS = ROOT / "test-output" / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MIN_TEXT_CHARS = 100  # a page whose main column shows less visible text than this is blank
SCREENSHOT_PAGES = {"index.html": "home.png", "core.html": "api-core.png"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as `make docs` builds it without Quarto (into a temporary folder; `_proc/` caches nbdev's processing)."""
    from hyperflux.docs_build import build_docs
    start = time.time()
    dest = build_docs("offline", dest=tmp_path_factory.mktemp("docs") / "_docs", root=ROOT)
    print(f"docs built in {time.time() - start:.1f} s")
    return dest


def test_a_page_per_notebook(site):
    from nbdev.config import nbpath2html
    from hyperflux.docs_build import find_notebooks
    notebooks = find_notebooks(ROOT / "nbs")
    assert "index.ipynb" in notebooks and (site / "index.html").is_file()
    missing = [nb for nb in notebooks if not (site / nbpath2html(nb)).is_file()]
    assert not missing, f"notebooks without a page: {missing}"


def test_every_exported_function_and_class_has_an_api_entry(site):
    """Each public function and class a module exports has the entry nbdev's doc links point at (page#id)."""
    from hyperflux._modidx import d
    from hyperflux.docs_build import tag_ids
    ids, missing = {}, []
    for mod_name, syms in d["syms"].items():
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


@pytest.fixture(scope="module")
def server(site):
    """The site on 127.0.0.1 at a free port, served from a thread."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
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
                "--window-size=1280,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
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


def test_every_page_in_a_browser(site, server, browser):
    start = time.time()
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    problems, facts = [], {}
    for page in pages:
        url = server + page
        if (code := _status(url)) != 200:
            problems.append(f"{page}: HTTP {code}"); continue
        browser.get(url)
        f = facts[url] = browser.execute_script(_PAGE_FACTS)
        if not f["title"]: problems.append(f"{page}: no <title>")
        if f["text"] < MIN_TEXT_CHARS: problems.append(f"{page}: blank ({f['text']} characters of visible text)")
        if len(set(f["sidebar"])) < len(pages): problems.append(f"{page}: the sidebar links {len(set(f['sidebar']))} of {len(pages)} pages")
        problems += [f"{page}: image does not show: {i['src']}" for i in f["images"] if not i["ok"]]
        problems += [f"{page}: browser console: {e['message']}" for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        if page in SCREENSHOT_PAGES:
            SHOTS.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(SHOTS / SCREENSHOT_PAGES[page]))
    statuses = {}
    for url, f in facts.items():
        for target in f["links"] + [i["src"] for i in f["images"]]:
            if not target.startswith(server): continue  # outside the site (the repository, sources on GitHub)
            bare, frag = urldefrag(target)
            if bare not in statuses: statuses[bare] = _status(bare)
            where = urlparse(url).path.lstrip("/")
            if statuses[bare] != 200: problems.append(f"{where}: broken link {target} (HTTP {statuses[bare]})")
            elif frag and bare in facts and frag not in facts[bare]["ids"]:
                problems.append(f"{where}: link {target}: no #{frag} on that page")
    print(f"{len(pages)} pages, {len(statuses)} internal URLs checked in the browser in {time.time() - start:.1f} s")
    assert not problems, "\n".join(problems)
    assert {"home.png", "api-core.png"} <= {p.name for p in SHOTS.glob("*.png")}
