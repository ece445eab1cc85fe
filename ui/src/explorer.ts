// The explorer, Turnilo's model: a time range, filters, one or two splits (dimensions or time),
// measures, a chart and a sortable table, comparison with the previous period, CSV export. All
// of it lives in the URL.

import * as api from './api';
import { lineChart } from './chart';
import { h, replace } from './dom';
import { change, flag, formatTime, formatValue, label } from './format';
import { bar, type Context, filterFor, withFilter } from './overview';
import { type Filter, range, type View } from './state';

export const MEASURES: [string, string][] = [
  ['visitors', 'Visitors'],
  ['sessions', 'Visits'],
  ['pageviews', 'Page views'],
  ['events', 'Events'],
  ['viewsPerSession', 'Views per visit'],
  ['bounceRate', 'Bounce rate'],
  ['avgEngagedSeconds', 'Engaged time'],
  ['avgScrollDepth', 'Scroll depth'],
];

const GRANULARITIES: [string, string][] = [
  ['auto', 'auto'],
  ['PT1M', 'minute'],
  ['PT5M', '5 minutes'],
  ['PT15M', '15 minutes'],
  ['PT1H', 'hour'],
  ['P1D', 'day'],
  ['P1W', 'week'],
  ['P1M', 'month'],
];

const OPERATORS: [string, string][] = [
  ['is', 'is'],
  ['isNot', 'is not'],
  ['contains', 'contains'],
  ['notContains', 'does not contain'],
  ['matches', 'matches (regex)'],
  ['set', 'is set'],
  ['notSet', 'is not set'],
  ['between', 'between (numbers)'],
];

function measureName(measure: string): string {
  if (measure.startsWith('event:')) return `“${measure.slice(6)}” events`;
  return MEASURES.find(([m]) => m === measure)?.[1] ?? measure;
}

function splitSpec(split: string): { dimension?: string; time?: string } {
  return split.startsWith('time:') ? { time: split.slice(5) } : { dimension: split };
}

function splitName(split: string): string {
  return split.startsWith('time:') ? 'Time' : split;
}

/** A CSV cell: quoted when needed, and a leading = + - @ neutralised (spreadsheet formulas). */
export function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Renders the explorer of `view` into `root`. */
export function explorer(root: HTMLElement, view: View, ctx: Context): () => void {
  let chartStop: (() => void) | null = null;
  let abort = new AbortController();
  const controls = h('section', { class: 'controls card', 'aria-label': 'Report' });
  const chart = h('div', { class: 'graph' });
  const table = h('div', { class: 'table-wrap' });
  const note = h('p', { class: 'notice', 'aria-live': 'polite' });
  replace(root, controls, h('section', { class: 'card' }, chart), h('section', { class: 'card' }, note, table));

  // Controls: splits, measures, filters, limit.
  const dimensionList = h('datalist', { id: 'dimensions' });
  api
    .dimensions(view.site)
    .then((d) =>
      replace(
        dimensionList,
        [...d.columns, ...d.props.map((p) => `prop:${p}`)].map((c) => h('option', { value: c })),
      ),
    )
    .catch(() => {});
  const splitControl = (index: number) => {
    const current = view.split[index] ?? '';
    const isTime = current.startsWith('time:');
    const kind = h(
      'select',
      {
        'aria-label': `Split ${index + 1}`,
        onchange: (e: Event) => {
          const value = (e.target as HTMLSelectElement).value;
          const split = [...view.split];
          if (value === '') split.splice(index);
          else split[index] = value === 'time' ? 'time:auto' : value === 'dimension' ? 'path' : split[index];
          ctx.go({ ...view, split, sort: null });
        },
      },
      h('option', { value: '', selected: current === '' }, index === 0 ? 'No split (totals)' : 'No second split'),
      h('option', { value: 'dimension', selected: current !== '' && !isTime }, 'by dimension'),
      h('option', { value: 'time', selected: isTime }, 'by time'),
    );
    const detail = isTime
      ? h(
          'select',
          {
            'aria-label': `Split ${index + 1} granularity`,
            onchange: (e: Event) => {
              const split = [...view.split];
              split[index] = `time:${(e.target as HTMLSelectElement).value}`;
              ctx.go({ ...view, split });
            },
          },
          GRANULARITIES.map(([g, name]) => h('option', { value: g, selected: current === `time:${g}` }, name)),
        )
      : current
        ? h('input', {
            'aria-label': `Split ${index + 1} dimension`,
            list: 'dimensions',
            value: current,
            onchange: (e: Event) => {
              const value = (e.target as HTMLInputElement).value.trim();
              const split = [...view.split];
              if (value) split[index] = value;
              ctx.go({ ...view, split, sort: null });
            },
          })
        : null;
    return h('div', { class: 'control' }, kind, detail);
  };
  const measures = h(
    'fieldset',
    { class: 'measures' },
    h('legend', {}, 'Measures'),
    MEASURES.map(([m, name]) =>
      h(
        'label',
        {},
        h('input', {
          type: 'checkbox',
          checked: view.measures.includes(m),
          onchange: (e: Event) => {
            const on = (e.target as HTMLInputElement).checked;
            const next = on ? [...view.measures, m] : view.measures.filter((x) => x !== m);
            if (next.length > 0) ctx.go({ ...view, measures: next });
          },
        }),
        ` ${name}`,
      ),
    ),
  );
  const filterForm = (() => {
    const dimension = h('input', { 'aria-label': 'Filter dimension', list: 'dimensions', placeholder: 'dimension' });
    const op = h(
      'select',
      { 'aria-label': 'Filter operator' },
      OPERATORS.map(([o, name]) => h('option', { value: o }, name)),
    );
    const value = h('input', { 'aria-label': 'Filter values, separated by |', placeholder: 'value (a|b for several)' });
    return h(
      'form',
      {
        class: 'add-filter',
        onsubmit: (e: Event) => {
          e.preventDefault();
          const d = dimension.value.trim();
          if (!d) return;
          const values = ['set', 'notSet'].includes(op.value) ? [] : value.value.split('|').map((v) => v.trim());
          const filter: Filter = { dimension: d, op: op.value, values };
          ctx.go({ ...view, filters: [...view.filters, filter] });
        },
      },
      dimension,
      op,
      value,
      h('button', { type: 'submit' }, 'Add filter'),
    );
  })();
  const limit = h(
    'select',
    { 'aria-label': 'Rows', onchange: (e: Event) => ctx.go({ ...view, limit: Number((e.target as HTMLSelectElement).value) }) },
    // A link may carry any row count: it is offered too, so the control shows what the table does.
    [...new Set([10, 25, 50, 100, 500, 1000, view.limit])]
      .sort((a, b) => a - b)
      .map((n) => h('option', { value: n, selected: view.limit === n }, `${n} rows`)),
  );
  replace(
    controls,
    dimensionList,
    h('div', { class: 'control-row' }, splitControl(0), view.split.length > 0 ? splitControl(1) : null, limit),
    measures,
    filterForm,
  );

  let answer: api.Report | null = null;
  const sortBy = view.sort ? { by: view.sort.replace(/^-/, ''), desc: view.sort.startsWith('-') } : undefined;
  const load = async () => {
    abort.abort();
    abort = new AbortController();
    note.textContent = 'Loading…';
    const request: api.ReportRequest = {
      site: view.site,
      range: range(view),
      timeZone: ctx.timeZone,
      filters: view.filters,
      split: view.split.map(splitSpec),
      measures: view.measures,
      sort: sortBy,
      limit: view.limit,
      compare: view.compare,
    };
    answer = await api.report(request, abort.signal);
    note.textContent = answer.truncated
      ? `Showing the first ${view.limit} rows; more exist. Raise the row count or add a filter.`
      : '';
    draw(answer);
  };

  const draw = (a: api.Report) => {
    chartStop?.();
    chartStop = null;
    chart.replaceChildren();
    const timeIndex = a.splits.indexOf('time');
    if (timeIndex === 0 && a.splits.length === 1 && a.rows.length > 0) {
      // The line runs in time order whatever order the table is sorted in.
      const byTime = [...a.rows].sort((x, y) => Date.parse(String(x.keys[0])) - Date.parse(String(y.keys[0])));
      chartStop = lineChart(
        chart,
        {
          times: byTime.map((r) => String(r.keys[0])),
          values: byTime.map((r) => (r.values[0] == null ? null : Number(r.values[0]))),
          previous: a.compareRange ? byTime.map((r) => (r.previous?.[0] == null ? null : Number(r.previous[0]))) : undefined,
        },
        a.measures[0],
        a.granularity,
        a.timeZone,
      );
    } else if (a.splits.length > 0 && timeIndex < 0 && a.rows.length > 0) {
      const max = Math.max(...a.rows.map((r) => Number(r.values[0]) || 0), 1);
      chart.append(
        h('h2', {}, `${measureName(a.measures[0])} by ${a.splits.join(' and ')}`),
        h(
          'ol',
          { class: 'ranked' },
          a.rows
            .slice(0, 15)
            .map((r) =>
              h(
                'li',
                {},
                h(
                  'span',
                  { class: 'row' },
                  bar((Number(r.values[0]) || 0) / max),
                  h('span', { class: 'key' }, r.keys.map(label).join(' · ')),
                  h('span', { class: 'value' }, formatValue(a.measures[0], r.values[0])),
                ),
              ),
            ),
        ),
      );
    } else if (a.splits.length === 0) {
      chart.append(
        h(
          'div',
          { class: 'stats' },
          a.measures.map((m, i) =>
            h(
              'div',
              { class: 'stat' },
              h('span', { class: 'stat-title' }, measureName(m)),
              h('span', { class: 'stat-value' }, formatValue(m, a.totals.values[i])),
              a.compareRange
                ? h('span', { class: 'stat-change' }, change(m, a.totals.values[i], a.totals.previous?.[i])?.text ?? '')
                : null,
            ),
          ),
        ),
      );
    }
    replace(table, tableOf(a));
  };

  const tableOf = (a: api.Report): HTMLElement => {
    const header: HTMLElement[] = [];
    a.splits.forEach((s, i) => {
      header.push(h('th', { scope: 'col' }, sortButton(s === 'time' ? 'time' : view.split[i], splitName(view.split[i] ?? s))));
    });
    a.measures.forEach((m) => {
      header.push(h('th', { scope: 'col', class: 'num' }, sortButton(m, measureName(m))));
      if (a.compareRange) {
        header.push(
          h('th', { scope: 'col', class: 'num' }, `${measureName(m)} before`),
          h('th', { scope: 'col', class: 'num' }, 'Δ'),
        );
      }
    });
    const body = a.rows.map((r) => {
      const cells: HTMLElement[] = r.keys.map((k, i) => {
        const split = view.split[i] ?? '';
        const text = a.splits[i] === 'time' ? formatTime(String(k), a.granularity, a.timeZone) : label(k);
        if (a.splits[i] === 'time') return h('td', {}, text);
        return h(
          'td',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'link',
              title: `Filter by ${split} ${text}`,
              onclick: () => ctx.go(withFilter(view, filterFor(split, k))),
            },
            split === 'country' ? `${flag(k)} ${text}` : text,
          ),
        );
      });
      a.measures.forEach((m, i) => {
        cells.push(h('td', { class: 'num' }, formatValue(m, r.values[i])));
        if (a.compareRange) {
          const d = change(m, r.values[i], r.previous?.[i]);
          cells.push(h('td', { class: 'num muted' }, formatValue(m, r.previous?.[i])));
          cells.push(
            h(
              'td',
              { class: `num delta ${d && (a.lowerIsBetter[i] ? -d.sign : d.sign) > 0 ? 'up' : d && d.sign !== 0 ? 'down' : ''}` },
              d?.text ?? '–',
            ),
          );
        }
      });
      return h('tr', {}, cells);
    });
    return h(
      'div',
      {},
      h(
        'div',
        { class: 'table-actions' },
        h('button', { type: 'button', onclick: () => download(a) }, 'Export CSV'),
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              navigator.clipboard?.writeText(location.href).catch(() => {});
            },
          },
          'Copy link',
        ),
      ),
      a.rows.length === 0
        ? h('p', { class: 'notice' }, 'No events match this report.')
        : h(
            'table',
            { class: 'data' },
            h('caption', { class: 'visually-hidden' }, 'Report'),
            h('thead', {}, h('tr', {}, header)),
            h('tbody', {}, body),
          ),
    );
  };

  const sortButton = (key: string, text: string): HTMLElement => {
    const active = sortBy?.by === key;
    const next = active && sortBy?.desc ? key : `-${key}`;
    return h(
      'button',
      {
        type: 'button',
        class: 'sort',
        'aria-sort': active ? (sortBy?.desc ? 'descending' : 'ascending') : null,
        onclick: () => ctx.go({ ...view, sort: next }),
      },
      text,
      active ? (sortBy?.desc ? ' ↓' : ' ↑') : '',
    );
  };

  const download = (a: api.Report) => {
    const head: string[] = [...a.splits.map((s, i) => splitName(view.split[i] ?? s))];
    for (const m of a.measures) {
      head.push(measureName(m));
      if (a.compareRange) head.push(`${measureName(m)} before`, `${measureName(m)} change`);
    }
    const lines = [head.map(csvCell).join(',')];
    for (const r of a.rows) {
      const cells: unknown[] = [...r.keys];
      a.measures.forEach((m, i) => {
        cells.push(r.values[i]);
        if (a.compareRange) cells.push(r.previous?.[i], change(m, r.values[i], r.previous?.[i])?.text ?? '');
      });
      lines.push(cells.map(csvCell).join(','));
    }
    const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' });
    const link = h('a', { href: URL.createObjectURL(blob), download: `oriel-${view.site ?? 'all'}-${view.period}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
  };

  load().catch((e: Error) => {
    if (e.name !== 'AbortError') note.textContent = e.message;
  });
  return () => {
    abort.abort();
    chartStop?.();
    void answer;
  };
}
