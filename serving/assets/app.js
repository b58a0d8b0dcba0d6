// Live dashboard of the serving layer. Reads the query API (/v1/metrics...), draws KPI
// tiles, per-minute SVG charts coloured by source with the batch/real-time boundary, a
// country breakdown, daily sales and the data-quality panel (/v1/quality); refreshes itself. Plain ES2020, no dependencies, no build step.
//
// Testability contract (tests/browser/dashboard.mjs relies on it): every bar carries
// data-series, data-window-start, data-value (the API's number) and data-source; every
// chart, KPI tile and the country table carry data-query (a key of
// window.__dashboard.lastResponses) and data-field; each quality cell carries data-producer,
// data-hour and data-verdict; body[data-loaded="1"] after each
// successful refresh. It must never throw: API errors go to the banner.
'use strict';

(() => {
  const MINUTE = 60_000;
  const DAY = 86_400_000;
  const FILTER_DIMS = ['category', 'country', 'device'];
  const TOKEN_KEY = 'lambda.token';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (sel, root = document) => root.querySelector(sel);

  const state = {
    token: null, minutes: 60, endMs: null, refreshMs: 5000, filters: {},
    catalog: null, options: { category: new Set(), country: new Set(), device: new Set() },
    timer: null, seq: 0, refreshes: 0, quality: null, lastQuality: null,
  };
  window.__dashboard = { lastResponses: {}, refreshes: 0, range: null, filters: {} };

  class ApiError extends Error {
    constructor(code, message, status, url) {
      super(message);
      Object.assign(this, { code, status, url });
    }
  }

  // ---- configuration from the page's URL -------------------------------------------

  function readConfig() {
    const url = new URL(location.href);
    const p = url.searchParams;
    const notes = [];
    if (p.has('token')) {
      const t = p.get('token');
      try { sessionStorage.setItem(TOKEN_KEY, t); } catch { /* storage disabled: memory only */ }
      state.token = t;
      p.delete('token');
      history.replaceState(null, '', url.pathname + (p.toString() ? `?${p}` : '') + url.hash);
    } else {
      try { state.token = sessionStorage.getItem(TOKEN_KEY); } catch { state.token = null; }
    }
    if (p.has('minutes')) {
      const m = Number(p.get('minutes'));
      if (Number.isInteger(m) && m >= 1 && m <= 7 * 24 * 60) state.minutes = m;
      else notes.push(`minutes=${p.get('minutes')} ignored (expected 1–10080)`);
    }
    if (p.has('end')) {
      const e = Date.parse(p.get('end'));
      if (Number.isFinite(e)) state.endMs = e;
      else notes.push(`end=${p.get('end')} ignored (expected an RFC 3339 time)`);
    }
    if (p.has('refresh')) {
      const r = Number(p.get('refresh'));
      if (Number.isFinite(r) && r >= 1) state.refreshMs = r * 1000;
      else notes.push(`refresh=${p.get('refresh')} ignored (expected seconds ≥ 1)`);
    }
    for (const part of (p.get('filter') || '').split(',').filter(Boolean)) {
      const i = part.indexOf(':');
      const dim = part.slice(0, i);
      if (i > 0 && FILTER_DIMS.includes(dim)) state.filters[dim] = part.slice(i + 1);
      else notes.push(`filter ${part} ignored (expected category|country|device:value)`);
    }
    const notice = $('#notice');
    notice.textContent = notes.join('; ');
    notice.hidden = notes.length === 0;
  }

  function writeFiltersToUrl() {
    const url = new URL(location.href);
    const f = Object.entries(state.filters).map(([k, v]) => `${k}:${v}`).join(',');
    if (f) url.searchParams.set('filter', f); else url.searchParams.delete('filter');
    const search = url.searchParams.toString().replace(/%3A/gi, ':').replace(/%2C/gi, ',');
    history.replaceState(null, '', url.pathname + (search ? `?${search}` : '') + url.hash);
  }

  // ---- formatting ---------------------------------------------------------------------

  const nf = new Intl.NumberFormat('en-US');
  const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
  const pct = new Intl.NumberFormat('en-US', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16);
  const hhmmss = (ms) => new Date(ms).toISOString().slice(11, 19);

  function money(minor, currency, short = false) {
    try {
      const f = new Intl.NumberFormat('en-US', { style: 'currency', currency });
      const digits = f.resolvedOptions().maximumFractionDigits;
      const major = minor / 10 ** digits;
      if (!short) return f.format(major);
      return new Intl.NumberFormat('en-US', { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 }).format(major);
    } catch {
      return `${(minor / 100).toFixed(2)} ${currency}`;
    }
  }

  // ---- API ----------------------------------------------------------------------------

  // Encodes a query value but keeps ':' and ',' readable (both are legal in a query).
  const enc = (v) => encodeURIComponent(v).replace(/%3A/gi, ':').replace(/%2C/gi, ',');

  function queryUrl(metric, range, opts) {
    const q = [`from=${enc(iso(range.from))}`, `to=${enc(iso(range.to))}`, `granularity=${opts.granularity}`];
    if (opts.groupBy) q.push(`group_by=${enc(opts.groupBy.join(','))}`);
    const filters = opts.filters || {};
    const f = Object.keys(filters).sort().map((k) => `${k}:${filters[k]}`).join(',');
    if (f) q.push(`filter=${enc(f)}`);
    return `/v1/metrics/${enc(metric)}?${q.join('&')}`;
  }

  async function fetchJson(url) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const ctl = new AbortController();
    const timeout = setTimeout(() => ctl.abort(), Math.max(15_000, state.refreshMs));
    let res;
    try {
      res = await fetch(url, { headers, signal: ctl.signal, cache: 'no-store' });
    } catch (e) {
      throw new ApiError('network', e.name === 'AbortError' ? 'request timed out' : `cannot reach the API (${e.message})`, 0, url);
    } finally {
      clearTimeout(timeout);
    }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON: reported below */ }
    if (!res.ok) {
      const hint = res.status === 401 ? ' (open the page with ?token=… to sign in)' : '';
      throw new ApiError(body?.code || `http_${res.status}`, (body?.message || res.statusText || 'request failed') + hint, res.status, url);
    }
    if (body === null || typeof body !== 'object') throw new ApiError('bad_response', 'the API answered with something other than JSON', res.status, url);
    return body;
  }

  // ---- choosing what to query -----------------------------------------------------------

  const info = (metric) => state.catalog?.metrics?.find((m) => m.name === metric);
  const hasValue = (m, field) => (m.values || []).some((v) => v.name === field);

  // The first [metric, field] candidate that the catalogue has and that can apply every
  // active filter and grouping (page_views has no category: funnel counts views too).
  function pick(candidates, groupBy = []) {
    const need = [...Object.keys(state.filters), ...groupBy];
    for (const [metric, field] of candidates) {
      const m = info(metric);
      if (m && hasValue(m, field) && need.every((d) => (m.dimensions || []).includes(d))) return { metric, field };
    }
    return null;
  }

  function plan(range) {
    const f = state.filters;
    const views = pick([['page_views', 'views'], ['funnel', 'views']]);
    const users = pick([['page_views', 'distinct_users'], ['funnel', 'view_users']]);
    const funnel = pick([['funnel', 'carts']]);
    const revenue = pick([['revenue', 'revenue_minor']]);
    const sessions = pick([['sessions', 'sessions']]);
    const orders = pick([['orders', 'net_revenue_minor']]);
    const countries = pick([['page_views', 'views'], ['funnel', 'views']], ['country']);
    const sales = pick([['daily_sales', 'revenue_minor']], ['country', 'age_group']);
    // Whole days around the range: the days it touches.
    const days = { from: Math.floor(range.from / DAY) * DAY, to: Math.ceil(range.to / DAY) * DAY };
    const minute = (m) => m && { ...m, url: queryUrl(m.metric, range, { granularity: 'minute', filters: f }) };
    const out = {
      views: minute(views),
      funnel: minute(funnel),
      revenue: minute(revenue),
      sessions: minute(sessions),
      orders: minute(orders),
      users: users && { ...users, url: queryUrl(users.metric, range, { granularity: 'hour', filters: f }) },
      countries: countries && { ...countries, url: queryUrl(countries.metric, range, { granularity: 'minute', groupBy: ['country'], filters: f }) },
      sales: sales && { ...sales, url: queryUrl(sales.metric, days, { granularity: 'day', groupBy: ['country', 'age_group'], filters: f }) },
      options: [],
    };
    // Selector options, unfiltered: each filter dimension from the metric that has the most
    // of them (funnel has all three: one query).
    const byMetric = new Map();
    const covers = (x) => FILTER_DIMS.filter((d) => (x.dimensions || []).includes(d)).length;
    const ranked = [...(state.catalog?.metrics || [])].sort((a, b) => covers(b) - covers(a));
    for (const d of FILTER_DIMS) {
      const m = ranked.find((x) => (x.dimensions || []).includes(d));
      if (m) byMetric.set(m.name, [...(byMetric.get(m.name) || []), d]);
    }
    for (const [metric, dims] of byMetric) {
      out.options.push({ dims, url: queryUrl(metric, range, { granularity: 'hour', groupBy: dims }) });
    }
    return out;
  }

  // ---- aggregation ----------------------------------------------------------------------

  const rowsOf = (resp) => (resp && Array.isArray(resp.rows) ? resp.rows : []);

  // Per window_start: the field summed over groups, the source (mixed → batch+speed), final.
  function byWindow(resp, field) {
    const m = new Map();
    for (const r of rowsOf(resp)) {
      const v = r.values?.[field];
      if (typeof v !== 'number') continue;
      const e = m.get(r.window_start) || { value: 0, sources: new Set(), final: true };
      e.value += v;
      e.sources.add(r.source);
      e.final = e.final && r.final !== false;
      m.set(r.window_start, e);
    }
    for (const e of m.values()) e.source = e.sources.size === 1 ? [...e.sources][0] : 'batch+speed';
    return m;
  }

  const sum = (resp, field) => rowsOf(resp).reduce((a, r) => a + (typeof r.values?.[field] === 'number' ? r.values[field] : 0), 0);

  // ---- rendering: KPI tiles ---------------------------------------------------------------

  function setKpi(name, { value, text, sub, query, field, agg, title }) {
    const el = $(`[data-kpi="${name}"]`);
    el.dataset.value = value ?? '';
    el.dataset.query = query || '';
    el.dataset.field = field || '';
    el.dataset.agg = agg || '';
    $('.value', el).textContent = text ?? '—';
    $('.value', el).classList.toggle('long', String(text ?? '').length > 9);
    $('.sub', el).textContent = sub || '';
    el.title = title || '';
  }

  function renderKpis(p, R) {
    const na = (why) => ({ value: null, text: 'n/a', sub: why });
    const filterNote = p.failed.size ? 'unavailable (see the error above)' : 'not available with these filters';
    if (p.views) {
      const v = sum(R[p.views.url], p.views.field);
      setKpi('views', { value: v, text: nf.format(v), sub: `${p.views.metric}, ${state.minutes} min`, query: p.views.url, field: p.views.field, agg: 'sum' });
    } else setKpi('views', na(filterNote));
    if (p.users) {
      const rows = rowsOf(R[p.users.url]);
      const last = rows.reduce((a, r) => (!a || r.window_start > a.window_start ? r : a), null);
      const v = last?.values?.[p.users.field];
      if (typeof v === 'number') {
        const span = `${hhmm(Date.parse(last.window_start))}–${hhmm(Date.parse(last.window_end))} UTC`;
        setKpi('distinct_users', { value: v, text: nf.format(v), sub: `in the hour ${span}`, query: p.users.url, field: p.users.field, agg: 'last',
          title: 'Distinct users cannot be added across windows: this is the newest hour window' });
      } else setKpi('distinct_users', { ...na('no data in range'), query: p.users.url });
    } else setKpi('distinct_users', na(filterNote));
    const fr = p.funnel && R[p.funnel.url];
    if (fr) {
      const [views, carts, purchases] = ['views', 'carts', 'purchases'].map((k) => sum(fr, k));
      const common = { query: p.funnel.url };
      setKpi('carts', { ...common, value: carts, text: nf.format(carts), sub: 'add-to-cart events', field: 'carts', agg: 'sum' });
      setKpi('purchases', { ...common, value: purchases, text: nf.format(purchases), sub: 'purchase events', field: 'purchases', agg: 'sum' });
      const rate = (n, d) => (d > 0 ? n / d : null);
      const r1 = rate(carts, views);
      const r2 = rate(purchases, carts);
      setKpi('view_to_cart_rate', { ...common, value: r1, text: r1 === null ? '—' : pct.format(r1), sub: 'carts ÷ views (events)', field: 'carts/views', agg: 'ratio' });
      setKpi('cart_to_purchase_rate', { ...common, value: r2, text: r2 === null ? '—' : pct.format(r2), sub: 'purchases ÷ carts (events)', field: 'purchases/carts', agg: 'ratio' });
    } else for (const k of ['carts', 'purchases', 'view_to_cart_rate', 'cart_to_purchase_rate']) setKpi(k, na(filterNote));
    const rr = p.revenue && R[p.revenue.url];
    if (rr) {
      const cur = rr.currency || 'USD';
      const minor = sum(rr, 'revenue_minor');
      const orders = sum(rr, 'orders');
      setKpi('revenue', { value: minor, text: money(minor, cur), sub: `${nf.format(orders)} orders, in ${cur}`, query: p.revenue.url, field: 'revenue_minor', agg: 'sum' });
      $('[data-kpi="revenue"]').dataset.currency = cur;
    } else setKpi('revenue', na(p.failed.has('revenue') ? filterNote : 'revenue has no device dimension'));
    // Sessions that started in the range (a session ends after 30 minutes without events).
    const sr = p.sessions && R[p.sessions.url];
    if (sr) {
      const [n, bounces, duration] = ['sessions', 'bounces', 'total_duration_ms'].map((k) => sum(sr, k));
      const common = { query: p.sessions.url };
      setKpi('sessions', { ...common, value: n, text: nf.format(n), sub: 'started in the range', field: 'sessions', agg: 'sum',
        title: 'A session ends after 30 minutes without events (or at midnight UTC); open sessions still grow' });
      const bounce = n > 0 ? bounces / n : null;
      setKpi('bounce_rate', { ...common, value: bounce, text: bounce === null ? '—' : pct.format(bounce), sub: 'one-event sessions', field: 'bounces/sessions', agg: 'ratio' });
      const avg = n > 0 ? duration / n : null;
      const mmss = (ms) => `${Math.floor(ms / 60000)}:${String(Math.round((ms % 60000) / 1000)).padStart(2, '0')}`;
      setKpi('session_duration', { ...common, value: avg, text: avg === null ? '—' : mmss(avg), sub: 'average, first to last event', field: 'total_duration_ms/sessions', agg: 'ratio' });
    } else for (const k of ['sessions', 'bounce_rate', 'session_duration']) setKpi(k, na(p.failed.has('sessions') ? filterNote : 'sessions have no category dimension'));
    // Orders from the orders table's change stream (CDC): placed minus reversed revenue.
    const or = p.orders && R[p.orders.url];
    if (or) {
      const cur = or.currency || 'USD';
      const [net, placed, cancelled] = ['net_revenue_minor', 'orders', 'cancellations'].map((k) => sum(or, k));
      const common = { query: p.orders.url };
      setKpi('net_order_revenue', { ...common, value: net, text: money(net, cur), sub: `${nf.format(placed)} orders placed (orders table), in ${cur}`, field: 'net_revenue_minor', agg: 'sum',
        title: 'Gross revenue of the orders placed minus the revenue of cancelled, refunded or deleted orders' });
      const rate = placed > 0 ? cancelled / placed : null;
      setKpi('cancellation_rate', { ...common, value: rate, text: rate === null ? '—' : pct.format(rate), sub: 'cancellations ÷ orders placed', field: 'cancellations/orders', agg: 'ratio' });
    } else for (const k of ['net_order_revenue', 'cancellation_rate']) setKpi(k, na(p.failed.has('orders') ? filterNote : 'orders have no device dimension'));
  }

  // ---- rendering: charts ------------------------------------------------------------------

  function svg(tag, attrs = {}, parent = null) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * p).find((c) => c >= v);
  }

  // Bars per minute window over [from, to); one stacked panel per series, each own scale.
  function drawChart(fig, resp, query, series, range) {
    const W = Math.max(360, Math.round($('.plot', fig).clientWidth)) || 960; // 1 unit = 1 px
    const L = 56;
    const R = 22;
    const T = 22;
    const panelH = series.length === 1 ? 190 : 70;
    const gap = 14;
    const LH = series.length > 1 ? 14 : 0; // room for a panel's label above its bars
    const slot = LH + panelH + gap;
    const H = T + series.length * slot + 16;
    const plotW = W - L - R;
    const span = range.to - range.from;
    const x = (ms) => L + ((ms - range.from) / span) * plotW;
    const barW = Math.max(1, (plotW * MINUTE) / span - (span <= 120 * MINUTE ? 2 : 0));
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'plot-svg' });
    const summary = [];

    series.forEach((s, i) => {
      const top = T + i * slot + LH;
      const base = top + panelH;
      const data = byWindow(resp, s.field);
      let max = 0;
      let total = 0;
      for (const e of data.values()) { max = Math.max(max, e.value); total += e.value; }
      const ymax = niceMax(max);
      const y = (v) => base - (v / ymax) * panelH;
      const g = svg('g', { class: 'panel', 'data-series': s.field }, root);
      for (const t of [0, 0.5, 1]) {
        svg('line', { x1: L, x2: W - R, y1: y(ymax * t), y2: y(ymax * t), class: t === 0 ? 'axis' : 'grid' }, g);
        svg('text', { x: L - 6, y: y(ymax * t) + 4, class: 'tick', 'text-anchor': 'end' }, g).textContent = s.short(ymax * t);
      }
      if (LH) svg('text', { x: L, y: top - 5, class: 'panel-label' }, g).textContent = s.label;
      for (const [ws, e] of data) {
        const ms = Date.parse(ws);
        if (!(ms >= range.from && ms < range.to)) continue;
        const h = Math.max(0, base - y(e.value));
        const cls = `bar src-${String(e.source).replace(/\W+/g, '-')}${e.final ? '' : ' provisional'}`;
        const rect = svg('rect', {
          x: x(ms).toFixed(2), y: (base - h).toFixed(2), width: barW.toFixed(2), height: h.toFixed(2), class: cls,
          'data-series': s.field, 'data-window-start': ws, 'data-value': e.value, 'data-source': e.source, 'data-final': e.final,
        }, g);
        svg('title', {}, rect).textContent = `${hhmm(ms)} UTC · ${s.long(e.value)} ${s.label.toLowerCase()} · ${e.source}${e.final ? '' : ', not final'}`;
      }
      summary.push(`${s.label}: ${data.size} windows, total ${s.long(total)}, peak ${s.long(max)}`);
    });

    // Time axis: ticks every 1/2/5/10/15/30/60/120… minutes, at most 8 labels.
    const bottom = T + series.length * slot - gap;
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440].map((m) => m * MINUTE).find((s) => span / s <= 8) || 1440 * MINUTE;
    for (let t = Math.ceil(range.from / step) * step; t <= range.to; t += step) {
      svg('text', { x: x(t), y: bottom + 14, class: 'tick', 'text-anchor': 'middle' }, root).textContent = hhmm(t);
    }

    const tb = resp.time_boundary ? Date.parse(resp.time_boundary) : NaN;
    if (tb > range.from && tb < range.to) {
      const g = svg('g', { class: 'boundary', 'data-boundary': resp.time_boundary }, root);
      svg('line', { x1: x(tb), x2: x(tb), y1: T - 6, y2: bottom }, g);
      svg('text', { x: x(tb) - 5, y: T - 10, 'text-anchor': 'end' }, g).textContent = '◀ batch';
      svg('text', { x: x(tb) + 5, y: T - 10, 'text-anchor': 'start' }, g).textContent = 'real-time ▶';
      svg('title', {}, g).textContent = `Time boundary ${resp.time_boundary}: earlier windows come from batch`;
    }

    fig.dataset.query = query;
    fig.dataset.field = series.map((s) => s.field).join(',');
    root.setAttribute('aria-label', `${$('figcaption', fig).textContent}. ${summary.join('; ')}.`);
    $('.plot', fig).replaceChildren(root);
    const note = [];
    if (resp.truncated) note.push('The API truncated this result.');
    if (!resp.time_boundary) note.push('No batch data yet: every window is real-time.');
    else if (!(tb > range.from)) note.push(`Every window is real-time (boundary ${resp.time_boundary}).`);
    else if (!(tb < range.to)) note.push(`Every window comes from batch (boundary ${resp.time_boundary}).`);
    $('.note', fig).textContent = note.join(' ');
  }

  function clearChart(fig, why) {
    fig.dataset.query = '';
    $('.plot', fig).replaceChildren();
    $('.note', fig).textContent = why;
  }

  function renderCharts(p, R, range) {
    const count = (label) => ({ label, short: (v) => compact.format(v), long: (v) => nf.format(v) });
    const failed = (k, why) => (p.failed.has(k) ? 'Unavailable: the API answered with an error (see above).' : why);
    const vFig = $('#chart-views');
    if (p.views) {
      drawChart(vFig, R[p.views.url], p.views.url, [{ field: p.views.field, ...count('Views') }], range);
      if (p.views.metric !== 'page_views') $('.note', vFig).textContent = `${$('.note', vFig).textContent} Views within the category come from the ${p.views.metric} metric.`.trim();
    } else clearChart(vFig, failed('views', 'No metric can show views with these filters.'));
    const fFig = $('#chart-funnel');
    if (p.funnel) {
      const fields = [['views', 'Views'], ['carts', 'Add-to-carts'], ['purchases', 'Purchases']].filter(([f]) => hasValue(info(p.funnel.metric), f));
      drawChart(fFig, R[p.funnel.url], p.funnel.url, fields.map(([f, l]) => ({ field: f, ...count(l) })), range);
    } else clearChart(fFig, failed('funnel', 'No funnel metric for these filters.'));
    const rFig = $('#chart-revenue');
    if (p.revenue) {
      const resp = R[p.revenue.url];
      const cur = resp.currency || 'USD';
      drawChart(rFig, resp, p.revenue.url, [{ field: 'revenue_minor', label: 'Revenue', short: (v) => money(v, cur, true), long: (v) => money(v, cur) }], range);
    } else clearChart(rFig, failed('revenue', 'Revenue has no device dimension: clear the device filter to see it.'));
  }

  // ---- rendering: country table, status, selectors ------------------------------------------

  function renderCountries(p, R) {
    const table = $('#countries');
    const tbody = table.tBodies[0];
    const note = $('#countries-note');
    if (!p.countries) {
      table.dataset.query = '';
      tbody.replaceChildren();
      note.textContent = p.failed.has('countries') ? 'Unavailable: the API answered with an error (see above).' : 'No metric can break views down by country with these filters.';
      return;
    }
    const resp = R[p.countries.url];
    const totals = new Map();
    for (const r of rowsOf(resp)) {
      const v = r.values?.[p.countries.field];
      const c = r.dimensions?.country;
      if (typeof v === 'number' && c !== undefined) totals.set(c, (totals.get(c) || 0) + v);
    }
    const all = [...totals.values()].reduce((a, b) => a + b, 0);
    const rows = [...totals].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
    tbody.replaceChildren(...rows.map(([country, v]) => {
      const tr = document.createElement('tr');
      tr.dataset.country = country;
      tr.dataset.value = v;
      const share = all > 0 ? v / all : 0;
      tr.innerHTML = '<th scope="row"></th><td class="num"></td><td class="share"><span class="sharebar"></span><span class="sharetext"></span></td>';
      tr.cells[0].textContent = country;
      tr.cells[1].textContent = nf.format(v);
      $('.sharebar', tr).style.inlineSize = `${(share * 80).toFixed(1)}%`;
      $('.sharetext', tr).textContent = pct.format(share);
      return tr;
    }));
    if (!rows.length) tbody.innerHTML = '<tr><td colspan="3" class="muted">No views in this range.</td></tr>';
    table.dataset.query = p.countries.url;
    table.dataset.field = p.countries.field;
    note.textContent = resp.truncated ? 'The API truncated this result: the table may be incomplete.' : '';
  }

  // daily_sales of the days the range touches: the 20 largest (day, country, age group)
  // rows by revenue, newest day first.
  function renderSales(p, R) {
    const table = $('#daily-sales');
    const tbody = table.tBodies[0];
    const note = $('#daily-sales-note');
    if (!p.sales) {
      table.dataset.query = '';
      tbody.innerHTML = '<tr><td colspan="7" class="muted"></td></tr>';
      tbody.rows[0].cells[0].textContent = p.failed.has('sales') ? 'Unavailable: the API answered with an error (see above).' : 'Sales have no device dimension: clear the device filter to see them.';
      return;
    }
    const resp = R[p.sales.url];
    const cur = resp.currency || 'USD';
    const rows = rowsOf(resp)
      .filter((r) => typeof r.values?.revenue_minor === 'number')
      .sort((a, b) => Date.parse(b.window_start) - Date.parse(a.window_start) || b.values.revenue_minor - a.values.revenue_minor)
      .slice(0, 20);
    tbody.replaceChildren(...rows.map((r) => {
      const tr = document.createElement('tr');
      const v = r.values;
      Object.assign(tr.dataset, {
        salesDay: r.window_start, salesCountry: r.dimensions?.country ?? '', salesAgeGroup: r.dimensions?.age_group ?? '',
        salesOrders: v.orders, salesRevenue: v.revenue_minor, salesBuyers: v.distinct_buyers,
      });
      const cells = [String(r.window_start).slice(0, 10), r.dimensions?.country, r.dimensions?.age_group,
        nf.format(v.orders), money(v.revenue_minor, cur), money(v.average_order_value_minor, cur), nf.format(v.distinct_buyers)];
      for (const [i, text] of cells.entries()) {
        const td = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) td.scope = 'row';
        if (i >= 3) td.className = 'num';
        td.textContent = text ?? '';
        tr.append(td);
      }
      return tr;
    }));
    if (!rows.length) tbody.innerHTML = '<tr><td colspan="7" class="muted">No sales on these days.</td></tr>';
    table.dataset.query = p.sales.url;
    note.textContent = (resp.truncated ? 'The API truncated this result: the table may be incomplete. ' : '')
      + `Live orders of the orders table (CDC) joined, as of each order's time, with the users table (country, age group) and the products table (category); in ${cur}.`;
  }

  // ---- data quality -------------------------------------------------------------------

  const QUALITY_HOURS = 12;
  const VERDICT_TEXT = { pass: 'pass', warn: 'warn', fail: 'FAIL' };

  // A rule's figure as people read it: seconds for delays and freshness, else a percentage.
  function qualityFigure(check, v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return 'n/a';
    if (check === 'delay_p99' || check === 'freshness') return `${nf.format(Math.round(v / 1000))} s`;
    return pct.format(v);
  }

  // The last QUALITY_HOURS hours of the report: a row per producer, a cell per hour coloured
  // by its verdict; selecting a cell shows its outcomes and rejects by reason.
  function renderQuality(resp) {
    const table = $('#quality');
    const detail = $('#quality-detail');
    if (!resp) {
      table.tBodies[0].innerHTML = '<tr><td class="muted">Unavailable: the API answered with an error (see above).</td></tr>';
      return;
    }
    const hours = [...new Set(resp.hours.map((h) => h.hour))].sort();
    const producers = [...new Set(resp.hours.map((h) => h.producer))].sort();
    const at = new Map(resp.hours.map((h) => [`${h.producer} ${h.hour}`, h]));
    const head = table.tHead.rows[0];
    head.replaceChildren(head.cells[0], ...hours.map((h) => {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = `${h.slice(11, 16)}`;
      th.title = h;
      return th;
    }));
    table.tBodies[0].replaceChildren(...producers.map((producer) => {
      const tr = document.createElement('tr');
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = producer;
      tr.append(name);
      for (const hour of hours) {
        const td = document.createElement('td');
        const h = at.get(`${producer} ${hour}`);
        if (h) {
          td.className = `q ${h.verdict}`;
          td.textContent = VERDICT_TEXT[h.verdict] || h.verdict;
          td.tabIndex = 0;
          td.setAttribute('role', 'button');
          td.setAttribute('aria-pressed', String(state.quality === `${producer} ${hour}`));
          Object.assign(td.dataset, { producer, hour, verdict: h.verdict });
          const failing = h.outcomes.filter((o) => o.verdict !== 'pass').map((o) => o.check);
          td.title = failing.length ? `${failing.join(', ')} (${h.received} records)` : `${h.received} records`;
        }
        tr.append(td);
      }
      return tr;
    }));
    if (!producers.length) table.tBodies[0].innerHTML = '<tr><td class="muted">No records in these hours.</td></tr>';
    table.dataset.query = resp.__url;
    const selected = at.get(state.quality);
    detail.hidden = !selected;
    if (!selected) return;
    const title = document.createElement('p');
    title.textContent = `${selected.producer}, ${selected.hour.replace('T', ' ').slice(0, 16)} UTC: ${selected.received} records received, ${VERDICT_TEXT[selected.verdict]}`;
    const rules = document.createElement('ul');
    rules.replaceChildren(...selected.outcomes.map((o) => {
      const li = document.createElement('li');
      li.dataset.check = o.check;
      li.dataset.verdict = o.verdict;
      li.textContent = `${o.check}: ${VERDICT_TEXT[o.verdict]}, measured ${qualityFigure(o.check, o.measured)} (threshold ${qualityFigure(o.check, o.threshold)})`;
      return li;
    }));
    const reasons = Object.entries(selected.rejected_by_reason || {});
    const rejects = document.createElement('p');
    rejects.textContent = reasons.length
      ? `Rejected by reason: ${reasons.map(([r, n]) => `${r} ${nf.format(n)}`).join(', ')} (the records are in the dead-letter topic and the lake's dead-letter table)`
      : 'No rejected records in this hour\'s figures.';
    const arrival = document.createElement('p');
    arrival.className = 'arrival';
    const a = selected.arrival;
    arrival.textContent = a
      ? `Arrival (speed layer): ${nf.format(a.events)} events, ${a.out_of_order_share == null ? 'n/a' : pct.format(a.out_of_order_share)} out of order, ${a.late_share == null ? 'n/a' : pct.format(a.late_share)} late (beyond the allowed lateness)`
      : 'Arrival: the speed layer no longer holds this hour.';
    const parts = [title, rules, rejects, arrival];
    const samples = selected.dead_letter_samples || [];
    if (samples.length) {
      const caption = document.createElement('p');
      caption.textContent = 'Sample dead letters, as the speed layer kept them (the first of each reason, by record time):';
      const list = document.createElement('ul');
      list.className = 'dead-letters';
      list.replaceChildren(...samples.map((d) => {
        const li = document.createElement('li');
        li.dataset.reason = d.reason;
        const where = document.createElement('span');
        where.textContent = `${d.reason} · partition ${d.partition}, offset ${d.offset}: ${d.message}`;
        const record = document.createElement('code');
        record.textContent = d.record + (d.record_bytes > d.record.length ? ' …' : '');
        li.append(where, document.createElement('br'), record);
        return li;
      }));
      parts.push(caption, list);
    }
    detail.replaceChildren(...parts);
  }

  function onQualityClick(ev) {
    const td = ev.target.closest('td.q');
    if (!td) return;
    const key = `${td.dataset.producer} ${td.dataset.hour}`;
    state.quality = state.quality === key ? null : key;
    renderQuality(state.lastQuality);
  }

  function renderStatus(p, R, range) {
    const resp = (p.views && R[p.views.url]) || (p.funnel && R[p.funnel.url]) || {};
    const el = $('#freshness');
    const f = resp.freshness_ms;
    el.className = 'pill';
    if (typeof f === 'number') {
      el.classList.add(f > 60_000 ? 'bad' : f > 5_000 ? 'warn' : 'ok');
      el.textContent = `Real-time lag ${f < 10_000 ? (f / 1000).toFixed(1) : nf.format(Math.round(f / 1000))} s`;
      el.dataset.freshnessMs = f;
    } else {
      el.classList.add('unknown');
      el.textContent = 'Real-time lag: no real-time data';
      el.dataset.freshnessMs = '';
    }
    const wm = resp.watermark ? `, watermark ${hhmmss(Date.parse(resp.watermark))} UTC` : '';
    $('#updated').textContent = `Updated ${hhmmss(Date.now())} UTC${wm}`;
    const mode = state.endMs === null ? 'rolling' : 'pinned end';
    const filters = Object.entries(state.filters).map(([k, v]) => `${k} = ${v}`).join(', ');
    $('#range').textContent = `${iso(range.from).replace('T', ' ').slice(0, 16)} – ${hhmm(range.to)} UTC · last ${state.minutes} min (${mode})${filters ? ` · ${filters}` : ''}`;
  }

  function renderOptions(p, R) {
    for (const o of p.options) {
      for (const r of rowsOf(R[o.url])) for (const d of o.dims) if (r.dimensions?.[d] !== undefined) state.options[d].add(r.dimensions[d]);
    }
    for (const d of FILTER_DIMS) {
      const sel = $(`#filters select[name="${d}"]`);
      const values = new Set(state.options[d]);
      if (state.filters[d]) values.add(state.filters[d]);
      const first = sel.options[0];
      const opts = [...values].sort().map((v) => new Option(v, v));
      sel.replaceChildren(first, ...opts);
      sel.value = state.filters[d] || '';
      sel.disabled = values.size === 0;
    }
  }

  // ---- the refresh loop -----------------------------------------------------------------------

  function showError(e) {
    const banner = $('#banner');
    if (e instanceof ApiError) {
      banner.textContent = `API error${e.status ? ` ${e.status}` : ''} (${e.code}): ${e.message}${e.url ? ` — ${e.url}` : ''}`;
    } else {
      banner.textContent = `Dashboard error: ${e && e.message ? e.message : e}`;
      console.error(e); // a bug in this page, not an API answer: let tests see it
    }
    banner.hidden = false;
  }

  async function refreshOnce(seq) {
    // Whole minutes, as the API aligns them (from down, to up): bars and range then agree.
    const to = Math.ceil((state.endMs ?? Date.now()) / MINUTE) * MINUTE;
    const range = { from: to - state.minutes * MINUTE, to };
    const catalog = await fetchJson('/v1/metrics');
    if (!Array.isArray(catalog.metrics)) throw new ApiError('bad_response', 'the metric catalogue has no "metrics" list', 200, '/v1/metrics');
    state.catalog = catalog;
    const p = plan(range);
    const hourEnd = Math.ceil(to / (60 * MINUTE)) * 60 * MINUTE;
    const qualityUrl = `/v1/quality?from=${enc(iso(hourEnd - QUALITY_HOURS * 60 * MINUTE))}&to=${enc(iso(hourEnd))}`;
    const urls = [...new Set([p.views, p.users, p.funnel, p.revenue, p.sessions, p.orders, p.countries, p.sales, ...p.options].filter(Boolean).map((q) => q.url).concat(qualityUrl))];
    const results = await Promise.allSettled(urls.map(fetchJson));
    if (seq !== state.seq) return; // a newer refresh (filter change) owns the page now
    const R = { '/v1/metrics': catalog };
    const errors = [];
    urls.forEach((u, i) => { if (results[i].status === 'fulfilled') R[u] = results[i].value; else errors.push(results[i].reason); });
    // Whatever answered is still drawn; a part whose query failed says so.
    p.failed = new Set();
    for (const k of ['views', 'users', 'funnel', 'revenue', 'sessions', 'orders', 'countries', 'sales']) if (p[k] && !(p[k].url in R)) { p[k] = null; p.failed.add(k); }
    p.options = p.options.filter((o) => o.url in R);
    renderKpis(p, R);
    renderCharts(p, R, range);
    renderCountries(p, R);
    renderSales(p, R);
    renderStatus(p, R, range);
    renderOptions(p, R);
    state.lastQuality = R[qualityUrl] ? { ...R[qualityUrl], __url: qualityUrl } : null;
    renderQuality(state.lastQuality);
    if (errors.length) { // the banner shows it; not a successful refresh
      if (errors.length > 1 && errors[0] instanceof Error) errors[0].message += ` (and ${errors.length - 1} more failed queries)`;
      throw errors[0];
    }
    $('#banner').hidden = true;
    state.refreshes += 1;
    window.__dashboard = {
      lastResponses: R, refreshes: state.refreshes, range: { from: iso(range.from), to: iso(range.to) }, filters: { ...state.filters },
    };
    document.body.dataset.loaded = '1';
  }

  async function refresh() {
    clearTimeout(state.timer);
    const seq = ++state.seq;
    const main = $('#main');
    main.setAttribute('aria-busy', 'true');
    try {
      await refreshOnce(seq);
    } catch (e) {
      if (seq === state.seq) showError(e);
    } finally {
      if (seq === state.seq) {
        main.setAttribute('aria-busy', 'false');
        state.timer = setTimeout(refresh, state.refreshMs);
      }
    }
  }

  function start() {
    try {
      readConfig();
      const form = $('#filters');
      form.addEventListener('change', (ev) => {
        const sel = ev.target;
        if (!FILTER_DIMS.includes(sel.name)) return;
        if (sel.value) state.filters[sel.name] = sel.value; else delete state.filters[sel.name];
        writeFiltersToUrl();
        refresh();
      });
      form.addEventListener('submit', (ev) => ev.preventDefault());
      const quality = $('#quality');
      quality.addEventListener('click', onQualityClick);
      quality.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onQualityClick(ev); } });
      $('#clear-filters').addEventListener('click', () => {
        state.filters = {};
        writeFiltersToUrl();
        refresh();
      });
      refresh();
    } catch (e) {
      showError(e);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
