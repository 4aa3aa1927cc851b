// Meridian coordinator: live refresh of the incidents list (`table#incidents-table`).
//
// The coordinator renders the table; this script subscribes to the server-sent `incident`
// events and, on each (and on every (re)connect, to catch up on what was missed), re-fetches
// /api/v1/incidents and rebuilds the tbody with createElement/textContent. Times are shown in
// the viewer's local time zone. Classic deferred script under `default-src 'self'`; ASCII only.
// Deliberately absent: sorting, filtering, paging (the server decides what the list holds).
(function () {
  'use strict';

  const DASH = '\u2014';
  const ELLIPSIS = '\u2026';
  const RETRY_MIN_MS = 2000;
  const RETRY_MAX_MS = 60000;
  // Several incident events usually arrive together (one per state change): fetch once.
  const DEBOUNCE_MS = 300;

  const table = document.getElementById('incidents-table');
  if (!table) return;
  const indicator = document.getElementById('live-state');
  // The server's format (pages render UTC), so a refreshed row reads like the rendered one.
  const when = { format: (d) => d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC' };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  // 800 ms, 4.5 s, 3 min 20 s, 2 h 5 min: the coordinator's `dur` template filter, so a row
  // reads the same before and after a live refresh.
  function duration(ms) {
    const n = num(ms);
    if (n === null) return DASH;
    const s = Math.trunc(n / 1000);
    if (n < 1000) return `${Math.round(n)} ms`;
    if (n < 60000) return `${(n / 1000).toFixed(1)} s`;
    if (n < 3600000) return `${Math.trunc(s / 60)} min ${s % 60} s`;
    return `${Math.trunc(s / 3600)} h ${Math.trunc((s % 3600) / 60)} min`;
  }

  function row(inc) {
    const tr = el('tr', { 'data-incident': inc.id });
    const id = el('td', { class: 'id' });
    id.append(el('a', { href: `/incidents/${encodeURIComponent(inc.id)}` }, inc.id));
    const names = Array.isArray(inc.region_names) && inc.region_names.length ? inc.region_names : inc.regions || [];
    const detected = el('td', { class: 'detected' });
    if (num(inc.detected_ms) !== null) {
      const d = new Date(inc.detected_ms);
      const t = el('time', { datetime: d.toISOString(), title: d.toISOString() }, when.format(d));
      detected.append(t);
    } else {
      detected.textContent = DASH;
    }
    tr.append(
      id,
      el('td', { class: 'class' }, inc.class || DASH),
      el('td', { class: 'state', 'data-state': inc.state || '' }, inc.state || DASH),
      el('td', { class: 'regions' }, names.join(', ') || DASH),
      detected,
      el('td', { class: 'ttd num' }, duration(inc.ttd_ms)),
      el('td', { class: 'ttr num' }, inc.resolved_ms === null || inc.resolved_ms === undefined ? DASH : duration(inc.ttr_ms)),
    );
    return tr;
  }

  async function refresh() {
    const res = await fetch('/api/v1/incidents', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.status === 401) {
      window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname + window.location.search));
      return;
    }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || !Array.isArray(body.incidents)) {
      throw new Error((body && body.error) || `HTTP ${res.status}`);
    }
    const tbody = table.tBodies[0] || table.appendChild(el('tbody'));
    if (!body.incidents.length) {
      const tr = el('tr', { class: 'empty' });
      tr.append(el('td', { colspan: 7 }, 'No incidents.'));
      tbody.replaceChildren(tr);
    } else {
      tbody.replaceChildren(...body.incidents.map(row));
    }
    table.dataset.updatedMs = String(Date.now());
  }

  let timer = null;
  function scheduleRefresh() {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((e) => console.warn('incidents', e)), DEBOUNCE_MS);
  }

  function setState(state) {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.textContent = state === 'open' ? 'live' : 'reconnecting' + ELLIPSIS;
  }

  // Same reconnect policy as map.js: the browser retries network errors itself; after a fatal
  // error (404, 401, wrong content type) retry with doubling delays.
  let retryMs = RETRY_MIN_MS;
  function connect() {
    const es = new EventSource('/api/v1/events');
    es.addEventListener('open', () => {
      setState('open');
      retryMs = RETRY_MIN_MS;
      scheduleRefresh();
    });
    es.addEventListener('incident', scheduleRefresh);
    es.addEventListener('error', () => {
      setState('error');
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        setTimeout(() => {
          scheduleRefresh(); // also notices an expired session (401 -> login)
          connect();
        }, retryMs * (0.8 + 0.4 * Math.random()));
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    });
  }
  connect();
})();
