#!/usr/bin/env node
// Headless-Chromium check of the serving layer's live dashboard against the API it reads.
//
//   node tests/browser/dashboard.mjs --url 'http://127.0.0.1:PORT/?end=...&minutes=60' \
//        --screenshot PATH [--token T]
//
// Opens the page in Debian's Chromium (CHROMIUM overrides /usr/bin/chromium), waits for
// body[data-loaded="1"], then fetches from Node, independently, every API query the page
// made (the keys of window.__dashboard.lastResponses) and checks that the bars, KPI
// tiles, country table and time-boundary markers show exactly what the API answers, and
// that the page logged no console errors. Saves a full-page screenshot and prints one line
// of JSON. Exit 0: all equal; 1: a mismatch or failure (stderr says which); 2: usage.
// Depends on nothing but playwright-core (which never downloads a browser here).
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const LOAD_TIMEOUT_MS = 30_000;
const ATTEMPTS = 3; // live data may change between the page's fetch and ours: retry on the next refresh
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function usage(message) {
  console.error(`dashboard.mjs: ${message}\nusage: node tests/browser/dashboard.mjs --url URL --screenshot PATH [--token T]`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: { url: { type: 'string' }, screenshot: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (e) {
  usage(e.message);
}
if (args.help) usage('help');
if (!args.url) usage('--url is required');
if (!args.screenshot) usage('--screenshot is required');
let pageUrl;
try {
  pageUrl = new URL(args.url);
} catch {
  usage(`--url ${args.url} is not a URL`);
}
if (!/^https?:$/.test(pageUrl.protocol)) usage(`--url must be http(s), got ${pageUrl.protocol}`);
if (args.token && !pageUrl.searchParams.has('token')) pageUrl.searchParams.set('token', args.token);
const token = args.token ?? pageUrl.searchParams.get('token');

// ---- helpers ----------------------------------------------------------------------------

const rowsOf = (resp) => (resp && Array.isArray(resp.rows) ? resp.rows : []);

// The field per window_start, summed over groups; mixed sources count as batch+speed (the
// page's rule for grouped answers; ungrouped answers have one row per window).
function byWindow(resp, field) {
  const m = new Map();
  for (const r of rowsOf(resp)) {
    const v = r.values?.[field];
    if (typeof v !== 'number') continue;
    const e = m.get(r.window_start) || { value: 0, sources: new Set() };
    e.value += v;
    e.sources.add(r.source);
    m.set(r.window_start, e);
  }
  for (const e of m.values()) e.source = e.sources.size === 1 ? [...e.sources][0] : 'batch+speed';
  return m;
}

const sum = (resp, field) => rowsOf(resp).reduce((a, r) => a + (typeof r.values?.[field] === 'number' ? r.values[field] : 0), 0);
const close = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

async function fetchApi(key) {
  const url = new URL(key, pageUrl); // keys are paths: the page URL's own query (token) is not inherited
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(url, { headers });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${key} answered ${res.status}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${key} answered non-JSON: ${text.slice(0, 300)}`);
  }
}

// Everything the checks need from the page, read in one synchronous evaluation so that a
// refresh cannot re-render between two reads.
function snapshot() {
  const d = window.__dashboard || {};
  const data = (el) => ({ query: el?.dataset.query || '', field: el?.dataset.field || '' });
  const banner = document.getElementById('banner');
  return {
    href: location.href,
    keys: Object.keys(d.lastResponses || {}),
    refreshes: d.refreshes,
    range: d.range,
    banner: banner && !banner.hidden ? banner.textContent : null,
    charts: [...document.querySelectorAll('figure[data-chart]')].map((f) => ({
      chart: f.dataset.chart,
      ...data(f),
      bars: [...f.querySelectorAll('[data-window-start]')].map((b) => ({
        series: b.dataset.series, ws: b.dataset.windowStart, value: b.dataset.value, source: b.dataset.source,
      })),
      boundaries: [...f.querySelectorAll('[data-boundary]')].map((b) => b.dataset.boundary),
    })),
    kpis: [...document.querySelectorAll('[data-kpi]')].map((k) => ({ kpi: k.dataset.kpi, value: k.dataset.value ?? '', agg: k.dataset.agg || '', ...data(k) })),
    countries: (() => {
      const t = document.getElementById('countries');
      return { ...data(t), rows: [...document.querySelectorAll('tr[data-country]')].map((r) => ({ country: r.dataset.country, value: r.dataset.value })) };
    })(),
    sales: (() => {
      const t = document.getElementById('daily-sales');
      return {
        ...data(t),
        rows: [...t.querySelectorAll('tr[data-sales-country]')].map((r) => ({
          day: r.dataset.salesDay, country: r.dataset.salesCountry, age: r.dataset.salesAgeGroup,
          orders: Number(r.dataset.salesOrders), revenue: Number(r.dataset.salesRevenue), buyers: Number(r.dataset.salesBuyers),
        })),
      };
    })(),
    quality: (() => {
      const t = document.getElementById('quality');
      return {
        ...data(t),
        cells: [...t.querySelectorAll('td[data-verdict]')].map((c) => ({ producer: c.dataset.producer, hour: c.dataset.hour, verdict: c.dataset.verdict })),
      };
    })(),
    freshness: document.getElementById('freshness')?.dataset.freshnessMs ?? null,
  };
}

// Compares one snapshot with the API's own answers; returns [problems, summary].
async function verify(snap) {
  const problems = [];
  const api = {};
  for (const key of snap.keys) api[key] = await fetchApi(key);
  const known = (what, q) => {
    if (!q) return false;
    if (!(q in api)) problems.push(`${what} shows data of ${q}, which is not among the page's responses`);
    return q in api;
  };
  if (snap.banner) problems.push(`the page shows an error banner: ${snap.banner}`);
  const from = Date.parse(snap.range?.from);
  const to = Date.parse(snap.range?.to);

  // Charts: every bar equals the API's number for its window, with the API's source.
  for (const c of snap.charts) {
    if (!known(`chart ${c.chart}`, c.query)) continue;
    const resp = api[c.query];
    for (const field of c.field.split(',').filter(Boolean)) {
      const expected = byWindow(resp, field);
      const bars = c.bars.filter((b) => b.series === field);
      const seen = new Set();
      for (const b of bars) {
        const e = expected.get(b.ws);
        seen.add(b.ws);
        if (!e) problems.push(`chart ${c.chart}/${field}: a bar at ${b.ws} (${b.value}) has no API row`);
        else if (Number(b.value) !== e.value) problems.push(`chart ${c.chart}/${field} at ${b.ws}: bar ${b.value}, API ${e.value}`);
        else if (b.source !== e.source) problems.push(`chart ${c.chart}/${field} at ${b.ws}: bar source ${b.source}, API ${e.source}`);
      }
      if (seen.size !== bars.length) problems.push(`chart ${c.chart}/${field}: ${bars.length - seen.size} duplicate bars`);
      for (const ws of expected.keys()) if (!seen.has(ws)) problems.push(`chart ${c.chart}/${field}: API window ${ws} has no bar`);
    }
    const tb = resp.time_boundary ? Date.parse(resp.time_boundary) : NaN;
    const within = tb > from && tb < to;
    if (within && !c.boundaries.includes(resp.time_boundary)) problems.push(`chart ${c.chart}: no boundary marker at ${resp.time_boundary}, inside ${snap.range.from}..${snap.range.to}`);
    if (!within && c.boundaries.length) problems.push(`chart ${c.chart}: boundary marker ${c.boundaries} although time_boundary ${resp.time_boundary} is outside the range`);
  }
  const views = snap.charts.find((c) => c.chart === 'views');
  if (!views || !views.query) problems.push('the views chart shows no query');

  // KPI tiles: sums over windows, the newest window for distinct counts, ratios of sums.
  for (const k of snap.kpis) {
    if (!known(`KPI ${k.kpi}`, k.query)) continue;
    const resp = api[k.query];
    let expected = null;
    if (k.agg === 'sum') expected = sum(resp, k.field);
    else if (k.agg === 'last') {
      const last = rowsOf(resp).reduce((a, r) => (!a || r.window_start > a.window_start ? r : a), null);
      expected = typeof last?.values?.[k.field] === 'number' ? last.values[k.field] : null;
    } else if (k.agg === 'ratio') {
      const [n, d] = k.field.split('/').map((f) => sum(resp, f));
      expected = d > 0 ? n / d : null;
    } else {
      problems.push(`KPI ${k.kpi}: unknown aggregation "${k.agg}"`);
      continue;
    }
    const shown = k.value === '' ? null : Number(k.value);
    const ok = expected === null ? shown === null : shown !== null && (k.agg === 'ratio' ? close(shown, expected) : shown === expected);
    if (!ok) problems.push(`KPI ${k.kpi}: tile ${k.value === '' ? 'empty' : k.value}, API ${expected} (${k.agg} of ${k.field} in ${k.query})`);
  }
  const kpiViews = snap.kpis.find((k) => k.kpi === 'views');
  const viewBars = views ? views.bars.filter((b) => b.series === views.field.split(',')[0]) : [];
  const barTotal = viewBars.reduce((a, b) => a + Number(b.value), 0);
  if (!kpiViews || kpiViews.value === '') problems.push('the views KPI tile is empty');
  else if (views?.query === kpiViews.query && Number(kpiViews.value) !== barTotal) problems.push(`KPI views ${kpiViews.value} is not the sum of the views bars ${barTotal}`);

  // Country table: the API's grouped numbers summed over windows, one row per country.
  const ct = snap.countries;
  if (known('the country table', ct.query)) {
    const expected = new Map();
    for (const r of rowsOf(api[ct.query])) {
      const c = r.dimensions?.country;
      const v = r.values?.[ct.field];
      if (c !== undefined && typeof v === 'number') expected.set(c, (expected.get(c) || 0) + v);
    }
    const shown = new Map(ct.rows.map((r) => [r.country, Number(r.value)]));
    if (shown.size !== ct.rows.length) problems.push('the country table repeats a country');
    for (const [c, v] of expected) if (shown.get(c) !== v) problems.push(`country ${c}: table ${shown.get(c) ?? 'missing'}, API ${v}`);
    for (const c of shown.keys()) if (!expected.has(c)) problems.push(`country ${c} is in the table but not in the API's answer`);
  } else if (!ct.query) problems.push('the country table shows no query');

  // Sales table: each row is the API's row of its day, country and age group; the 20
  // largest by revenue of the newest day first, so as many rows as the API has, up to 20.
  const st = snap.sales;
  if (known('the sales table', st.query)) {
    const apiRows = rowsOf(api[st.query]);
    const key = (day, country, age) => `${day}|${country}|${age}`;
    const expected = new Map(apiRows.map((r) => [key(r.window_start, r.dimensions?.country, r.dimensions?.age_group), r.values]));
    for (const r of st.rows) {
      const e = expected.get(key(r.day, r.country, r.age));
      if (!e) problems.push(`sales row ${r.day} ${r.country} ${r.age} has no API row`);
      else if (e.orders !== r.orders || e.revenue_minor !== r.revenue || e.distinct_buyers !== r.buyers) problems.push(`sales row ${r.day} ${r.country} ${r.age}: table ${r.orders}/${r.revenue}/${r.buyers}, API ${e.orders}/${e.revenue_minor}/${e.distinct_buyers}`);
    }
    if (st.rows.length !== Math.min(20, apiRows.length)) problems.push(`the sales table shows ${st.rows.length} rows, the API has ${apiRows.length}`);
  } else if (!st.query) problems.push('the sales table shows no query');

  // Quality panel: one cell per producer and hour of the report, with its verdict.
  const qt = snap.quality;
  if (known('the quality panel', qt.query)) {
    const expected = new Map((api[qt.query].hours || []).map((h) => [`${h.producer} ${h.hour}`, h.verdict]));
    const shown = new Map(qt.cells.map((c) => [`${c.producer} ${c.hour}`, c.verdict]));
    for (const [k, v] of expected) if (shown.get(k) !== v) problems.push(`quality ${k}: panel ${shown.get(k) ?? 'missing'}, API ${v}`);
    for (const k of shown.keys()) if (!expected.has(k)) problems.push(`quality ${k} is in the panel but not in the API's report`);
  } else if (!qt.query) problems.push('the quality panel shows no query');

  const viewsResp = views?.query ? api[views.query] : null;
  const summary = {
    bars: viewBars.length,
    total_views: kpiViews && kpiViews.value !== '' ? Number(kpiViews.value) : null,
    countries: ct.rows.length,
    sales: st.rows.length,
    quality_cells: qt.cells.length,
    producers: [...new Set(qt.cells.map((c) => c.producer))].sort(),
    boundary: Boolean(views?.boundaries.length),
    time_boundary: viewsResp?.time_boundary ?? null,
    freshness_ms: viewsResp?.freshness_ms ?? null,
    kpis: Object.fromEntries(snap.kpis.map((k) => [k.kpi, k.value === '' ? null : Number(k.value)])),
    charts: Object.fromEntries(snap.charts.map((c) => [c.chart, c.bars.length])),
    range: snap.range,
    queries: snap.keys.length,
    refreshes: snap.refreshes,
  };
  return [problems, summary];
}

// Selects the quality cell with the most sample dead letters in the API's report and checks
// its detail: one item per sample (reason, partition and offset as served) and the speed
// layer's arrival figures. Returns the problems; counts the samples shown in the summary.
async function clickThrough(page) {
  const problems = [];
  const query = await page.evaluate(() => document.getElementById('quality').dataset.query);
  const report = await fetchApi(query);
  const cells = (report.hours || []).filter((h) => (h.dead_letter_samples || []).length);
  summary.dead_letter_cells = cells.length;
  if (!cells.length) return problems;
  cells.sort((a, b) => b.dead_letter_samples.length - a.dead_letter_samples.length);
  const h = cells[0];
  await page.click(`td.q[data-producer="${h.producer}"][data-hour="${h.hour}"]`);
  await page.waitForSelector('#quality-detail:not([hidden]) ul.dead-letters', { timeout: 10_000 });
  const shown = await page.evaluate(() => ({
    items: [...document.querySelectorAll('#quality-detail ul.dead-letters li')].map((li) => ({ reason: li.dataset.reason, text: li.textContent })),
    arrival: document.querySelector('#quality-detail p.arrival')?.textContent || '',
  }));
  summary.dead_letters_shown = shown.items.length;
  if (shown.items.length !== h.dead_letter_samples.length) problems.push(`the ${h.producer} ${h.hour} detail shows ${shown.items.length} dead letters, the API ${h.dead_letter_samples.length}`);
  h.dead_letter_samples.forEach((d, i) => {
    const item = shown.items[i];
    if (!item || item.reason !== d.reason || !item.text.includes(`partition ${d.partition}, offset ${d.offset}`)) problems.push(`dead letter ${i} of ${h.producer} ${h.hour}: shown ${JSON.stringify(item)}, API ${d.reason} at ${d.partition}/${d.offset}`);
  });
  if (h.arrival && !shown.arrival.startsWith('Arrival (speed layer)')) problems.push(`the arrival figures are not shown: ${shown.arrival}`);
  return problems;
}

// ---- main -------------------------------------------------------------------------------

const consoleErrors = [];
let browser;
let page;
let summary = {};
let failure = null;
const watchdog = setTimeout(() => {
  console.error('dashboard.mjs: FAIL: gave up after 180 s');
  process.exit(1);
}, 180_000);

try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS, // Playwright gives every launch a fresh temporary profile (user-data-dir)
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url || 'page'})`); });
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));

  await page.goto(pageUrl.href, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
  try {
    await page.waitForSelector('body[data-loaded="1"]', { state: 'attached', timeout: LOAD_TIMEOUT_MS });
  } catch {
    const banner = await page.evaluate(() => document.getElementById('banner')?.textContent || '').catch(() => '');
    throw new Error(`the page did not load its data within ${LOAD_TIMEOUT_MS / 1000} s${banner ? `: ${banner}` : ''}`);
  }

  let problems = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const snap = await page.evaluate(snapshot);
    [problems, summary] = await verify(snap);
    if (new URL(snap.href).searchParams.has('token')) problems.push('the token is still in the address bar');
    summary.attempts = attempt;
    if (!problems.length || attempt === ATTEMPTS) break;
    await page.waitForFunction((n) => (window.__dashboard?.refreshes ?? 0) > n, snap.refreshes, { timeout: LOAD_TIMEOUT_MS }).catch(() => {});
  }
  if (!problems.length) problems.push(...await clickThrough(page));
  if (consoleErrors.length) problems.push(...consoleErrors.map((e) => `console error: ${e}`));
  if (problems.length) failure = `${problems.length} problem(s):\n  ${problems.slice(0, 25).join('\n  ')}`;
} catch (e) {
  failure = e.message.split('\n')[0];
}

try {
  if (page) {
    await page.screenshot({ path: args.screenshot, fullPage: true });
    summary.screenshot = args.screenshot;
  }
} catch (e) {
  failure ??= `cannot save the screenshot: ${e.message}`;
}
await browser?.close().catch(() => {});
clearTimeout(watchdog);

summary = { ok: !failure, ...summary, console_errors: consoleErrors.length };
console.log(JSON.stringify(summary));
if (failure) {
  console.error(`dashboard.mjs: FAIL: ${failure}`);
  process.exit(1);
}
