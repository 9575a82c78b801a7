"""The documentation site from the notebooks, built offline: nbdev's notebook processing, then Markdown to HTML.

`make docs` calls `build_docs`; how it works, and the conventions it gives every notebook: nbs/91_docs.ipynb. The page
template, the style sheet and the search script are the files in `assets/`, read when a site is built.
"""
from __future__ import annotations
import ast, base64, fnmatch, hashlib, html, json, multiprocessing, os, posixpath, re, shutil, subprocess, sys, tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import yaml
from fastcore.nbio import read_nb
from fastcore.parallel import parallel
from fastcore.xtras import working_directory
from nbdev.config import get_config, nbpath2html
from nbdev.process import Processor
from nbdev.processors import FilterDefaults, add_show_docs, exec_show_docs
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

import hyperflux
from hyperflux.core import HyperfluxError, atomic_write_json

ASSETS = Path(__file__).parent/"assets"

def asset(name: str) -> str:
    "The text of a file in `assets/` (the page template, the style sheet, the search script)."
    return (ASSETS/name).read_text(encoding="utf-8")

def find_notebooks(nbs_path: str | Path) -> list[str]:
    "Every notebook under `nbs_path` as a sorted posix path relative to it, skipping names starting with '_' or '.'."
    nbs_path = Path(nbs_path)
    found = [nb.relative_to(nbs_path) for nb in nbs_path.rglob("*.ipynb")]
    return sorted(p.as_posix() for p in found if not any(part.startswith(("_", ".")) for part in p.parts))

@dataclass
class Page:
    "One page of the site: the notebook it comes from, the HTML file it becomes and its place in the sidebar."
    src: str                # notebook path relative to nbs/ (posix)
    out: str                # HTML path relative to the site root (posix), as nbdev names it
    section: str            # sidebar section; '' for the home page and other top-level pages
    title: str = ""
    description: str = ""
    body: str = ""          # rendered HTML of the notebook's cells
    toc: list = field(default_factory=list)  # Python-Markdown's toc_tokens
    ids: set = field(default_factory=set)    # element ids on the page, for checking #fragments

_re_default_exp = re.compile(r"^\s*#\|\s*default_exp\s+\S+", re.MULTILINE)

def is_library_notebook(nb_path: str | Path) -> bool:
    "Does the notebook export a module (has a `#| default_exp`)?"
    return any(c.cell_type == "code" and _re_default_exp.search(c.source) for c in read_nb(nb_path).cells)

def page_section(src: str,        # notebook path relative to nbs/
                 is_library: bool # does it export a module?
                ) -> str:
    "The sidebar section of a notebook: '' (top level), 'Library', or its folder's name ('tutorials' -> 'Tutorials')."
    parts = src.split("/")
    if len(parts) == 1: return "Library" if is_library and src != "index.ipynb" else ""
    name = re.sub(r"^\d+[a-zA-Z0-9]*_", "", parts[0]).replace("_", " ")
    return name[:1].upper() + name[1:]

_SECTION_ORDER = {"": 0, "Library": 1, "Tutorials": 2, "Experiments": 9}

def nav_order(page: Page):
    "Sort key of a page in the sidebar: home first, then sections in reading order, then file name."
    return (_SECTION_ORDER.get(page.section, 5), page.section, page.src != "index.ipynb", page.src)

def imports_of_mixed_cell(source: str) -> str | None:
    "The top-level imports of a cell that mixes imports with other code, as source; None for any other cell."
    try: tree = ast.parse(source)
    except SyntaxError: return None
    if not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)): return None
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    if len(imports) == len(tree.body): return None
    if any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", "") == "show_doc"
           for n in tree.body): return None
    return "\n".join(ast.unparse(n) for n in imports)

class exec_show_docs_imports_only(exec_show_docs):
    "nbdev's `exec_show_docs`, except that a cell mixing imports and other code runs only its imports."
    def __call__(self, cell):
        if cell.cell_type == "code" and getattr(self.nb, "has_docs_", False) and hasattr(self, "k") \
                and not (cell.directives_.keys() & {"export", "exports", "exporti", "exec_doc"}) \
                and cell.directives_.get("eval", "").lower() != "false" \
                and (imports := imports_of_mixed_cell(cell.source)) is not None:
            if imports: self.k.run_cell(imports)
            if e := self.k.exc:
                msg = f"Error in the imports of cell {cell.idx_}:\n{imports}\n{type(e).__name__}: {e}"
                raise Exception(msg) from e
            return
        return super().__call__(cell)

class order_show_docs(Processor):
    "Put the `show_doc` cells nbdev adds after an exported cell in the order of its definitions (nbdev reverses them)."
    def begin(self):
        cells, run = [], []
        for cell in self.nb.cells:
            if getattr(cell, "has_sd", False): run.append(cell); continue
            cells += run[::-1] + [cell]
            run = []
        self.nb.cells = cells + run[::-1]

class DocsFilter(FilterDefaults):
    "nbdev's doc processors, with `exec_show_docs_imports_only` for `exec_show_docs` and API entries in source order."
    def base_procs(self):
        procs = [exec_show_docs_imports_only if p is exec_show_docs else p for p in super().base_procs()]
        return procs[:procs.index(add_show_docs) + 1] + [order_show_docs] + procs[procs.index(add_show_docs) + 1:]

class exec_all_cells(exec_show_docs_imports_only):
    "Run every code cell `make test` runs (not `#| eval: false`, not flagged `#| slow`), keeping its outputs."
    def begin(self):
        super().begin()
        from nbdev.test import _skip_cell  # the predicate of nbdev's own test runner, so docs and tests agree
        self.skip = _skip_cell(self.nb, (get_config().get("tst_flags") or "").split())
        self.nb.metadata["hyperflux_docs_errors"] = []

    def __call__(self, cell):
        if cell.cell_type != "code" or not hasattr(self, "k") or self.skip(cell): return
        # a cell that starts another IPython shell (the tests in nbs/91_docs.ipynb do) takes `__main__` over, and
        # `show_doc` then resolves the annotations of the notebook's classes in the wrong namespace: give it back first
        sys.modules["__main__"] = self.k.user_module
        self.k.cell(cell)
        if (e := self.k.exc) is None: return
        if cell.directives_.keys() & {"export", "exports", "exporti"} or re.search(r"^show_doc\(", cell.source, re.M):
            raise Exception(f"Error in cell {cell.idx_}:\n{cell.source}\n{type(e).__name__}: {e}") from e
        # a failing example or test: its traceback is its output on the page, the build warns, the next cells run
        self.nb.metadata["hyperflux_docs_errors"].append(f"cell {cell.idx_} raised {type(e).__name__}: {e}")

class ExecutingDocsFilter(DocsFilter):
    "`DocsFilter` that runs every cell, so that each page shows the outputs the code makes today."
    def base_procs(self):
        return [exec_all_cells if p is exec_show_docs_imports_only else p for p in super().base_procs()]

def _process_one(job: tuple[Path, Path, bool]) -> tuple[str | None, list[str]]:
    "nbdev's doc processors on one notebook (src, dst, execute), written atomically to `dst`: (error, failed cells)."
    from fastcore.nbio import write_nb
    src, dst, execute = job
    # this worker was spawned, so its own children (data loader workers) would be too; give them the platform's
    # default start method (fork on Linux), as in `make test`, so classes defined in a notebook reach them
    multiprocessing.set_start_method(multiprocessing.get_all_start_methods()[0], force=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp").resolve()
    in_test = os.environ.get("IN_TEST")
    os.environ["IN_TEST"] = "1"  # as nbdev's own doc processing and `make test` do
    try:
        # an executed notebook runs in its own folder, as in `make test`
        nb = read_nb(src)
        with working_directory(src.parent if execute else Path.cwd()):
            (ExecutingDocsFilter if execute else DocsFilter)()(nb)
        raised = [f"{src.name}: {e}" for e in nb.metadata.pop("hyperflux_docs_errors", [])]
        write_nb(nb, tmp)
        os.replace(tmp, dst)
        return None, raised
    except Exception as e:
        tmp.unlink(missing_ok=True)
        lines = f"{type(e).__name__}: {e}".splitlines()
        return f"{src.name}: " + "\n    ".join(lines if len(lines) <= 16 else lines[:8] + ["..."] + lines[-7:]), []
    finally:
        if in_test is None: os.environ.pop("IN_TEST", None)
        else: os.environ["IN_TEST"] = in_test

_re_needs_kernel = re.compile(r"^\s*#\|\s*(?:export|exports|exec_doc)(?:\s|$)|^show_doc\(", re.MULTILINE)

def needs_kernel(nb_path: str | Path) -> bool:
    "Does nbdev's processing run code of this notebook (it has exported cells or `show_doc` calls)?"
    return any(c.cell_type == "code" and _re_needs_kernel.search(c.source) for c in read_nb(nb_path).cells)

NOT_EXECUTED = ("experiments/*", "results.ipynb")  # papermill notebooks and the page `make paper` runs and writes

def is_executed(rel: str) -> bool:
    "Does the docs build execute this notebook (path relative to nbs/)? Not those `make paper` runs: `NOT_EXECUTED`."
    return not any(fnmatch.fnmatch(rel, pattern) for pattern in NOT_EXECUTED)

def _digest(*parts: bytes) -> str:
    "A short content hash of byte strings."
    h = hashlib.sha256()
    for part in parts: h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]

def package_digest(lib_path: str | Path) -> str:
    "A hash of the package's code: every `*.py` under `lib_path` by path and content."
    files = sorted(Path(lib_path).rglob("*.py"))
    return _digest(*(f.relative_to(lib_path).as_posix().encode() + b"\0" + f.read_bytes() for f in files))

def processing_code() -> bytes:
    "The source of what processes a notebook (the processors and the worker), not of the renderer."
    import inspect
    parts = (imports_of_mixed_cell, exec_show_docs_imports_only, order_show_docs, DocsFilter, exec_all_cells,
             ExecutingDocsFilter, _process_one)
    return "".join(inspect.getsource(p) for p in parts).encode()

def processing_key(root: str | Path, # the project root
                   execute: bool = False, # are the notebooks executed?
                  ) -> str:
    "What every processed notebook depends on: pyproject.toml, doc links, these processors, nbdev (+ code if executed)."
    import nbdev
    cfg = get_config(Path(root).resolve())
    modidx = cfg.lib_path/"_modidx.py"
    code = f"executed with {package_digest(cfg.lib_path)}" if execute else "not executed"
    return _digest(cfg.config_file.read_bytes(), modidx.read_bytes() if modidx.exists() else b"",
                   processing_code(), nbdev.__version__.encode(), code.encode())

def process_notebooks(root: str | Path,      # the project root (where pyproject.toml is)
                      notebooks: list[str],   # notebook paths relative to the notebooks folder
                      cache: str | Path,      # where processed notebooks are kept
                      n_workers: int | None = None, # worker processes (default: one per core)
                      execute: bool = False,  # run every cell (of the notebooks `is_executed` names), keeping outputs
                      raised: list | None = None, # if given, gets the executed cells that raised (shown on their page)
                     ) -> list[str]:
    "Run nbdev's doc processing on the notebooks whose content changed since they were cached; return the errors."
    root, cache = Path(root).resolve(), Path(cache).resolve()
    cfg = get_config(root)
    # freshness by content, not by time: nbdev-export rewrites every module, git sets times at checkout
    manifest_path, key = cache/"hyperflux-docs-cache.json", processing_key(root, execute)
    try: manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError): manifest = {}
    fresh = manifest.get("key") == key
    done, failed = (manifest.get("notebooks", {}), manifest.get("raised", {})) if fresh else ({}, {})
    jobs, digests = [], {}
    for rel in notebooks:
        src, dst = cfg.nbs_path/rel, cache/rel
        digests[rel] = _digest(src.read_bytes())
        if dst.exists() and done.get(rel) == digests[rel]:
            if raised is not None: raised += failed.get(rel, [])  # a cached failure is still reported
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((rel, src, dst, execute and is_executed(rel)))
    # notebooks whose code runs (executed, or to render `show_doc`) go to fresh worker processes, as in nbdev-proc-nbs,
    # which read the config from their working directory; the others (home page, tutorials, experiments) run no code,
    # so they are processed here, without the start-up cost of a worker
    heavy = [j for j in jobs if j[3] or needs_kernel(j[1])]
    light = [j for j in jobs if j not in heavy]
    with working_directory(root):
        results = [_process_one(j[1:]) for j in light]
        if heavy:
            n = max(1, min(n_workers or os.cpu_count() or 1, len(heavy)))
            results += list(parallel(_process_one, [j[1:] for j in heavy], n_workers=n, method="spawn",
                                     progress=False))
    for (rel, *_), (err, cells) in zip(light + heavy, results):
        if err is None: done[rel] = digests[rel]
        failed[rel] = cells  # same notebook and code, same failure: cached too, and reported by every build
        if raised is not None: raised += cells
    if jobs: atomic_write_json(manifest_path, {"key": key, "notebooks": done, "raised": failed})
    return [e for e, _ in results if e]

def slugify(value: str, separator: str = "-") -> str:
    "A heading's id as Pandoc makes it: lower case; letters, digits, `_-.`; spaces to dashes; from the first letter."
    s = re.sub(r"[^\w\s.-]", "", html.unescape(value), flags=re.UNICODE).strip().lower()
    s = re.sub(r"^[^a-z]+", "", re.sub(r"\s+", separator, s))
    return s or "section"

_re_code_or_math = re.compile(
    r"(?P<code>```.*?```|~~~.*?~~~|``[^\n]+?``|`[^`\n]+`)"
    r"|\$\$(?P<display>.+?)\$\$"
    r"|(?<![\\$\w])\$(?=\S)(?P<inline>(?:[^$\n]|\n(?![ \t]*\n))+?)(?<=\S)\$(?![\w$])", re.DOTALL)

def tex_to_mathml(tex: str, display: bool = False) -> str:
    "MathML for a LaTeX formula, or the formula as code when it cannot be converted."
    from latex2mathml.converter import convert
    try: return convert(tex.strip(), display="block" if display else "inline")
    except Exception: return f'<code class="math">{html.escape(tex)}</code>'

def stash_math(md: str, stash: dict[str, str]) -> str:
    "Replace the formulas in `md` (outside code) by placeholders, keeping their MathML in `stash`."
    def _sub(m):
        if m.group("code"): return m.group(0)
        key = f"HFXMATH{len(stash)}XHF"
        display = m.group("display") is not None
        mathml = tex_to_mathml(m.group("display") if display else m.group("inline"), display)
        stash[key] = f'<div class="math display">{mathml}</div>' if display else mathml
        return f"\n\n{key}\n\n" if display else key
    return _re_code_or_math.sub(_sub, md)

_re_div_open = re.compile(r"^:::+\s*\{(?P<attrs>[^}]*)\}\s*$")
_re_div_close = re.compile(r"^:::+\s*$")

def quarto_divs(md: str) -> str:
    "Quarto's fenced divs (`::: {.callout-note title=\"...\"}` ... `:::`) as HTML divs whose content is Markdown."
    out = []
    for line in md.splitlines():
        if m := _re_div_open.match(line):
            attrs = m.group("attrs")
            classes = re.findall(r"\.([\w-]+)", attrs)
            if any(c.startswith("callout") for c in classes): classes.insert(0, "callout")
            title = re.search(r'title="([^"]*)"', attrs)
            out += ["", f'<div class="{" ".join(classes)}" markdown="1">', ""]
            if title: out += [f'<p class="callout-title">{html.escape(title.group(1))}</p>', ""]
        elif _re_div_close.match(line): out += ["", "</div>", ""]
        else: out.append(line)
    return "\n".join(out)

def new_markdown():
    "The Markdown converter for one page: tables, fenced code with Pygments, attributes, Markdown inside HTML, toc."
    import markdown  # a dev-extra dependency: imported only when a page is rendered
    return markdown.Markdown(
        extensions=["toc", "attr_list", "tables", "fenced_code", "codehilite", "md_in_html", "sane_lists",
                    "def_list", "footnotes", "abbr"],
        extension_configs={"toc": {"slugify": slugify}, "codehilite": {"css_class": "highlight", "guess_lang": False}})

def markdown_to_html(md: str, conv=None) -> str:  # conv: a converter from new_markdown()
    "HTML for Markdown with maths and Quarto divs (placeholders for maths are filled in after conversion)."
    conv = conv or new_markdown()
    stash = {}
    out = conv.convert(quarto_divs(stash_math(md, stash)))
    for key, val in stash.items(): out = out.replace(f"<p>{key}</p>", val).replace(key, val)
    return out

def quarto_options(source: str) -> tuple[dict, str]:
    "Quarto's `#| key: value` options at the top of a cell, and the source without them."
    opts, lines = {}, source.splitlines()
    while lines and lines[0].startswith("#|"):
        key, _, val = lines.pop(0)[2:].partition(":")
        try: opts[key.strip()] = yaml.safe_load(val) if val.strip() else True
        except yaml.YAMLError: opts[key.strip()] = val.strip()
    return opts, "\n".join(lines).strip("\n")

_re_ansi = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")

def _text(v) -> str: return "".join(v) if isinstance(v, list) else (v or "")

def clean_stream(text: str) -> str:
    "Terminal text as a reader sees it: no colour codes, and of each line rewritten with `\\r` only its last state."
    text = _re_ansi.sub("", _text(text)).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))

def highlight_code(code: str, language: str = "python") -> str:
    "HTML of `code` highlighted by Pygments."
    try: lexer = get_lexer_by_name(language or "python")
    except ClassNotFound: lexer = TextLexer()
    return highlight(code, lexer, HtmlFormatter(cssclass="highlight"))

@dataclass
class PageContext:
    "What rendering one page needs: the page, the site's files to write, and where the page's figures go."
    page: Page
    files: dict                 # site path (posix) -> bytes or a source Path, filled while rendering
    figures: int = 0

    @property
    def files_dir(self) -> str:
        "Folder (relative to the page) of the page's figures, as Quarto names it."
        return f"{posixpath.splitext(posixpath.basename(self.page.out))[0]}_files"

    def add_file(self, rel_to_page: str, content: bytes) -> str:
        "Register a file to write beside the page; return its URL relative to the page."
        self.files[posixpath.normpath(posixpath.join(posixpath.dirname(self.page.out), rel_to_page))] = content
        return rel_to_page

_IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/svg+xml": "svg"}
_MIME_ORDER = ("text/markdown", "image/svg+xml", "image/png", "image/jpeg", "image/gif", "text/html", "text/latex",
               "text/plain")

def _image_html(ctx: PageContext, cell_idx: int, data, mime: str, meta: dict, caption: str | None) -> str:
    "An output image written as a file beside the page, as a figure."
    ctx.figures += 1
    ext = _IMAGE_TYPES[mime]
    content = _text(data).encode() if ext == "svg" else base64.b64decode(_text(data))
    url = ctx.add_file(f"{ctx.files_dir}/figure-html/cell-{cell_idx}-output-{ctx.figures}.{ext}", content)
    size = "".join(f' {k}="{int(v)}"' for k, v in (meta or {}).items() if k in ("width", "height"))
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    alt = html.escape(caption or "figure")
    return f'<figure class="output-figure"><img src="{url}" alt="{alt}"{size}>{cap}</figure>'

def output_blocks(cell, cell_idx: int, ctx: PageContext, asis: bool = False, caption: str | None = None) -> list:
    "The outputs of a code cell as ('md', markdown) or ('html', html) blocks."
    blocks = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "stream":
            text = clean_stream(o.get("text", ""))
            if not text.strip(): continue
            if asis: blocks.append(("md", text))
            else:
                stream = o.get("name", "stdout")
                blocks.append(("html", f'<pre class="output {stream}">{html.escape(text.rstrip())}</pre>'))
        elif kind == "error":
            tb = clean_stream("\n".join(o.get("traceback", [])) or f"{o.get('ename')}: {o.get('evalue')}")
            blocks.append(("html", f'<pre class="output error">{html.escape(tb)}</pre>'))
        elif kind in ("execute_result", "display_data"):
            data = o.get("data", {})
            mime = next((m for m in _MIME_ORDER if m in data), None)
            if mime is None: continue
            if mime == "text/markdown": blocks.append(("md", _text(data[mime])))
            elif mime in _IMAGE_TYPES:
                meta = o.get("metadata", {}).get(mime)
                blocks.append(("html", _image_html(ctx, cell_idx, data[mime], mime, meta, caption)))
            elif mime == "text/html":
                blocks.append(("html", f'<div class="output output-html">{_text(data[mime])}</div>'))
            elif mime == "text/latex": blocks.append(("md", _text(data[mime])))
            elif asis: blocks.append(("md", _text(data[mime])))
            else: blocks.append(("html", f'<pre class="output">{html.escape(_text(data[mime]))}</pre>'))
    return blocks

def _api_block(md: str) -> str:
    "A `show_doc` entry (Markdown) in a box, without nbdev's leading rule."
    md = re.sub(r"^\s*---\s*\n", "", md)
    return f'<div class="api" markdown="1">\n\n{md}\n\n</div>'

def code_cell_blocks(cell, cell_idx: int, ctx: PageContext) -> list:
    "A processed code cell as ('md'|'html', text) blocks, honouring Quarto's cell options."
    opts, src = quarto_options(cell.get("source", ""))
    if opts.get("include") is False or not (src.strip() or opts): return []  # a hidden cell is run, not shown
    blocks = []
    if src.strip() and opts.get("echo", True) is not False:
        code = highlight_code(src, cell.get("metadata", {}).get("language", "python"))
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            code = f'<div class="cell-label">parameters (papermill)</div>{code}'
        if fold := opts.get("code-fold"):
            summary = html.escape(str(opts.get("code-summary", "Code")))
            opened = " open" if fold == "show" else ""
            code = f'<details class="code-fold"{opened}><summary>{summary}</summary>{code}</details>'
        blocks.append(("html", f'<div class="cell-code">{code}</div>'))
    if opts.get("output", True) is False: return blocks
    outs = output_blocks(cell, cell_idx, ctx, asis=opts.get("output") == "asis", caption=opts.get("fig-cap"))
    if src.lstrip().startswith("show_doc("): outs = [("md", _api_block(t)) if k == "md" else (k, t) for k, t in outs]
    elif opts.get("output") != "asis":  # Markdown a cell displays (a table, say) is marked as its output
        outs = [("md", f'<div class="output output-md" markdown="1">\n\n{t}\n\n</div>') if k == "md" else (k, t)
                for k, t in outs]
    return blocks + outs

def markdown_cell_text(cell, ctx: PageContext) -> str:
    "A markdown cell's source, with its attached images written beside the page."
    src = cell.source
    for name, data in (cell.get("attachments") or {}).items():
        mime = next((m for m in _IMAGE_TYPES if m in data), None)
        if mime is None: continue
        content = _text(data[mime]).encode() if mime == "image/svg+xml" else base64.b64decode(_text(data[mime]))
        url = ctx.add_file(f"{ctx.files_dir}/attachments/{name}", content)
        src = src.replace(f"attachment:{name}", url)
    return src

_re_tag = re.compile(r"<[a-zA-Z][^<>]*>")
_re_url_attr = re.compile(r'\s(href|src)="([^"]*)"')

def sub_in_tags(pattern: re.Pattern, repl, text: str) -> str:
    "`pattern.sub(repl, ...)` inside HTML tags only, never in text (such as code that shows HTML)."
    return _re_tag.sub(lambda t: pattern.sub(repl, t.group(0)), text)

def tag_ids(text: str) -> set[str]:
    "The ids of the elements in an HTML text."
    return {i for t in _re_tag.findall(text) for i in re.findall(r'\sid="([^"]+)"', t)}

def front_matter(nb) -> dict:
    "The front matter nbdev's processing put in the first (raw) cell: title, description, output-file."
    cell = nb.cells[0] if nb.cells else None
    if cell is None or cell.cell_type != "raw": return {}
    m = re.match(r"\s*---\s*\n(.*?)\n---", cell.source, re.DOTALL)
    return (yaml.safe_load(m.group(1)) or {}) if m else {}

def full_description(nb_path: str | Path) -> str:
    "The whole `> description` under the notebook's `# title`, every line (nbdev's front matter keeps the first)."
    for cell in read_nb(nb_path).cells:
        if cell.cell_type != "markdown": continue
        m = re.search(r"^#\s+\S.*\n+((?:>.*(?:\n|$))+)", cell.source, re.MULTILINE)
        return " ".join(l.lstrip(">").strip() for l in m.group(1).splitlines()).strip() if m else ""
    return ""

_re_heading = re.compile(r"^\s*(#{1,6})\s+(.*?)\s*$", re.MULTILINE)
TESTS_HEADING = "Tests"  # a `## Tests` heading folds the cells after it, up to the next `#`/`##` heading
_TESTS_FOLD = ('<details class="tests" markdown="1">\n<summary>Show the tests: the code that checks the examples '
               'above</summary>')

def _top_heading(md: str) -> tuple[int, str] | None:
    "Level and text of the heading a Markdown cell starts with, or None."
    m = _re_heading.match(md)
    return (len(m.group(1)), m.group(2)) if m and m.start(1) == len(md) - len(md.lstrip()) else None

def render_notebook(nb, ctx: PageContext) -> None:
    "Fill in the page's title, description, body HTML, table of contents and ids from its processed notebook."
    page, fm = ctx.page, front_matter(nb)
    page.title = str(fm.get("title") or page.title)
    page.description = str(fm.get("description") or "")
    chunks, stash, folded = [], {}, False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            text, heading = markdown_cell_text(cell, ctx), _top_heading(cell.source)
            if folded and heading and heading[0] <= 2: chunks.append("</details>")
            if heading and heading[0] <= 2: folded = False
            chunks.append(text)
            if heading == (2, TESTS_HEADING):
                chunks.append(_TESTS_FOLD)
                folded = True
        elif cell.cell_type == "code":
            for kind, text in code_cell_blocks(cell, i, ctx):
                if kind == "md": chunks.append(text)
                else:
                    key = f"HFXBLOCK{len(stash)}XHF"
                    stash[key] = text
                    chunks.append(key)
    if folded: chunks.append("</details>")
    conv = new_markdown()
    body = markdown_to_html("\n\n".join(chunks), conv)
    for key, val in stash.items(): body = body.replace(f"<p>{key}</p>", val)
    page.body, page.toc = body, conv.toc_tokens
    page.ids = tag_ids(body)

@dataclass
class LinkResolver:
    "Rewrites the URLs of a page's HTML: doc links and notebook links to relative pages, local files copied in."
    root: Path                  # the project root
    nbs_path: Path              # the notebooks folder
    doc_url: str                # the hosted site's URL, ending in '/'
    pages: dict                 # notebook path (relative to nbs/) -> Page
    files: dict                 # site path -> bytes or source Path (files to copy are added here)
    warnings: list = field(default_factory=list)

    def site_path(self, url: str, page: Page) -> str | None:
        "The site path (posix, no fragment) of `url` on `page`; registers local files to copy; None if external."
        path = url.split("#", 1)[0].split("?", 1)[0]
        if self.doc_url and url.startswith(self.doc_url): return path[len(self.doc_url):] or "index.html"
        if not path or re.match(r"^[a-zA-Z][\w+.-]*:|^//|^/", path): return None
        src_dir = posixpath.dirname(page.src)
        if path.endswith(".ipynb"):
            nb = posixpath.normpath(posixpath.join(src_dir, path))
            if nb in self.pages: return self.pages[nb].out
            self.warnings.append(f"{page.src}: link to a notebook that is not a page: {url}")
            return None
        target = (self.nbs_path/src_dir/path).resolve()
        if target.is_file():
            nbs, root = self.nbs_path.resolve(), self.root.resolve()
            if target.is_relative_to(nbs): rel = target.relative_to(nbs).as_posix()
            elif target.is_relative_to(root): rel = "assets/" + target.relative_to(root).as_posix()
            else: return None
            self.files.setdefault(rel, target)
            return rel
        site = posixpath.normpath(posixpath.join(posixpath.dirname(page.out), path))
        if site not in self.files and site not in {p.out for p in self.pages.values()}:
            self.warnings.append(f"{page.src}: links to {url}, which is neither a page nor a file")
        return site

    def relative(self, url: str, page: Page) -> str:
        "`url` as it must appear on `page`."
        site = self.site_path(url, page)
        if site is None: return url
        frag = "#" + url.split("#", 1)[1] if "#" in url else ""
        return posixpath.relpath(site, posixpath.dirname(page.out) or ".") + frag

    def rewrite(self, body: str, page: Page) -> str:
        "The page's HTML with every URL rewritten."
        def rewrite(m): return f' {m.group(1)}="{html.escape(self.relative(html.unescape(m.group(2)), page))}"'
        return sub_in_tags(_re_url_attr, rewrite, body)

    def fix_fragments(self, body: str, page: Page, ids_by_out: dict) -> str:
        "Point each `#fragment` missing on its target page at its enclosing entry, or drop it (with a warning)."
        def _fix(m):
            attr, url = m.group(1), html.unescape(m.group(2))
            if attr != "href" or "#" not in url or re.match(r"^[a-zA-Z][\w+.-]*:|^//", url): return m.group(0)
            path, frag = url.split("#", 1)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page.out), path)) if path else page.out
            ids = ids_by_out.get(target)
            if ids is None or frag in ids: return m.group(0)
            parts = frag.split(".")
            while len(parts) > 1 and ".".join(parts) not in ids: parts.pop()
            new = ".".join(parts)
            if new not in ids:
                self.warnings.append(f"{page.src}: no #{frag} on {target}; linking to the top of the page")
                return f' {attr}="{html.escape(path or "#")}"'
            return f' {attr}="{html.escape(path)}#{new}"'
        return sub_in_tags(_re_url_attr, _fix, body)

def _toc_list(tokens: list, depth: int = 2) -> str:
    "Nested list of links to the headings in Python-Markdown's toc tokens."
    if not tokens or depth == 0: return ""
    items = "".join(f'<li><a href="#{t["id"]}">{t["name"]}</a>{_toc_list(t["children"], depth - 1)}</li>'
                    for t in tokens)
    return f"<ul>{items}</ul>"

def toc_html(page: Page) -> str:
    "The page's 'on this page' box (empty for pages with fewer than two headings)."
    n = sum(1 + len(t["children"]) for t in page.toc)
    return f'<div class="toc-title">On this page</div>{_toc_list(page.toc)}' if n >= 2 else ""

def sidebar_html(pages: list[Page], current: Page) -> str:
    "Links to every page, grouped by section, the current page marked."
    base, out, section = posixpath.dirname(current.out) or ".", [], None
    for p in pages:
        if p.section != section:
            if section is not None: out.append("</ul>")
            section = p.section
            if section: out.append(f'<div class="nav-section">{html.escape(section)}</div>')
            out.append("<ul>")
        label = "Home" if p.src == "index.ipynb" else p.title
        cur = ' class="current" aria-current="page"' if p is current else ""
        out.append(f'<li><a href="{posixpath.relpath(p.out, base)}"{cur}>{html.escape(label)}</a></li>')
    return "\n".join(out + ["</ul>"])

def pager_html(pages: list[Page], current: Page) -> str:
    "Links to the previous and next page in sidebar order."
    i, base = pages.index(current), posixpath.dirname(current.out) or "."
    def _link(p, rel):
        if p is None: return "<span></span>"
        label = f"← {html.escape(p.title)}" if rel == "prev" else f"{html.escape(p.title)} →"
        return f'<a class="{rel}" rel="{rel}" href="{posixpath.relpath(p.out, base)}">{label}</a>'
    prev = pages[i - 1] if i > 0 else None
    nxt = pages[i + 1] if i + 1 < len(pages) else None
    return _link(prev, "prev") + _link(nxt, "next")

_re_section_heading = re.compile(r'<h([2-4])[^>]*\sid="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)

_re_block_tag = re.compile(r"</?(?:p|div|li|ul|ol|pre|h\d|td|th|tr|table|br|figure|figcaption|details|summary)\b[^>]*>")

def _plain(fragment: str) -> str:
    "The visible text of an HTML fragment, whitespace collapsed (block tags break words, inline tags do not)."
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", _re_block_tag.sub(" ", fragment))).split())

def search_entries(page: Page, max_chars: int = 1500) -> list[dict]:
    "The search index entries of a page: its top and each section (h2-h4), as title, heading, URL and text."
    entries, body = [], page.body
    marks = list(_re_section_heading.finditer(body))
    intro = page.description + " " + _plain(body[:marks[0].start() if marks else len(body)])
    entries.append({"t": page.title, "h": page.title, "u": page.out, "x": intro.strip()[:max_chars]})
    for m, nxt in zip(marks, marks[1:] + [None]):
        text = _plain(body[m.end():nxt.start() if nxt else len(body)])[:max_chars]
        entries.append({"t": page.title, "h": _plain(m.group(3)), "u": f"{page.out}#{m.group(2)}", "x": text})
    return entries

def search_index_js(pages: list[Page]) -> str:
    "The site's search index, as a script that sets `window.HFX_SEARCH_INDEX`."
    entries = [e for p in pages for e in search_entries(p)]
    return "window.HFX_SEARCH_INDEX = " + json.dumps(entries, ensure_ascii=False, separators=(",", ":")) + ";\n"

_PYGMENTS_MARKER = "/* Pygments' colours for code"  # the line of style.css that they replace

def site_css() -> str:
    "The site's style sheet: assets/style.css with Pygments' colours for code in place of its marker line."
    css = asset("style.css")
    start = css.index(_PYGMENTS_MARKER)
    end = css.index("\n", start) + 1
    return css[:start] + HtmlFormatter(style="friendly").get_style_defs(".highlight") + "\n" + css[end:]

@dataclass
class SiteInfo:
    "What every page shows about the project."
    root: Path          # project root
    nbs_path: Path      # notebooks folder
    title: str          # the project's name, in the top bar
    version: str        # its version
    doc_url: str        # the hosted docs' URL ('/'-terminated); links to it become relative
    repo_url: str       # the repository's web page ('' for none)
    branch: str         # the branch notebook links point at

def site_info(root: str | Path = ".") -> SiteInfo:
    "The project's settings from `[tool.nbdev]` in pyproject.toml."
    cfg = get_config(Path(root).resolve())
    doc_url = f"{cfg.get('doc_host', '')}{cfg.get('doc_baseurl', '')}".rstrip("/") + "/"
    return SiteInfo(cfg.config_path, cfg.nbs_path, cfg.get("title") or cfg.lib_name, hyperflux.__version__,
                    doc_url if doc_url != "/" else "", cfg.get("git_url", ""), cfg.get("branch", "main"))

def write_page(page: Page, pages: list[Page], site: SiteInfo) -> str:
    "The full HTML of one page."
    root = posixpath.relpath(".", posixpath.dirname(page.out) or ".")
    root = "" if root == "." else root + "/"
    source = f"nbs/{page.src}"
    footer = f"Made by <code>make docs</code> from <code>{html.escape(source)}</code>"
    if site.repo_url: footer = (f'Made by <code>make docs</code> from <a href="{site.repo_url}/blob/{site.branch}/'
                                f'{html.escape(source)}"><code>{html.escape(source)}</code></a>')
    desc = markdown_to_html(page.description).replace("<p>", '<p class="description">', 1) if page.description else ""
    return Template(asset("page.html")).substitute(
        head_title=html.escape(page.title if page.src == "index.ipynb" else f"{page.title} – {site.title}"),
        description_attr=html.escape(page.description), root=root, site_title=html.escape(site.title),
        version=html.escape(site.version),
        toplinks=f'<a href="{site.repo_url}">Repository</a>' if site.repo_url else "",
        sidebar=sidebar_html(pages, page), title=html.escape(page.title), description=desc, body=page.body,
        pager=pager_html(pages, page), footer=footer, toc=toc_html(page))

def render_site(site: SiteInfo,        # the project
                cache: str | Path,     # the processed notebooks (from `process_notebooks`)
                notebooks: list[str],  # notebook paths relative to the notebooks folder
               ) -> tuple[dict, list[str]]:
    "Every file of the site (site path -> text, bytes or source Path) and the warnings met while rendering."
    cache, files = Path(cache), {}
    pages = []
    for rel in notebooks:
        section = page_section(rel, is_library_notebook(site.nbs_path/rel))
        title = re.sub(r"^\d+[a-zA-Z0-9]*_", "", Path(rel).stem).replace("_", " ")
        pages.append(Page(rel, nbpath2html(rel).as_posix(), section, title))
    pages.sort(key=nav_order)
    for page in pages:
        render_notebook(read_nb(cache/page.src), PageContext(page, files))
        full = full_description(site.nbs_path/page.src)
        if page.description and full.startswith(page.description): page.description = full
    links = LinkResolver(site.root, site.nbs_path, site.doc_url, {p.src: p for p in pages}, files)
    for page in pages: page.body = links.rewrite(page.body, page)
    ids = {p.out: p.ids for p in pages}
    for page in pages: page.body = links.fix_fragments(page.body, page, ids)
    for page in pages: files[page.out] = write_page(page, pages, site)
    files["styles.css"] = site_css()
    files["search.js"], files["search-index.js"] = asset("search.js"), search_index_js(pages)
    files[".nojekyll"] = ""
    return files, links.warnings

def write_site(files: dict, dest: str | Path) -> Path:
    "Write the site's files into a fresh folder, then put it in place of `dest` (never a half-written site)."
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    for rel, content in files.items():
        path = tmp/rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path): shutil.copyfile(content, path)
        elif isinstance(content, bytes): path.write_bytes(content)
        else: path.write_text(content, encoding="utf-8")
    tmp.chmod(0o755)
    old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
    if dest.exists(): dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest

def docs_execute() -> bool:
    "Does the docs build execute the notebooks? Yes, unless the environment sets `DOCS_EXECUTE=0` (or no/false/off)."
    return os.environ.get("DOCS_EXECUTE", "1").strip().lower() not in ("0", "no", "false", "off")

def build_offline(dest: str | Path | None = None, # output folder (default: nbdev's doc_path, `_docs/`)
                  root: str | Path = ".",          # project root
                  cache: str | Path | None = None, # processed notebooks (default: `_proc/`, as nbdev)
                  n_workers: int | None = None,    # processes for nbdev's processing (default: one per core)
                  quiet: bool = False,             # print nothing
                  execute: bool | None = None,     # run the notebooks' cells (default: env DOCS_EXECUTE, else yes)
                 ) -> Path:
    "Render the site without Quarto: nbdev's processing (and execution) of every notebook, then HTML; return `dest`."
    start = time.time()
    site = site_info(root)
    cfg = get_config(site.root)
    dest = Path(dest) if dest else cfg.doc_path
    notebooks = find_notebooks(site.nbs_path)
    if "index.ipynb" not in notebooks:
        raise HyperfluxError(f"no {site.nbs_path/'index.ipynb'}: the home page of the docs comes from it; create it")
    execute = docs_execute() if execute is None else execute
    # executed and unexecuted notebooks are cached apart, so switching back and forth costs nothing
    cache = Path(cache) if cache else site.root/("_proc" if execute else "_proc/unexecuted")
    raised = []
    errors = process_notebooks(site.root, notebooks, cache, n_workers, execute, raised)
    if errors:
        raise HyperfluxError("the docs were not built: nbdev's processing failed for\n  " + "\n  ".join(errors)
                             + "\nfix these notebooks (run them, e.g. `make test`) and build again")
    files, warnings = render_site(site, cache, notebooks)
    write_site(files, dest)
    if not quiet:
        for w in warnings: print(f"warning: {w}", file=sys.stderr)
        for r in raised: print(f"warning: {r} (its traceback is on the page; `make test` fails on it)", file=sys.stderr)
        how = "notebooks executed (cached)" if execute else "notebooks not executed (DOCS_EXECUTE=0)"
        print(f"docs: {len(notebooks)} pages, {how}, in {time.time() - start:.1f} s -> {dest/'index.html'}")
    return dest

def build_docs(renderer: str = "auto",            # 'auto' (Quarto when installed, else offline), 'quarto' or 'offline'
               dest: str | Path | None = None,    # output folder (offline only; Quarto writes nbdev's doc_path)
               root: str | Path = ".",            # project root
               execute: bool | None = None,       # offline: run the notebooks (default: env DOCS_EXECUTE, else yes)
              ) -> Path:
    "Build the documentation site: nbdev's Quarto build where Quarto is installed, else the offline renderer."
    if renderer not in ("auto", "quarto", "offline"):
        raise HyperfluxError(f"unknown docs renderer {renderer!r}; choose one of: auto, offline, quarto")
    quarto = shutil.which("quarto")
    if renderer == "quarto" and not quarto:
        raise HyperfluxError("Quarto is not installed; install it (quarto.org) or build with renderer='offline'")
    if renderer == "offline" or not quarto: return build_offline(dest, root, execute=execute)
    nbdev_docs = Path(sys.executable).parent/"nbdev-docs"
    subprocess.run([str(nbdev_docs)], cwd=Path(root).resolve(), check=True)
    return get_config(Path(root).resolve()).doc_path
