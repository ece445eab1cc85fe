// Journeys: what visitors do over time — an ordered funnel, a retention grid and the paths
// around a page — for the shell's site, period and filters. Each part's settings live in the
// URL with the rest of the view.

import * as api from './api';
import { h, replace } from './dom';
import { duration, formatTime, formatValue, label } from './format';
import type { Context } from './overview';
import { bar } from './overview';
import { range, type View } from './state';

const WINDOWS: [number, string][] = [
  [3600, '1 hour'],
  [86400, '1 day'],
  [7 * 86400, '7 days'],
  [30 * 86400, '30 days'],
  [90 * 86400, '90 days'],
];

/** A step of the URL (`page:/x`, `event:signup`, `goal:name`) as the API's. */
function stepOf(text: string): api.Step {
  const [kind, ...rest] = text.split(':');
  const value = rest.join(':');
  if (kind === 'goal') return { goal: value };
  if (kind === 'event') return { eventType: value };
  return { path: value };
}

function scope(view: View, ctx: Context): api.Scope {
  return { site: view.site, range: range(view), timeZone: ctx.timeZone, filters: view.filters };
}

function percent(n: number | null): string {
  return n === null ? '–' : `${n >= 10 || n === 0 ? Math.round(n) : n.toFixed(1)}%`;
}

function failed(e: Error): HTMLElement {
  return h('p', { class: 'notice error', role: 'alert' }, e.message);
}

/** Renders the Journeys page into `root`; returns what stops it. */
export function journeys(root: HTMLElement, view: View, ctx: Context): () => void {
  const controller = new AbortController();
  replace(
    root,
    h('h1', {}, 'Journeys'),
    funnel(view, ctx, controller.signal),
    retention(view, ctx, controller.signal),
    paths(view, ctx, controller.signal),
  );
  return () => controller.abort();
}

function funnel(view: View, ctx: Context, signal: AbortSignal): HTMLElement {
  const result = h('div', { class: 'funnel-result', 'aria-live': 'polite' });
  const rows = h('ol', { class: 'step-editor' });
  const goalNames: string[] = [];
  const addRow = (text: string) => {
    const [kind, ...rest] = text.split(':');
    const value = rest.join(':');
    const n = rows.children.length + 1;
    const select = h(
      'select',
      { 'aria-label': `Step ${n} kind` },
      h('option', { value: 'page', selected: kind === 'page' }, 'Page'),
      h('option', { value: 'event', selected: kind === 'event' }, 'Event'),
      h('option', { value: 'goal', selected: kind === 'goal' }, 'Goal'),
    );
    const input = h('input', {
      'aria-label': `Step ${n}`,
      value,
      placeholder: '/pricing, signup or a goal',
      maxlength: 1024,
      list: 'journey-goals',
    });
    const row = h(
      'li',
      {},
      select,
      input,
      h('button', { type: 'button', 'aria-label': `Remove step ${n}`, onclick: () => row.remove() }, '×'),
    );
    rows.append(row);
  };
  for (const s of view.steps.length > 0 ? view.steps : ['page:/', 'page:']) addRow(s);
  const windowSelect = h(
    'select',
    { 'aria-label': 'Conversion window' },
    WINDOWS.map(([s, name]) => h('option', { value: String(s), selected: view.window === s }, `within ${name}`)),
    WINDOWS.some(([s]) => s === view.window)
      ? null
      : h('option', { value: String(view.window), selected: true }, duration(view.window)),
  );
  const order = h(
    'select',
    { 'aria-label': 'Order' },
    h('option', { value: 'relaxed', selected: view.order === 'relaxed' }, 'other events may come between'),
    h('option', { value: 'strict', selected: view.order === 'strict' }, 'each step the very next'),
  );
  const countBy = h(
    'select',
    { 'aria-label': 'Count' },
    h('option', { value: 'visitor', selected: view.countBy === 'visitor' }, 'per visitor'),
    h('option', { value: 'session', selected: view.countBy === 'session' }, 'per visit'),
  );
  const goalsList = h('datalist', { id: 'journey-goals' });
  api
    .goals()
    .then((g) => {
      goalNames.push(...g.goals.map((x) => x.name));
      replace(goalsList, ...goalNames.map((name) => h('option', { value: name })));
    })
    .catch(() => {});
  const form = h(
    'form',
    {
      class: 'journey-form',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const steps = [...rows.querySelectorAll('li')]
          .map((li) => {
            const kind = (li.querySelector('select') as HTMLSelectElement).value;
            const value = (li.querySelector('input') as HTMLInputElement).value.trim();
            return value ? `${kind}:${value}` : null;
          })
          .filter((s): s is string => s !== null);
        ctx.go({
          ...view,
          steps,
          window: Number(windowSelect.value),
          order: order.value === 'strict' ? 'strict' : 'relaxed',
          countBy: countBy.value === 'session' ? 'session' : 'visitor',
        });
      },
    },
    rows,
    goalsList,
    h(
      'div',
      { class: 'journey-options' },
      h('button', { type: 'button', onclick: () => rows.children.length < 10 && addRow('page:') }, 'Add step'),
      windowSelect,
      order,
      countBy,
      h('button', { type: 'submit', class: 'primary' }, 'Show funnel'),
    ),
  );
  const steps = view.steps.map(stepOf);
  if (steps.length < 2) {
    replace(result, h('p', { class: 'notice' }, 'Give two to ten steps — pages, events or goals — and show the funnel.'));
  } else {
    replace(result, h('p', { class: 'notice loading' }, 'Loading…'));
    api
      .analytics<api.Funnel>(
        'funnel',
        { ...scope(view, ctx), steps, windowSeconds: view.window, order: view.order, countBy: view.countBy },
        signal,
      )
      .then((f) => {
        const first = f.totals.steps[0]?.count ?? 0;
        const unit = f.countBy === 'session' ? 'visits' : 'visitors';
        replace(
          result,
          h(
            'ol',
            { class: 'funnel-steps', 'aria-label': 'Funnel' },
            f.totals.steps.map((s, i) =>
              h(
                'li',
                { class: 'funnel-step', 'data-count': String(s.count) },
                h(
                  'div',
                  { class: 'row' },
                  bar(first > 0 ? s.count / first : 0),
                  h('span', { class: 'key' }, `${i + 1}. ${label(s.name)}`),
                  h('span', { class: 'value' }, formatValue('visitors', s.count)),
                  h('span', { class: 'share' }, percent(s.conversionFromFirst)),
                  h('span', { class: 'delta' }, i === 0 ? unit : `${percent(s.conversionFromPrevious)} of step ${i}`),
                ),
                i > 0
                  ? h(
                      'p',
                      { class: 'step-note' },
                      `${formatValue('visitors', s.dropped)} dropped off`,
                      s.medianSecondsFromPrevious === null
                        ? ''
                        : ` · median ${duration(s.medianSecondsFromPrevious)} from step ${i}`,
                    )
                  : null,
              ),
            ),
          ),
        );
      })
      .catch((e: Error) => e.name !== 'AbortError' && replace(result, failed(e)));
  }
  return h('section', { class: 'card journey', 'aria-label': 'Funnel' }, h('h2', {}, 'Funnel'), form, result);
}

function retention(view: View, ctx: Context, signal: AbortSignal): HTMLElement {
  const result = h('div', { 'aria-live': 'polite' }, h('p', { class: 'notice loading' }, 'Loading…'));
  const period = h(
    'select',
    {
      'aria-label': 'Cohorts by',
      onchange: (e: Event) => ctx.go({ ...view, cohorts: (e.target as HTMLSelectElement).value as View['cohorts'] }),
    },
    (['day', 'week', 'month'] as const).map((p) =>
      h('option', { value: p, selected: view.cohorts === p }, `first seen per ${p}`),
    ),
  );
  api
    .analytics<api.Retention>('retention', { ...scope(view, ctx), period: view.cohorts, periods: 8 }, signal)
    .then((r) => {
      if (r.cohorts.length === 0) {
        replace(result, h('p', { class: 'notice' }, 'No visitor was first seen in this period.'));
        return;
      }
      const width = Math.max(...r.cohorts.map((c) => c.returned.length));
      const granularity = r.period === 'month' ? 'P1M' : 'P1D';
      replace(
        result,
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { class: 'data retention-grid' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col' }, 'Cohort'),
                h('th', { scope: 'col', class: 'num' }, 'Visitors'),
                Array.from({ length: width }, (_, i) => h('th', { scope: 'col', class: 'num' }, `${r.period} ${i}`)),
              ),
            ),
            h(
              'tbody',
              {},
              r.cohorts.map((c) =>
                h(
                  'tr',
                  { 'data-size': String(c.size) },
                  h('th', { scope: 'row' }, formatTime(c.start, granularity, ctx.timeZone)),
                  h('td', { class: 'num' }, formatValue('visitors', c.size)),
                  Array.from({ length: width }, (_, i) => {
                    if (i >= c.returned.length) return h('td', {});
                    const cell = h(
                      'td',
                      { class: 'num cell', title: `${c.returned[i]} of ${c.size} visitors` },
                      percent(c.percent[i]),
                    );
                    // Through the style object: the CSP allows no inline style attributes.
                    cell.style.setProperty('--share', String(c.percent[i] / 100));
                    return cell;
                  }),
                ),
              ),
            ),
          ),
        ),
      );
    })
    .catch((e: Error) => e.name !== 'AbortError' && replace(result, failed(e)));
  return h(
    'section',
    { class: 'card journey', 'aria-label': 'Retention' },
    h('h2', {}, 'Retention'),
    h('div', { class: 'journey-options' }, period),
    result,
  );
}

function pathTree(node: api.PathNode, total: number): HTMLElement {
  return h(
    'li',
    {},
    h(
      'div',
      { class: 'row' },
      bar(total > 0 ? node.count / total : 0),
      h('span', { class: 'key' }, label(node.label)),
      h('span', { class: 'value' }, formatValue('visitors', node.count)),
      h('span', { class: 'share' }, percent(total > 0 ? (100 * node.count) / total : null)),
    ),
    node.children.length > 0
      ? h(
          'ul',
          {},
          node.children.map((c) => pathTree(c, total)),
        )
      : null,
  );
}

function paths(view: View, ctx: Context, signal: AbortSignal): HTMLElement {
  const result = h('div', { 'aria-live': 'polite' }, h('p', { class: 'notice loading' }, 'Loading…'));
  const anchor = h('input', { 'aria-label': 'Page', value: view.anchor ?? '', placeholder: '/', maxlength: 1024 });
  const direction = h(
    'select',
    { 'aria-label': 'Direction' },
    h('option', { value: 'next', selected: view.direction === 'next' }, 'what came next'),
    h('option', { value: 'previous', selected: view.direction === 'previous' }, 'what came before'),
  );
  const depth = h(
    'select',
    { 'aria-label': 'Steps' },
    [1, 2, 3, 4, 5].map((d) => h('option', { value: String(d), selected: view.depth === d }, `${d} step${d === 1 ? '' : 's'}`)),
  );
  const form = h(
    'form',
    {
      class: 'journey-options',
      onsubmit: (e: Event) => {
        e.preventDefault();
        ctx.go({
          ...view,
          anchor: anchor.value.trim() || null,
          direction: direction.value === 'previous' ? 'previous' : 'next',
          depth: Number(depth.value),
        });
      },
    },
    anchor,
    direction,
    depth,
    h('button', { type: 'submit', class: 'primary' }, 'Show paths'),
  );
  // Without a page chosen, the most viewed one.
  const from: Promise<string | null> = view.anchor
    ? Promise.resolve(view.anchor)
    : api
        .report(
          {
            ...scope(view, ctx),
            filters: [...view.filters, { dimension: 'event_type', op: 'is', values: ['pageView'] }],
            split: [{ dimension: 'path' }],
            measures: ['pageviews'],
            limit: 1,
          },
          signal,
        )
        .then((r) => (r.rows[0]?.keys[0] as string | undefined) ?? null);
  from
    .then(async (page) => {
      if (!page) {
        replace(result, h('p', { class: 'notice' }, 'No page views in this period.'));
        return;
      }
      anchor.placeholder = page;
      const p = await api.analytics<api.Paths>(
        'paths',
        { ...scope(view, ctx), from: page, direction: view.direction, depth: view.depth, breadth: 5 },
        signal,
      );
      replace(result, h('ul', { class: 'path-tree', 'aria-label': 'Paths' }, pathTree(p.root, p.root.count)));
    })
    .catch((e: Error) => e.name !== 'AbortError' && replace(result, failed(e)));
  return h('section', { class: 'card journey', 'aria-label': 'Paths' }, h('h2', {}, 'Paths'), form, result);
}
