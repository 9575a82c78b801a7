// The search box: loads search-index.js on first use, ranks the sections holding every typed word.
(function () {
  const box = document.getElementById('search-box'), panel = document.getElementById('search-results');
  if (!box || !panel) return;
  const root = document.body.dataset.root || '';
  let loading = null;
  function load() {
    if (!loading) loading = new Promise(function (resolve, reject) {
      const s = document.createElement('script');
      s.src = root + 'search-index.js';
      s.onload = function () { resolve(window.HFX_SEARCH_INDEX || []); };
      s.onerror = reject;
      document.head.appendChild(s);
    });
    return loading;
  }
  function esc(s) {
    return s.replace(/[&<>"]/g, function (c) { return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; });
  }
  function score(e, terms) {
    const h = e.h.toLowerCase(), t = e.t.toLowerCase(), x = e.x.toLowerCase();
    let total = 0;
    for (const term of terms) {
      const s = (h === term ? 50 : 0) + (h.includes(term) ? 10 : 0) + (t.includes(term) ? 3 : 0) +
        (x.includes(term) ? 1 : 0);
      if (!s) return 0;
      total += s;
    }
    return total;
  }
  function snippet(x, term) {
    const at = Math.max(0, x.toLowerCase().indexOf(term) - 50);
    return (at ? '\u2026' : '') + x.slice(at, at + 150) + (x.length > at + 150 ? '\u2026' : '');
  }
  function show(index, query) {
    const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.length) { panel.hidden = true; panel.innerHTML = ''; return; }
    const hits = index.map(function (e) { return [score(e, terms), e]; }).filter(function (p) { return p[0] > 0; })
      .sort(function (a, b) { return b[0] - a[0]; }).slice(0, 15);
    panel.innerHTML = hits.length ? '<ul>' + hits.map(function (p) {
      const e = p[1];
      return '<li><a href="' + esc(root + e.u) + '"><span class="sr-heading">' + esc(e.h) + '</span>' +
        '<span class="sr-page">' + esc(e.t) + '</span><span class="sr-text">' + esc(snippet(e.x, terms[0])) +
        '</span></a></li>';
    }).join('') + '</ul>' : '<p class="sr-none">Nothing found for \u201c' + esc(query) + '\u201d</p>';
    panel.hidden = false;
  }
  box.addEventListener('focus', load);
  box.addEventListener('input', function () { load().then(function (index) { show(index, box.value); }); });
  box.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') { panel.hidden = true; box.blur(); }
    if (ev.key === 'Enter') { const a = panel.querySelector('a'); if (a) window.location.href = a.href; }
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.key === '/' && document.activeElement !== box) { ev.preventDefault(); box.focus(); }
  });
  document.addEventListener('click', function (ev) { if (!ev.target.closest('.search')) panel.hidden = true; });
  // on a narrow screen the list of pages starts folded, so that the page itself comes first
  const pages = document.querySelector('details.nav-pages');
  if (pages && window.matchMedia('(max-width: 760px)').matches) pages.open = false;
})();
