// The whole view lives in the URL's query string, readably: reloading or opening the link in
// another browser shows the same view. Filters are `f=op,dimension,value,…`, each part
// percent-encoded, so any value (commas, bars, slashes, any script) survives the round trip.

export interface Filter {
  dimension: string;
  op: string;
  values: string[];
}

export interface View {
  page: 'overview' | 'explore' | 'journeys' | 'data';
  site: string | null;
  period: string;
  from: string | null;
  to: string | null;
  compare: 'previous' | 'year' | null;
  filters: Filter[];
  graph: string;
  split: string[];
  measures: string[];
  sort: string | null;
  limit: number;
  tz: string | null;
  /** Funnel steps, each `page:<path>`, `event:<type>` or `goal:<name>`. */
  steps: string[];
  /** The funnel's conversion window, in seconds. */
  window: number;
  order: 'relaxed' | 'strict';
  countBy: 'visitor' | 'session';
  cohorts: 'day' | 'week' | 'month';
  /** The page paths start from. */
  anchor: string | null;
  direction: 'next' | 'previous';
  /** Steps the paths go from the page. */
  depth: number;
}

export const PERIODS: [string, string][] = [
  ['realtime', 'Realtime (30 min)'],
  ['today', 'Today'],
  ['yesterday', 'Yesterday'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['28d', 'Last 28 days'],
  ['30d', 'Last 30 days'],
  ['91d', 'Last 91 days'],
  ['month', 'This month'],
  ['lastMonth', 'Last month'],
  ['6mo', 'Last 6 months'],
  ['12mo', 'Last 12 months'],
  ['year', 'This year'],
  ['all', 'All time'],
  ['custom', 'Custom range'],
];

const PAGES = new Set(['overview', 'explore', 'journeys', 'data']);

/** The view a location shows. */
export function read(location: Location): View {
  const q = new URLSearchParams(location.search);
  const path = location.pathname.replace(/^\/+|\/+$/g, '') || 'overview';
  const page = (PAGES.has(path) ? path : 'overview') as View['page'];
  const compare = q.get('compare');
  return {
    page,
    site: q.get('site'),
    period: q.get('period') ?? (page === 'explore' ? '7d' : '28d'),
    from: q.get('from'),
    to: q.get('to'),
    compare: compare === 'previous' || compare === 'year' ? compare : null,
    filters: q
      .getAll('f')
      .map(decodeFilter)
      .filter((f): f is Filter => f !== null),
    graph: q.get('graph') ?? 'visitors',
    split: q.getAll('split'),
    measures: (q.get('m') ?? 'visitors,pageviews').split(',').filter(Boolean),
    sort: q.get('sort'),
    limit: Number(q.get('limit') ?? 50) || 50,
    tz: q.get('tz'),
    steps: q.getAll('step'),
    window: Number(q.get('window') ?? 86400) || 86400,
    order: q.get('order') === 'strict' ? 'strict' : 'relaxed',
    countBy: q.get('by') === 'session' ? 'session' : 'visitor',
    cohorts: q.get('cohorts') === 'day' || q.get('cohorts') === 'month' ? (q.get('cohorts') as 'day' | 'month') : 'week',
    anchor: q.get('anchor'),
    direction: q.get('dir') === 'previous' ? 'previous' : 'next',
    depth: Math.min(Math.max(Number(q.get('depth') ?? 2) || 2, 1), 5),
  };
}

function decodeFilter(text: string): Filter | null {
  const parts = text.split(',').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts.length < 2) return null;
  const [op, dimension, ...values] = parts;
  return { op, dimension, values };
}

function encodeFilter(filter: Filter): string {
  return [filter.op, filter.dimension, ...filter.values].map(encodeURIComponent).join(',');
}

/** The URL of a view (only what differs from the defaults is written). */
export function write(view: View): string {
  const q = new URLSearchParams();
  if (view.site) q.set('site', view.site);
  q.set('period', view.period);
  if (view.period === 'custom') {
    if (view.from) q.set('from', view.from);
    if (view.to) q.set('to', view.to);
  }
  if (view.compare) q.set('compare', view.compare);
  for (const f of view.filters) q.append('f', encodeFilter(f));
  if (view.page === 'overview' && view.graph !== 'visitors') q.set('graph', view.graph);
  if (view.page === 'explore') {
    for (const s of view.split) q.append('split', s);
    q.set('m', view.measures.join(','));
    if (view.sort) q.set('sort', view.sort);
    if (view.limit !== 50) q.set('limit', String(view.limit));
  }
  if (view.page === 'journeys') {
    for (const s of view.steps) q.append('step', s);
    if (view.window !== 86400) q.set('window', String(view.window));
    if (view.order !== 'relaxed') q.set('order', view.order);
    if (view.countBy !== 'visitor') q.set('by', view.countBy);
    if (view.cohorts !== 'week') q.set('cohorts', view.cohorts);
    if (view.anchor) q.set('anchor', view.anchor);
    if (view.direction !== 'next') q.set('dir', view.direction);
    if (view.depth !== 2) q.set('depth', String(view.depth));
  }
  if (view.tz) q.set('tz', view.tz);
  const path = view.page === 'overview' ? '/' : `/${view.page}`;
  return `${path}?${q.toString()}`;
}

/** The report range of a view. */
export function range(view: View): { preset?: string; start?: string; end?: string } {
  if (view.period === 'custom' && view.from && view.to) return { start: view.from, end: view.to };
  return { preset: view.period === 'custom' ? '7d' : view.period };
}

/** Whether the view's range ends now, so it changes as events arrive. */
export function isLive(view: View): boolean {
  return !['yesterday', 'lastMonth', 'custom'].includes(view.period);
}
