// The overview of a site, the landing page: visitors now, the top stats with their change, the
// main graph, ranked lists (sources, pages, locations, devices, custom events) and the latest
// page views, live. Every value clicks into a filter of the whole page.

import * as api from './api';
import { lineChart } from './chart';
import { type Child, h, replace } from './dom';
import { change, flag, formatTime, formatValue, label } from './format';
import { type Filter, isLive, range, type View } from './state';

export interface Context {
  /** The zone days are cut in. */
  timeZone: string;
  /** Shows another view (and records it in the history). */
  go: (view: View) => void;
  /** Called with every live snapshot (the header shows visitors now). */
  onLive?: (live: api.Live) => void;
}

const STATS: [string, string][] = [
  ['visitors', 'Unique visitors'],
  ['sessions', 'Visits'],
  ['pageviews', 'Page views'],
  ['viewsPerSession', 'Views per visit'],
  ['bounceRate', 'Bounce rate'],
  ['avgEngagedSeconds', 'Time on page'],
];

const NOT_CUSTOM: Filter = { dimension: 'event_type', op: 'isNot', values: ['pageView', 'engagement'] };
const ENTRIES: Filter = { dimension: 'is_first_in_session', op: 'is', values: ['true'] };
const PAGE_VIEWS: Filter = { dimension: 'event_type', op: 'is', values: ['pageView'] };

interface Tab {
  name: string;
  dimension: string;
  filters: Filter[];
  measure: string;
}

const PANELS: { title: string; tabs: Tab[] }[] = [
  {
    title: 'Sources',
    tabs: [
      { name: 'Channels', dimension: 'channel', filters: [], measure: 'visitors' },
      { name: 'Referrers', dimension: 'referrer_host', filters: [], measure: 'visitors' },
      { name: 'Campaigns', dimension: 'utm_campaign', filters: [], measure: 'visitors' },
    ],
  },
  {
    title: 'Pages',
    tabs: [
      { name: 'Top pages', dimension: 'path', filters: [PAGE_VIEWS], measure: 'visitors' },
      { name: 'Entry pages', dimension: 'path', filters: [PAGE_VIEWS, ENTRIES], measure: 'visitors' },
    ],
  },
  {
    title: 'Locations',
    tabs: [
      { name: 'Countries', dimension: 'country', filters: [], measure: 'visitors' },
      { name: 'Regions', dimension: 'region', filters: [], measure: 'visitors' },
      { name: 'Cities', dimension: 'city', filters: [], measure: 'visitors' },
    ],
  },
  {
    title: 'Devices',
    tabs: [
      { name: 'Browsers', dimension: 'browser', filters: [], measure: 'visitors' },
      { name: 'Operating systems', dimension: 'os', filters: [], measure: 'visitors' },
      { name: 'Devices', dimension: 'device_type', filters: [], measure: 'visitors' },
    ],
  },
  { title: 'Custom events', tabs: [{ name: 'Events', dimension: 'event_type', filters: [NOT_CUSTOM], measure: 'events' }] },
];

/** A filter on `dimension` equal to `value` (or unset, for a missing value). */
export function filterFor(dimension: string, value: unknown): Filter {
  if (value === null || value === undefined || value === '') return { dimension, op: 'notSet', values: [] };
  return { dimension, op: 'is', values: [String(value)] };
}

/** `view` with `filter` added, replacing a filter on the same dimension. */
export function withFilter(view: View, filter: Filter): View {
  return { ...view, filters: [...view.filters.filter((f) => f.dimension !== filter.dimension), filter] };
}

function request(view: View, ctx: Context, extra: Partial<api.ReportRequest>): api.ReportRequest {
  return {
    site: view.site,
    range: range(view),
    timeZone: ctx.timeZone,
    filters: [...view.filters, ...(extra.filters ?? [])],
    measures: extra.measures ?? ['visitors'],
    split: extra.split,
    limit: extra.limit,
    compare: extra.compare === undefined ? view.compare : extra.compare,
    sort: extra.sort,
  };
}

/** A message in place of a panel's content. */
function notice(text: string, kind: 'empty' | 'error' | 'loading' = 'empty'): HTMLElement {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : null }, text);
}

/** Renders the overview of `view` into `root`; returns a function that stops its updates. */
export function overview(root: HTMLElement, view: View, ctx: Context): () => void {
  const stops: (() => void)[] = [];
  const stats = h('section', { class: 'stats', 'aria-label': 'Top stats' });
  const graph = h('div', { class: 'graph', 'aria-label': 'Main graph' });
  const graphTitle = h('h2', { class: 'graph-title' });
  const liveBox = h('section', { class: 'panel live-feed', 'aria-labelledby': 'feed-title' });
  const panels = h('div', { class: 'panels' });
  const status = h('p', { class: 'updated', 'aria-live': 'polite' });
  const banner = h('div', { class: 'banner', role: 'status', hidden: true });
  replace(root, banner, stats, h('section', { class: 'card' }, graphTitle, graph), panels, liveBox, status);

  let chartStop: (() => void) | null = null;
  let updated = Date.now();
  const tick = setInterval(() => {
    const seconds = Math.round((Date.now() - updated) / 1000);
    status.textContent = seconds < 5 ? 'Updated just now' : `Updated ${seconds}s ago`;
  }, 1000);
  stops.push(() => clearInterval(tick));

  const drawStats = async () => {
    const compare = view.compare ?? 'previous';
    const answer = await api.report(request(view, ctx, { measures: STATS.map(([m]) => m), compare }));
    updated = Date.now();
    banner.hidden = answer.caughtUp;
    banner.textContent = answer.caughtUp ? '' : `Catching up after a restart: ${answer.ingestLagEvents} events still to load.`;
    const totals = answer.totals;
    replace(
      stats,
      STATS.map(([measure, title], i) => {
        const delta = change(measure, totals.values[i], totals.previous?.[i]);
        const better = delta && (answer.lowerIsBetter[i] ? -delta.sign : delta.sign);
        return h(
          'button',
          {
            class: `stat${view.graph === measure ? ' selected' : ''}`,
            type: 'button',
            'aria-pressed': view.graph === measure ? 'true' : 'false',
            onclick: () => ctx.go({ ...view, graph: measure }),
          },
          h('span', { class: 'stat-title' }, title),
          h('span', { class: 'stat-value' }, formatValue(measure, totals.values[i])),
          delta
            ? h(
                'span',
                {
                  class: `stat-change ${better && better > 0 ? 'up' : better && better < 0 ? 'down' : 'flat'}`,
                  title: `before: ${formatValue(measure, totals.previous?.[i])}`,
                },
                delta.text,
              )
            : h('span', { class: 'stat-change flat' }, ' '),
        );
      }),
    );
  };

  const drawGraph = async () => {
    const measure = view.graph;
    const title = STATS.find(([m]) => m === measure)?.[1] ?? measure;
    const answer = await api.report(request(view, ctx, { measures: [measure], split: [{ time: 'auto' }], limit: 10000 }));
    graphTitle.textContent = `${title} by ${granularityName(answer.granularity)}`;
    chartStop?.();
    graph.replaceChildren();
    if (answer.rows.length === 0) {
      graph.append(notice('No events in this period.'));
      chartStop = null;
      return;
    }
    const series = {
      times: answer.rows.map((r) => String(r.keys[0])),
      values: answer.rows.map((r) => (r.values[0] === null ? null : Number(r.values[0]))),
      previous: answer.compareRange
        ? answer.rows.map((r) => (r.previous?.[0] == null ? null : Number(r.previous[0])))
        : undefined,
    };
    graph.setAttribute('aria-label', `${title} over time, ${series.times.length} points`);
    chartStop = lineChart(graph, series, measure, answer.granularity, answer.timeZone);
  };
  stops.push(() => chartStop?.());

  const drawPanel = (box: HTMLElement, panel: (typeof PANELS)[number], chosen: number) => {
    const tab = panel.tabs[chosen];
    const list = h('div', { class: 'list' }, notice('Loading…', 'loading'));
    const tabs =
      panel.tabs.length > 1
        ? h(
            'div',
            { class: 'tabs', role: 'tablist' },
            panel.tabs.map((t, i) =>
              h(
                'button',
                {
                  type: 'button',
                  role: 'tab',
                  'aria-selected': i === chosen ? 'true' : 'false',
                  class: i === chosen ? 'active' : '',
                  onclick: () => {
                    localStorage.setItem(`oriel.tab.${panel.title}`, String(i));
                    drawPanel(box, panel, i);
                  },
                },
                t.name,
              ),
            ),
          )
        : null;
    replace(box, h('header', {}, h('h2', {}, panel.title), tabs), list);
    api
      .report(
        request(view, ctx, { measures: [tab.measure], split: [{ dimension: tab.dimension }], limit: 9, filters: tab.filters }),
      )
      .then((answer) => replace(list, rows(answer, tab)))
      .catch((e: Error) => replace(list, notice(e.message, 'error')));
  };

  const rows = (answer: api.Report, tab: Tab): Child => {
    if (answer.rows.length === 0) return notice('Nothing in this period.');
    const max = Math.max(...answer.rows.map((r) => Number(r.values[0]) || 0), 1);
    const total = Number(answer.totals.values[0]) || 0;
    return h(
      'ol',
      { class: 'ranked' },
      answer.rows.map((row) => {
        const value = Number(row.values[0]) || 0;
        const key = row.keys[0];
        const delta = answer.compareRange ? change(tab.measure, row.values[0], row.previous?.[0]) : null;
        return h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'row',
              title: `Filter by ${tab.dimension} ${label(key)}`,
              onclick: () => ctx.go(withFilter(view, filterFor(tab.dimension, key))),
            },
            bar(value / max),
            h('span', { class: 'key' }, tab.dimension === 'country' ? `${flag(key)} ${label(key)}` : label(key)),
            h('span', { class: 'value' }, formatValue(tab.measure, value)),
            h('span', { class: 'share' }, total > 0 ? `${Math.round((value / total) * 100)}%` : ''),
            delta ? h('span', { class: `delta ${delta.sign > 0 ? 'up' : delta.sign < 0 ? 'down' : 'flat'}` }, delta.text) : null,
          ),
        );
      }),
    );
  };

  const drawPanels = () => {
    replace(
      panels,
      PANELS.map((panel) => {
        const box = h('section', { class: 'panel', 'aria-label': panel.title });
        const stored = Number(localStorage.getItem(`oriel.tab.${panel.title}`) ?? 0);
        drawPanel(box, panel, stored < panel.tabs.length ? stored : 0);
        return box;
      }),
    );
  };

  const drawAll = () => {
    drawStats().catch((e: Error) => replace(stats, notice(e.message, 'error')));
    drawGraph().catch((e: Error) => replace(graph, notice(e.message, 'error')));
    drawPanels();
  };
  drawAll();

  // Live: visitors now, events per minute over the last hour and the latest page views every
  // two seconds; today against yesterday at the same time with the panels; and, for a period
  // that ends now, everything again every thirty seconds, quietly.
  const nowTitle = h('h2', { id: 'now-title' }, 'Right now');
  const visitorsNow = h('p', { class: 'now-visitors', 'data-testid': 'visitors-now' }, '–');
  const minutes = h('div', { class: 'minutes', role: 'img', 'aria-label': 'Events per minute, last hour' });
  const minutesNote = h('p', { class: 'muted small', 'data-testid': 'events-last-hour' });
  const today = h('p', { class: 'today', 'data-testid': 'today-vs-yesterday' });
  const feedTitle = h('h3', { id: 'feed-title' }, 'Latest page views');
  const feed = h('ol', { class: 'feed' });
  replace(liveBox, nowTitle, visitorsNow, minutes, minutesNote, today, feedTitle, feed);
  liveBox.setAttribute('aria-labelledby', 'now-title');
  const drawToday = async () => {
    const measures = ['visitors', 'pageviews'];
    const answer = await api.report({
      site: view.site,
      range: { preset: 'today' },
      timeZone: ctx.timeZone,
      filters: view.filters,
      measures,
      compare: 'previous',
    });
    const [v, p] = answer.totals.values;
    const [pv, pp] = answer.totals.previous ?? [null, null];
    replace(
      today,
      h('strong', {}, 'Today so far: '),
      `${formatValue('visitors', v)} visitors, ${formatValue('pageviews', p)} page views`,
      h(
        'span',
        { class: 'muted' },
        ` · yesterday by this time: ${formatValue('visitors', pv)} visitors, ${formatValue('pageviews', pp)} page views`,
      ),
    );
  };
  const drawMinutes = (perMinute: [string, number][]) => {
    // One bar per minute of the last hour, the missing minutes as zero.
    const counts = new Map(perMinute.map(([t, n]) => [new Date(t).getTime(), n]));
    const last = Math.floor(Date.now() / 60_000) * 60_000;
    const bars: [number, number][] = [];
    for (let i = 59; i >= 0; i--) {
      const t = last - i * 60_000;
      bars.push([t, counts.get(t) ?? 0]);
    }
    const max = Math.max(1, ...bars.map(([, n]) => n));
    replace(
      minutes,
      bars.map(([t, n]) => {
        const bar = h('span', {
          class: 'minute',
          title: `${formatTime(new Date(t).toISOString(), 'PT1M', ctx.timeZone)}: ${n} events`,
        });
        bar.style.height = `${Math.max(2, Math.round((n / max) * 100))}%`;
        bar.dataset.minute = new Date(t).toISOString();
        bar.dataset.count = String(n);
        return bar;
      }),
    );
    const total = perMinute.reduce((sum, [, n]) => sum + n, 0);
    minutesNote.textContent = `${formatValue('events', total)} events in the last hour`;
  };
  drawToday().catch((e: Error) => replace(today, notice(e.message, 'error')));
  stops.push(
    api.live(view.site, (snapshot) => {
      if (snapshot.error) return;
      ctx.onLive?.(snapshot);
      visitorsNow.textContent = `${formatValue('visitors', snapshot.visitorsNow)} visitor${snapshot.visitorsNow === 1 ? '' : 's'} in the last 5 minutes`;
      drawMinutes(snapshot.perMinute);
      replace(
        feed,
        snapshot.recent.length === 0
          ? notice('No page views in the last hour.')
          : snapshot.recent.map((r) =>
              h(
                'li',
                {},
                h('time', { datetime: String(r[0]) }, formatTime(String(r[0]), 'PT1M', ctx.timeZone)),
                h('span', { class: 'path' }, label(r[1])),
                h('span', { class: 'muted' }, `${flag(r[3])} ${label(r[3])}`),
              ),
            ),
      );
    }),
  );
  if (isLive(view)) {
    const every = setInterval(
      () => {
        drawAll();
        drawToday().catch(() => {});
      },
      view.period === 'realtime' ? 10_000 : 30_000,
    );
    stops.push(() => clearInterval(every));
  }
  return () => {
    for (const stop of stops) stop();
  };
}

/** A bar of `share` (0–1) of its row's width. Set through the style object: the page's
 * Content-Security-Policy allows no inline style attributes. */
export function bar(share: number): HTMLElement {
  const element = h('span', { class: 'bar', 'aria-hidden': 'true' });
  element.style.width = `${Math.round(Math.min(Math.max(share, 0), 1) * 100)}%`;
  return element;
}

function granularityName(granularity: string | null): string {
  switch (granularity) {
    case 'PT1M':
      return 'minute';
    case 'PT1H':
      return 'hour';
    case 'P1D':
      return 'day';
    case 'P1W':
      return 'week';
    case 'P1M':
      return 'month';
    default:
      return 'time';
  }
}
