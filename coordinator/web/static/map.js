// Meridian coordinator: the regional latency map.
//
// Two modes, chosen by what the page contains:
// - live map (`svg#map`): countries, one marker per region coloured by status, a legend, the
//   fallback table `#regions-table` kept in step, live updates over server-sent events, and a
//   details panel `#region-panel` per region;
// - scope map (`svg#scope-map[data-regions]`, incident pages): the same map with the listed
//   regions highlighted and the others dimmed; drawn once, no events.
//
// Served as a classic deferred script after the vendored internmap, d3-array, d3-geo and
// topojson-client, under `Content-Security-Policy: default-src 'self'`. So: no inline code or
// style attributes, no eval, every request same-origin, and every node is built with
// createElement/textContent because region and target names come from config. The source is
// ASCII only (non-ASCII text is written as \u escapes) so it decodes the same whatever charset
// the server declares.
//
// Deliberately absent: pan/zoom, per-frame work (nothing animates), a re-draw of the countries
// after the first render (updates touch only markers and table cells), and any rendering of
// the fallback table's first version (the coordinator renders it, so the page works without JS).
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const WORLD_URL = '/assets/vendor/countries-110m.json';
  const REGIONS_URL = '/api/v1/regions';
  const EVENTS_URL = '/api/v1/events';
  const DASH = '\u2014';
  const ELLIPSIS = '\u2026';
  const TIMES = '\u00d7';

  // Margin around the land, in viewBox units (about pixels at first render).
  const PAD = 10;
  // Label font size in viewBox units; app.css sets the same size.
  const LABEL_FONT = 11;
  // Ratio of "now" to baseline from which a phase or target is shown as slow.
  const SLOW_RATIO = 1.5;
  // Series window asked for in the details panel.
  const SERIES_PHASE = 'connect';
  const SERIES_HOURS = 6;
  // Event-stream retry after the browser gave up (404, 401, wrong content type): doubling.
  const RETRY_MIN_MS = 2000;
  const RETRY_MAX_MS = 60000;
  // A regions event refreshes the open details panel at most this often.
  const PANEL_REFRESH_MS = 15000;

  // Every status the server sends, in legend order. `label` is the legend's and the table's
  // wording (the same as the coordinator's `status_words`), `text` the one inside sentences;
  // `rank` puts the worst markers on top.
  const STATUSES = {
    normal: { label: 'Normal', text: 'normal', rank: 1 },
    degraded: { label: 'Slower than usual', text: 'slower than usual', rank: 3 },
    unreachable: { label: 'Unreachable', text: 'unreachable', rank: 4 },
    warming: { label: 'Learning baseline', text: 'learning baseline', rank: 2 },
    unknown: { label: 'Unknown', text: 'unknown', rank: 0 },
    'no-data': { label: 'No data', text: 'no data', rank: 0 },
  };
  const PHASES = ['dns', 'connect', 'tls', 'ttfb', 'transfer', 'total'];
  const PHASE_NAMES = {
    dns: 'DNS', connect: 'Connect', tls: 'TLS', ttfb: 'First byte', transfer: 'Transfer', total: 'Total',
  };

  // ---- small helpers -------------------------------------------------------------------

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(k, String(v));
    }
  }

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  function clamp(v, lo, hi) {
    return Math.min(hi, Math.max(lo, v));
  }

  function statusOf(s) {
    return Object.prototype.hasOwnProperty.call(STATUSES, s) ? s : 'unknown';
  }

  // Whole milliseconds, as the coordinator's `ms` template filter writes them, so a table cell
  // reads the same before and after a live update.
  function fmtMs(v) {
    const n = num(v);
    return n === null ? DASH : `${Math.round(n)} ms`;
  }

  // now / base, or null when either is missing or the baseline is zero.
  function ratio(now, base) {
    const a = num(now);
    const b = num(base);
    return a === null || b === null || b <= 0 ? null : a / b;
  }

  function fmtRatio(r) {
    return r === null ? DASH : r.toFixed(1) + TIMES;
  }

  // Marker radius in viewBox units: grows with the square root of latency so that 400 ms is
  // not ten times the area of 40 ms; fixed when there is no latency (larger when unreachable,
  // which is then the news).
  function radiusFor(latency, status) {
    const n = num(latency);
    if (n === null) return status === 'unreachable' ? 7 : 5;
    return clamp(4 + Math.sqrt(Math.max(0, n)) / 2, 4, 14);
  }

  function regionSentence(r) {
    const status = STATUSES[statusOf(r.status)].text;
    return `${r.name || r.id}: ${status}, ${fmtMs(r.latency_ms)} vs ${fmtMs(r.baseline_ms)} baseline`;
  }

  function redirectToLogin() {
    window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname + window.location.search));
  }

  // GET a same-origin JSON document. A 401 sends the browser to the login page; any other
  // failure rejects with the server's `{ "error": ... }` message when it sent one.
  async function fetchJSON(url, signal) {
    const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, signal });
    if (res.status === 401) {
      redirectToLogin();
      throw new Error('Your session has expired; signing in again' + ELLIPSIS);
    }
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      const msg = body && typeof body.error === 'string' && body.error ? body.error : `HTTP ${res.status}`;
      throw new Error(msg);
    }
    if (body === null || typeof body !== 'object') throw new Error(`Unreadable response from ${url}`);
    return body;
  }

  function librariesMissing() {
    const d3 = window.d3;
    return !d3 || typeof d3.geoNaturalEarth1 !== 'function' || !window.topojson;
  }

  // ---- the base map ----------------------------------------------------------------------

  // Draws sphere, graticule, land and borders once (four paths in all) and returns the
  // projection and the empty marker layer. `topo` may be null (atlas failed to load): the map
  // then shows only the graticule, and markers still land in the right places.
  function drawBase(svg, topo) {
    const d3 = window.d3;
    const width = clamp(Math.round(svg.clientWidth || svg.getBoundingClientRect().width || 960), 320, 2400);
    let land = null;
    let borders = null;
    if (topo && topo.objects && topo.objects.countries) {
      const all = window.topojson.feature(topo, topo.objects.countries).features;
      // Antarctica (ISO 3166 numeric 010) has no region and would take a fifth of the height.
      land = { type: 'FeatureCollection', features: all.filter((f) => f.id !== '010') };
      borders = window.topojson.mesh(topo, topo.objects.countries, (a, b) => a !== b);
    }
    const extent = land || { type: 'Sphere' };
    const projection = d3.geoNaturalEarth1().fitWidth(width - 2 * PAD, extent);
    const [tx, ty] = projection.translate();
    projection.translate([tx + PAD, ty + PAD]);
    // One decimal is a tenth of a pixel at first render: a quarter less markup than the default.
    const path = d3.geoPath(projection).digits(1);
    const height = Math.ceil(path.bounds(extent)[1][1] + PAD);

    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    svg.replaceChildren();
    const base = svgEl('g', { class: 'base', 'aria-hidden': 'true' });
    base.append(
      svgEl('path', { class: 'sphere', d: path({ type: 'Sphere' }) }),
      svgEl('path', { class: 'graticule', d: path(d3.geoGraticule10()) }),
    );
    if (land) {
      base.append(svgEl('path', { class: 'land', d: path(land) }), svgEl('path', { class: 'borders', d: path(borders) }));
    }
    const markers = svgEl('g', { class: 'markers' });
    svg.append(base, markers);
    // Markers shrink on narrow maps (a phone) so that a continent is not one blob; label text
    // keeps its size, since it is set in CSS pixels and one viewBox unit is about one pixel.
    const scale = clamp(width / 1100, 0.6, 1);
    return { projection, markers, width, height, scale };
  }

  function showMapError(svg, message) {
    svg.dataset.error = message;
    let note = svg.querySelector('text.map-error');
    const vb = svg.viewBox && svg.viewBox.baseVal;
    if (!note) {
      note = svgEl('text', { class: 'map-error', 'text-anchor': 'middle' });
      svg.append(note);
    }
    note.setAttribute('x', String(vb && vb.width ? vb.width / 2 : 480));
    note.setAttribute('y', String(vb && vb.height ? vb.height / 2 : 75));
    note.textContent = message;
  }

  function clearMapError(svg) {
    delete svg.dataset.error;
    const note = svg.querySelector('text.map-error');
    if (note) note.remove();
  }

  function markReady(svg, t0) {
    if (svg.dataset.ready === '1') return;
    svg.dataset.ready = '1';
    // Milliseconds since navigation start, and spent in this script's rendering work.
    svg.dataset.readyMs = String(Math.round(performance.now()));
    svg.dataset.renderMs = String(Math.round(performance.now() - t0));
  }

  // ---- markers ---------------------------------------------------------------------------

  function createMarker(id, focusable) {
    const g = svgEl('g', { class: 'region', 'data-region': id });
    if (focusable) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'button');
    }
    g.append(svgEl('title'), svgEl('circle', { class: 'dot', cx: 0, cy: 0 }), svgEl('text', { class: 'label', dy: '0.35em' }));
    return g;
  }

  // Sets position, status, size, label and tooltip; returns the marker's layout record, or
  // null when the region has no usable coordinates (the marker is then hidden).
  function updateMarker(g, r, projection, opts) {
    const lat = num(r.lat);
    const lon = num(r.lon);
    const xy = lat === null || lon === null ? null : projection([lon, lat]);
    if (!xy || !Number.isFinite(xy[0]) || !Number.isFinite(xy[1])) {
      g.setAttribute('display', 'none');
      return null;
    }
    g.removeAttribute('display');
    const status = statusOf(r.status);
    const radius = (opts.radius ? opts.radius(r) : radiusFor(r.latency_ms, status)) * (opts.scale || 1);
    const labelText = opts.labelText ? opts.labelText(r) : fmtMs(r.latency_ms);
    const x = Math.round(xy[0] * 10) / 10;
    const y = Math.round(xy[1] * 10) / 10;
    g.setAttribute('transform', `translate(${x},${y})`);
    g.dataset.status = status;
    const latency = num(r.latency_ms);
    g.dataset.latencyMs = latency === null ? '' : String(latency);
    const [title, dot, label] = [g.querySelector('title'), g.querySelector('circle.dot'), g.querySelector('text.label')];
    title.textContent = regionSentence(r);
    dot.setAttribute('r', radius.toFixed(1));
    label.textContent = labelText;
    return { g, label, x, y, r: radius, text: labelText, rank: STATUSES[status].rank, latency: latency || 0 };
  }

  function overlaps(a, b) {
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  }

  // Greedy label placement: worst status first, then highest latency; each label goes right of
  // its dot, else left, above or below, else it is hidden (class `auto-hidden`, shown on hover
  // and focus). Labels avoid each other and the dots that `blocks` accepts (all by default).
  // Widths are estimated from the character count so no layout is read. O(n^2) box tests:
  // about 40 000 for 100 regions, well under a millisecond.
  function placeLabels(items, width, height, opts) {
    const wanted = (opts && opts.wanted) || (() => true);
    const blocks = (opts && opts.blocks) || (() => true);
    const font = (opts && opts.font) || LABEL_FONT;
    const dots = items.filter(blocks).map((m) => ({ m, x0: m.x - m.r, x1: m.x + m.r, y0: m.y - m.r, y1: m.y + m.r }));
    const placed = [];
    const order = items.slice().sort((a, b) => b.rank - a.rank || b.latency - a.latency);
    for (const m of order) {
      const w = m.text.length * font * 0.58 + 2;
      const h = font;
      const gap = m.r + 2;
      // dx, dy: where the label's anchor goes relative to the dot; x0, y0: its box's corner.
      const candidates = [
        { anchor: 'start', dx: gap, dy: 0, x0: m.x + gap, y0: m.y - h / 2 },
        { anchor: 'end', dx: -gap, dy: 0, x0: m.x - gap - w, y0: m.y - h / 2 },
        { anchor: 'middle', dx: 0, dy: -(gap + h / 2), x0: m.x - w / 2, y0: m.y - gap - h },
        { anchor: 'middle', dx: 0, dy: gap + h / 2, x0: m.x - w / 2, y0: m.y + gap },
      ];
      let chosen = null;
      if (m.text && wanted(m)) {
        for (const c of candidates) {
          const box = { x0: c.x0, x1: c.x0 + w, y0: c.y0, y1: c.y0 + h };
          if (box.x0 < 0 || box.x1 > width || box.y0 < 0 || box.y1 > height) continue;
          if (placed.some((p) => overlaps(p, box))) continue;
          if (dots.some((d) => d.m !== m && overlaps(d, box))) continue;
          chosen = c;
          placed.push(box);
          break;
        }
      }
      const c = chosen || (m.x > width - 60 ? candidates[1] : candidates[0]);
      m.label.setAttribute('x', String(c.dx));
      m.label.setAttribute('y', String(c.dy));
      m.label.setAttribute('text-anchor', c.anchor);
      m.label.classList.toggle('auto-hidden', !chosen);
    }
  }

  // Keeps the worst markers drawn last (on top) without losing keyboard focus.
  function stackMarkers(layer, items) {
    const active = document.activeElement;
    const order = items.slice().sort((a, b) => a.rank - b.rank || a.latency - b.latency);
    const current = Array.from(layer.children);
    if (order.every((m, i) => current[i] === m.g)) return;
    for (const m of order) layer.appendChild(m.g);
    if (active && active !== document.activeElement && typeof active.focus === 'function') {
      active.focus({ preventScroll: true });
    }
  }

  // ---- legend, indicator, banner ----------------------------------------------------------

  function ensureNear(svg, id, tag, cls, before) {
    let node = document.getElementById(id);
    if (!node) {
      node = el(tag, { id, class: cls });
      svg.parentNode.insertBefore(node, before ? svg : svg.nextSibling);
    }
    return node;
  }

  function swatch(attrs) {
    const s = svgEl('svg', { class: 'swatch', viewBox: '-8 -8 16 16', width: 16, height: 16, 'aria-hidden': 'true' });
    const g = svgEl('g', attrs);
    g.append(svgEl('circle', { class: 'dot', r: 5 }));
    if (attrs.class && attrs.class.includes('affected')) g.append(svgEl('circle', { class: 'ring', r: 7 }));
    s.append(g);
    return s;
  }

  function buildLegend(node, entries) {
    node.replaceChildren();
    node.classList.add('legend');
    for (const e of entries) {
      const li = el('li');
      li.append(swatch(e.attrs), el('span', null, e.label));
      node.append(li);
    }
  }

  // ---- fallback table ------------------------------------------------------------------

  function updateTable(regions) {
    const table = document.getElementById('regions-table');
    if (!table) return;
    const tbody = table.tBodies[0] || table.appendChild(el('tbody'));
    const rows = new Map();
    for (const tr of Array.from(tbody.rows)) if (tr.dataset.region) rows.set(tr.dataset.region, tr);
    for (const r of regions) {
      let tr = rows.get(r.id);
      if (!tr) {
        // A region the server-rendered page did not know yet.
        tr = el('tr', { 'data-region': r.id });
        tr.append(el('td', { class: 'name' }, r.name || r.id), el('td', { class: 'status' }), el('td', { class: 'latency' }), el('td', { class: 'baseline' }));
        tbody.append(tr);
      }
      const status = statusOf(r.status);
      tr.dataset.status = status;
      const cell = (cls) => tr.querySelector('td.' + cls);
      const st = cell('status');
      if (st) {
        st.dataset.status = status;
        st.textContent = STATUSES[status].label;
      }
      const lat = cell('latency');
      if (lat) lat.textContent = fmtMs(r.latency_ms);
      const base = cell('baseline');
      if (base) base.textContent = fmtMs(r.baseline_ms);
    }
  }

  // ---- details panel -----------------------------------------------------------------------

  function table(cls, headers, rows) {
    const t = el('table', { class: cls });
    const head = el('tr');
    for (const h of headers) head.append(el('th', { scope: 'col' }, h));
    const thead = el('thead');
    thead.append(head);
    t.append(thead);
    const body = el('tbody');
    for (const cells of rows) {
      const tr = el('tr');
      for (const c of cells) tr.append(c);
      body.append(tr);
    }
    t.append(body);
    return t;
  }

  function td(text, cls) {
    return el('td', cls ? { class: cls } : null, text);
  }

  function ratioCell(now, base) {
    const r = ratio(now, base);
    return td(fmtRatio(r), r !== null && r > SLOW_RATIO ? 'ratio slow' : 'ratio');
  }

  // "182 ms" with the baseline underneath; marked slow past SLOW_RATIO.
  function vsCell(now, base) {
    const r = ratio(now, base);
    const cell = td(fmtMs(now), r !== null && r > SLOW_RATIO ? 'num slow' : 'num');
    cell.append(el('span', { class: 'base' }, 'vs ' + fmtMs(base)));
    return cell;
  }

  function renderPhases(phases) {
    const list = (Array.isArray(phases) ? phases : []).slice();
    list.sort((a, b) => PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase));
    if (!list.length) return el('p', { class: 'no-data' }, 'No phase timings yet.');
    const rows = list.map((p) => [
      el('th', { scope: 'row' }, PHASE_NAMES[p.phase] || p.phase),
      td(fmtMs(p.p50_ms), 'num'), td(fmtMs(p.base_p50_ms), 'num muted'), ratioCell(p.p50_ms, p.base_p50_ms),
      td(fmtMs(p.p95_ms), 'num'), td(fmtMs(p.base_p95_ms), 'num muted'), ratioCell(p.p95_ms, p.base_p95_ms),
    ]);
    return table('phases', ['Phase', 'p50', 'usual', TIMES, 'p95', 'usual', TIMES], rows);
  }

  function renderTargets(targets) {
    const list = Array.isArray(targets) ? targets : [];
    if (!list.length) return el('p', { class: 'no-data' }, 'No targets probed from this region.');
    const rows = list.map((t) => {
      const status = statusOf(t.status);
      const name = el('th', { scope: 'row' }, t.name || t.target);
      name.append(el('span', { class: 'base status-word', 'data-status': status }, STATUSES[status].text));
      const aff = td(`${num(t.affected) ?? DASH} of ${num(t.probes) ?? DASH}`, 'num');
      const failures = num(t.failures);
      if (failures) aff.append(el('span', { class: 'base' }, `${failures} failed`));
      return [name, vsCell(t.connect_ms, t.connect_base_ms), vsCell(t.tls_ms, t.tls_base_ms), vsCell(t.server_ms, t.server_base_ms), aff];
    });
    return table('targets', ['Target', 'Connect', 'TLS', 'Server', 'Probes affected'], rows);
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

  // p50 (solid) and p95 (faint) of the series as polylines, broken where points are missing.
  function renderSparkline(series) {
    const step = num(series && series.step_ms) || 60000;
    const pts = (series && Array.isArray(series.points) ? series.points : [])
      .filter((p) => num(p.t) !== null && (num(p.p50_ms) !== null || num(p.p95_ms) !== null))
      .sort((a, b) => a.t - b.t);
    const wrap = el('figure', { class: 'spark' });
    if (!pts.length) {
      wrap.append(el('p', { class: 'no-data' }, 'No data in this window.'));
      return wrap;
    }
    const W = 360;
    const H = 72;
    const top = 12;
    const bottom = 4;
    const t0 = pts[0].t;
    const t1 = pts[pts.length - 1].t;
    const p50s = pts.map((p) => num(p.p50_ms)).filter((v) => v !== null);
    const all = p50s.concat(pts.map((p) => num(p.p95_ms)).filter((v) => v !== null));
    const yMax = Math.max(1, ...all) * 1.05;
    const sx = (t) => (t1 === t0 ? W / 2 : ((t - t0) / (t1 - t0)) * (W - 2) + 1);
    const sy = (v) => top + (1 - v / yMax) * (H - top - bottom);
    const svg = svgEl('svg', { class: 'sparkline', viewBox: `0 0 ${W} ${H}`, role: 'img' });
    svg.append(svgEl('title'));
    svg.firstChild.textContent = `${PHASE_NAMES[series.phase] || series.phase}: p50 and p95 over the last ${SERIES_HOURS} hours`;
    svg.append(svgEl('line', { class: 'axis', x1: 0, x2: W, y1: H - bottom, y2: H - bottom }));
    for (const [key, cls] of [['p95_ms', 'p95'], ['p50_ms', 'p50']]) {
      let seg = [];
      let prevT = null;
      const flush = () => {
        if (seg.length === 1) svg.append(svgEl('circle', { class: cls, cx: seg[0][0], cy: seg[0][1], r: 1.5 }));
        else if (seg.length > 1) svg.append(svgEl('polyline', { class: cls, points: seg.map((p) => p.join(',')).join(' ') }));
        seg = [];
      };
      for (const p of pts) {
        const v = num(p[key]);
        if (v === null || (prevT !== null && p.t - prevT > 2.5 * step)) flush();
        if (v !== null) seg.push([sx(p.t).toFixed(1), sy(v).toFixed(1)]);
        prevT = p.t;
      }
      flush();
    }
    if (p50s.length) {
      const max = svgEl('text', { class: 'minmax', x: W - 2, y: 9, 'text-anchor': 'end' });
      max.textContent = `p50 max ${fmtMs(Math.max(...p50s))} \u00b7 min ${fmtMs(Math.min(...p50s))}`;
      svg.append(max);
    }
    wrap.append(svg);
    wrap.append(el('figcaption', null, `${timeFmt.format(new Date(t0))} \u2013 ${timeFmt.format(new Date(t1))}; dark line p50, light line p95`));
    return wrap;
  }

  function createPanel(panel, lookup, onClose) {
    let ctrl = null;
    let openId = null;
    let opener = null;
    let loadedAt = 0;

    function head(name) {
      const h = el('h2', { id: 'region-panel-title', tabindex: '-1' }, name);
      const close = el('button', { type: 'button', class: 'close', 'aria-label': 'Close details' }, TIMES);
      close.addEventListener('click', () => api.close());
      const bar = el('div', { class: 'panel-head' });
      bar.append(h, close);
      return bar;
    }

    function errorNote(err) {
      return el('p', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
    }

    async function load(id, focus) {
      if (ctrl) ctrl.abort();
      ctrl = new AbortController();
      const signal = ctrl.signal;
      loadedAt = Date.now();
      const known = lookup(id);
      if (focus) {
        panel.replaceChildren(head(known ? known.name || id : id), el('p', { class: 'loading' }, 'Loading' + ELLIPSIS));
        panel.hidden = false;
        document.body.classList.add('panel-open');
        panel.querySelector('h2').focus({ preventScroll: true });
      }
      const enc = encodeURIComponent(id);
      const [detail, series] = await Promise.allSettled([
        fetchJSON(`/api/v1/regions/${enc}`, signal),
        fetchJSON(`/api/v1/regions/${enc}/series?phase=${SERIES_PHASE}&hours=${SERIES_HOURS}`, signal),
      ]);
      if (signal.aborted || openId !== id) return;
      const wasFocused = panel.contains(document.activeElement);
      const parts = [];
      if (detail.status === 'fulfilled') {
        const r = detail.value;
        const status = statusOf(r.status);
        parts.push(head(r.name || id));
        const summary = el('p', { class: 'summary' });
        const chip = el('span', { class: 'status-chip', 'data-status': status }, STATUSES[status].label);
        summary.append(chip, el('span', null, `${num(r.probes_healthy) ?? DASH} of ${num(r.probes) ?? DASH} probes healthy`));
        parts.push(summary);
        parts.push(el('p', { class: 'latency-line' }, `Latency ${fmtMs(r.latency_ms)}, usually ${fmtMs(r.baseline_ms)}`));
        parts.push(el('h3', null, 'Phases'), renderPhases(r.phases));
        parts.push(el('h3', null, 'Targets'), renderTargets(r.targets));
      } else {
        parts.push(head(known ? known.name || id : id), errorNote(detail.reason));
      }
      parts.push(el('h3', null, `${PHASE_NAMES[SERIES_PHASE]}, last ${SERIES_HOURS} hours`));
      parts.push(series.status === 'fulfilled' ? renderSparkline(series.value) : errorNote(series.reason));
      panel.replaceChildren(...parts);
      panel.dataset.region = id;
      if (focus || wasFocused) panel.querySelector('h2').focus({ preventScroll: true });
    }

    const api = {
      open(id, from) {
        openId = id;
        opener = from || null;
        load(id, true).catch((e) => console.warn('region panel', e));
      },
      close() {
        if (ctrl) ctrl.abort();
        const back = opener;
        openId = null;
        opener = null;
        panel.hidden = true;
        document.body.classList.remove('panel-open');
        delete panel.dataset.region;
        panel.replaceChildren();
        onClose();
        if (back && back.isConnected) back.focus({ preventScroll: true });
      },
      // Called on each live update: re-fetch the open region, but not more than once per
      // PANEL_REFRESH_MS so a chatty stream does not turn into a request storm.
      refresh() {
        if (openId && Date.now() - loadedAt > PANEL_REFRESH_MS) {
          load(openId, false).catch((e) => console.warn('region panel', e));
        }
      },
      get openId() {
        return openId;
      },
    };
    panel.setAttribute('aria-labelledby', 'region-panel-title');
    panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') api.close();
    });
    return api;
  }

  // ---- live events -----------------------------------------------------------------------

  // Subscribes to the coordinator's event stream. The browser reconnects by itself after a
  // network error; after a fatal one (404, 401, wrong content type) the EventSource is closed
  // for good, so this retries with doubling delays and calls `resync` before each retry (and
  // after each reconnect): that catches up on missed updates and detects an expired session.
  function subscribe(handlers, indicator, resync) {
    let retryMs = RETRY_MIN_MS;
    let hadError = false;
    const setState = (state) => {
      if (!indicator) return;
      indicator.dataset.state = state;
      indicator.textContent = state === 'open' ? 'live' : state === 'error' ? 'reconnecting' + ELLIPSIS : 'connecting' + ELLIPSIS;
      indicator.title = state === 'open' ? 'Receiving live updates' : 'Live updates paused; retrying';
    };
    const connect = () => {
      const es = new EventSource(EVENTS_URL);
      es.addEventListener('open', () => {
        setState('open');
        retryMs = RETRY_MIN_MS;
        if (hadError) resync();
        hadError = false;
      });
      es.addEventListener('error', () => {
        setState('error');
        hadError = true;
        if (es.readyState === EventSource.CLOSED) {
          es.close();
          const wait = retryMs * (0.8 + 0.4 * Math.random());
          retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
          setTimeout(() => {
            resync();
            connect();
          }, wait);
        }
      });
      for (const [type, fn] of Object.entries(handlers)) {
        es.addEventListener(type, (e) => {
          let data;
          try {
            data = JSON.parse(e.data);
          } catch (err) {
            console.warn(`ignoring malformed ${type} event`, err);
            return;
          }
          fn(data);
        });
      }
    };
    setState('connecting');
    connect();
  }

  function incidentBanner(banner) {
    const seen = new Map();
    return (inc) => {
      if (!inc || !Number.isInteger(inc.id)) return;
      seen.delete(inc.id);
      seen.set(inc.id, inc);
      const latest = Array.from(seen.values()).reverse().slice(0, 3);
      banner.replaceChildren(
        ...latest.map((i) => {
          const a = el('a', { href: `/incidents/${i.id}`, 'data-state': i.state || '' }, `Incident ${i.id}: ${i.class || 'incident'}, ${i.state || 'open'}`);
          return a;
        }),
      );
      banner.hidden = false;
    };
  }

  // ---- modes -------------------------------------------------------------------------------

  async function loadBoth(svg) {
    if (librariesMissing()) throw new Error('Map libraries failed to load');
    const [topo, payload] = await Promise.allSettled([fetchJSON(WORLD_URL), fetchJSON(REGIONS_URL)]);
    if (topo.status === 'rejected') console.warn('world atlas', topo.reason);
    const base = drawBase(svg, topo.status === 'fulfilled' ? topo.value : null);
    return { base, payload };
  }

  async function initLive(svg) {
    const t0 = performance.now();
    const liveState = ensureNear(svg, 'live-state', 'span', 'live-state', true);
    const banner = ensureNear(svg, 'live-banner', 'div', 'live-banner', true);
    if (!banner.childElementCount) banner.hidden = true;
    const legend = ensureNear(svg, 'map-legend', 'ul', 'legend', false);
    buildLegend(legend, Object.entries(STATUSES).map(([s, v]) => ({ attrs: { class: 'region', 'data-status': s }, label: v.label })));

    const markers = new Map();
    const regions = new Map();
    let base = null;
    let pending = null;
    let selected = null;
    const panelNode = document.getElementById('region-panel');
    const panel = panelNode
      ? createPanel(panelNode, (id) => regions.get(id), () => {
          if (selected) selected.classList.remove('selected');
          selected = null;
        })
      : null;

    const apply = (payload) => {
      if (!payload || !Array.isArray(payload.regions)) {
        console.warn('regions payload without a regions array');
        return;
      }
      if (!base) {
        pending = payload;
        return;
      }
      const seen = new Set();
      const items = [];
      for (const r of payload.regions) {
        if (!r || typeof r.id !== 'string') continue;
        seen.add(r.id);
        regions.set(r.id, r);
        let g = markers.get(r.id);
        if (!g) {
          g = createMarker(r.id, true);
          markers.set(r.id, g);
          base.markers.append(g);
        }
        const item = updateMarker(g, r, base.projection, { scale: base.scale });
        if (item) items.push(item);
      }
      for (const [id, g] of markers) {
        if (!seen.has(id)) {
          g.remove();
          markers.delete(id);
          regions.delete(id);
        }
      }
      placeLabels(items, base.width, base.height);
      stackMarkers(base.markers, items);
      updateTable(payload.regions);
      clearMapError(svg);
      if (payload.generated_ms !== undefined) svg.dataset.updatedMs = String(payload.generated_ms);
      markReady(svg, t0);
      if (panel) panel.refresh();
    };

    const activate = (g) => {
      if (!panel) return;
      if (selected) selected.classList.remove('selected');
      selected = g;
      g.classList.add('selected');
      panel.open(g.dataset.region, g);
    };
    svg.addEventListener('click', (e) => {
      const g = e.target.closest && e.target.closest('g.region');
      if (g) activate(g);
    });
    svg.addEventListener('keydown', (e) => {
      const g = e.target.closest && e.target.closest('g.region');
      if (g && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        activate(g);
      }
    });
    // Raise the hovered marker so its label is not hidden under a neighbour.
    svg.addEventListener('pointerover', (e) => {
      const g = e.target.closest && e.target.closest('g.region');
      if (g && g.parentNode.lastChild !== g && g !== document.activeElement) g.parentNode.appendChild(g);
    });

    try {
      const loaded = await loadBoth(svg);
      base = loaded.base;
      if (loaded.payload.status === 'fulfilled') apply(loaded.payload.value);
      else showMapError(svg, loaded.payload.reason.message);
      if (pending) apply(pending);
      pending = null;
    } catch (e) {
      showMapError(svg, e.message);
      return;
    }
    const resync = () => fetchJSON(REGIONS_URL).then(apply, (e) => console.warn('regions', e));
    subscribe({ regions: apply, incident: incidentBanner(banner) }, liveState, resync);
  }

  async function initScope(svg) {
    const t0 = performance.now();
    const wanted = new Set((svg.dataset.regions || '').split(',').map((s) => s.trim()).filter(Boolean));
    const legend = ensureNear(svg, 'scope-legend', 'ul', 'legend', false);
    buildLegend(legend, [
      { attrs: { class: 'region affected', 'data-status': 'degraded' }, label: 'Affected by this incident' },
      { attrs: { class: 'region dimmed', 'data-status': 'normal' }, label: 'Other regions' },
    ]);
    try {
      const { base, payload } = await loadBoth(svg);
      if (payload.status === 'rejected') throw payload.reason;
      const items = [];
      const list = Array.isArray(payload.value.regions) ? payload.value.regions : [];
      for (const r of list) {
        if (!r || typeof r.id !== 'string') continue;
        const affected = wanted.has(r.id);
        const g = createMarker(r.id, false);
        g.classList.add(affected ? 'affected' : 'dimmed');
        const ring = 12 * base.scale;
        if (affected) g.insertBefore(svgEl('circle', { class: 'ring', r: ring.toFixed(1) }), g.querySelector('text'));
        base.markers.append(g);
        const item = updateMarker(g, r, base.projection, {
          scale: base.scale,
          radius: () => (affected ? 8 : 4),
          labelText: () => (affected ? r.name || r.id : ''),
        });
        if (item) {
          item.rank = affected ? 1 : 0;
          items.push(item);
        }
      }
      placeLabels(items.map((m) => (m.rank ? Object.assign(m, { r: 13 * base.scale }) : m)), base.width, base.height, {
        wanted: (m) => m.rank > 0,
        blocks: (m) => m.rank > 0,
        font: 12,
      });
      stackMarkers(base.markers, items);
      markReady(svg, t0);
    } catch (e) {
      showMapError(svg, e.message);
    }
  }

  function start() {
    const live = document.getElementById('map');
    if (live) initLive(live).catch((e) => showMapError(live, e.message));
    const scope = document.getElementById('scope-map');
    if (scope) initScope(scope).catch((e) => showMapError(scope, e.message));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
