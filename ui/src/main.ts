// Oriel's UI: the shell (site, period, comparison, filters, navigation), the pages, the
// keyboard, and signing in. State lives in the URL; back and forward restore each step.

import './style.css';
import * as api from './api';
import { yourData } from './data';
import { h, replace } from './dom';
import { explorer } from './explorer';
import { formatValue, label } from './format';
import { journeys } from './journeys';
import { type Context, overview } from './overview';
import { signInPage } from './signin';
import { PERIODS, read, type View, write } from './state';

const app = document.getElementById('app') as HTMLElement;
let stopPage: () => void = () => {};
let who: { name: string; role: string } | null = null;
let siteList: api.Site[] = [];

const theme = new URLSearchParams(location.search).get('theme');
if (theme === 'dark' || theme === 'light') document.documentElement.dataset.theme = theme;

api.whenSignedOut(() => {
  stopPage();
  who = null;
  signInPage(app, () => start());
});

function go(view: View, replaceHistory = false): void {
  const url = write(view);
  if (replaceHistory) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

window.addEventListener('popstate', () => render());

function timeZoneOf(view: View): string {
  return (
    view.tz ?? siteList.find((s) => s.id === view.site)?.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC'
  );
}

const FILTER_OPS: Record<string, string> = {
  is: 'is',
  isNot: 'is not',
  contains: 'contains',
  notContains: 'does not contain',
  matches: 'matches',
  set: 'is set',
  notSet: 'is not set',
  between: 'between',
};

/** The operator that keeps what `op` drops, so a filter chip flips between include and exclude. */
const INVERSE: Record<string, string> = {
  is: 'isNot',
  isNot: 'is',
  contains: 'notContains',
  notContains: 'contains',
  set: 'notSet',
  notSet: 'set',
};

function header(view: View, visitorsNow: HTMLElement): HTMLElement {
  const site = h(
    'select',
    {
      'aria-label': 'Site',
      onchange: (e: Event) => go({ ...view, site: (e.target as HTMLSelectElement).value || null, filters: [] }),
    },
    h('option', { value: '', selected: !view.site }, 'All sites'),
    siteList.map((s) => h('option', { value: s.id, selected: view.site === s.id }, s.id)),
  );
  const period = h(
    'select',
    { 'aria-label': 'Period', onchange: (e: Event) => go({ ...view, period: (e.target as HTMLSelectElement).value }) },
    PERIODS.map(([p, name]) => h('option', { value: p, selected: view.period === p }, name)),
  );
  const custom =
    view.period === 'custom'
      ? h(
          'span',
          { class: 'custom-range' },
          h('input', {
            type: 'date',
            'aria-label': 'From',
            value: view.from ?? '',
            onchange: (e: Event) => go({ ...view, from: (e.target as HTMLInputElement).value }),
          }),
          h('input', {
            type: 'date',
            'aria-label': 'To (not included)',
            value: view.to ?? '',
            onchange: (e: Event) => go({ ...view, to: (e.target as HTMLInputElement).value }),
          }),
        )
      : null;
  const compare = h(
    'select',
    {
      'aria-label': 'Compare with',
      onchange: (e: Event) => {
        const v = (e.target as HTMLSelectElement).value;
        go({ ...view, compare: v === 'previous' || v === 'year' ? v : null });
      },
    },
    h('option', { value: '', selected: !view.compare }, 'No comparison'),
    h('option', { value: 'previous', selected: view.compare === 'previous' }, 'vs previous period'),
    h('option', { value: 'year', selected: view.compare === 'year' }, 'vs a year before'),
  );
  const nav = h(
    'nav',
    { 'aria-label': 'Pages' },
    (
      [
        ['overview', 'Overview'],
        ['explore', 'Explorer'],
        ['journeys', 'Journeys'],
        ['data', 'Your data'],
      ] as const
    ).map(([page, name]) =>
      h(
        'a',
        {
          href: write({ ...view, page }),
          'aria-current': view.page === page ? 'page' : null,
          onclick: (e: Event) => {
            e.preventDefault();
            go({ ...view, page });
          },
        },
        name,
      ),
    ),
  );
  const chips =
    view.filters.length > 0
      ? h(
          'ul',
          { class: 'chips', 'aria-label': 'Filters' },
          view.filters.map((f, i) =>
            h(
              'li',
              {},
              h('span', {}, `${f.dimension} ${FILTER_OPS[f.op] ?? f.op} ${f.values.map(label).join(' or ')}`),
              INVERSE[f.op]
                ? h(
                    'button',
                    {
                      type: 'button',
                      title: f.op.startsWith('not') || f.op === 'isNot' ? 'Include these instead' : 'Exclude these instead',
                      'aria-label': `${f.op.startsWith('not') || f.op === 'isNot' ? 'Include' : 'Exclude'} ${f.dimension} ${f.values.map(label).join(' or ')}`,
                      onclick: () =>
                        go({ ...view, filters: view.filters.map((g, j) => (j === i ? { ...g, op: INVERSE[g.op] } : g)) }),
                    },
                    '⇄',
                  )
                : null,
              h(
                'button',
                {
                  type: 'button',
                  'aria-label': `Remove filter ${f.dimension}`,
                  onclick: () => go({ ...view, filters: view.filters.filter((_, j) => j !== i) }),
                },
                '×',
              ),
            ),
          ),
          h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => go({ ...view, filters: [] }) }, 'Clear all')),
        )
      : null;
  const account = who
    ? h(
        'span',
        { class: 'account' },
        `${who.name} · `,
        h(
          'button',
          {
            type: 'button',
            class: 'link',
            onclick: () => {
              api.signOut().finally(() => location.reload());
            },
          },
          'Sign out',
        ),
      )
    : null;
  return h(
    'header',
    { class: 'top' },
    h('div', { class: 'brand-row' }, h('a', { class: 'brand', href: '/' }, 'Oriel'), site, visitorsNow, nav, account),
    view.page === 'data'
      ? null
      : h(
          'div',
          { class: 'filter-row' },
          period,
          custom,
          view.page === 'journeys' ? null : compare,
          h('span', { class: 'zone', title: 'Days and buckets are cut in this time zone' }, timeZoneOf(view)),
        ),
    chips,
  );
}

function emptyState(view: View, main: HTMLElement): void {
  const site = view.site ?? siteList[0]?.id ?? 'my-site';
  const snippet = `<script defer data-site="${site}" src="${location.origin}/oriel.js"></script>`;
  const status = h('p', { 'aria-live': 'polite' });
  replace(
    main,
    h(
      'section',
      { class: 'card empty' },
      h('h1', {}, 'No events yet'),
      h('p', {}, 'Put this tag on your pages, before ', h('code', {}, '</head>'), ':'),
      h('pre', {}, h('code', {}, snippet)),
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            status.textContent = 'Sending…';
            api
              .sendTestEvent(site)
              .then(async () => {
                status.textContent = 'A test page view was sent; it shows in a moment.';
                // Wait until the store has it (a second or two), then show the overview.
                for (let tries = 0; tries < 30; tries++) {
                  await new Promise((resolve) => setTimeout(resolve, 500));
                  const all = await api.report({ site, range: { preset: 'all' }, measures: ['events'] }).catch(() => null);
                  if (Number(all?.totals.values[0]) > 0) break;
                }
                go({ ...view, site }, true);
              })
              .catch((e: Error) => {
                status.textContent = e.message;
              });
          },
        },
        'Send a test event',
      ),
      status,
    ),
  );
}

function helpDialog(): HTMLDialogElement {
  const keys: [string, string][] = [
    ['R', 'realtime'],
    ['D', 'today'],
    ['E', 'yesterday'],
    ['W', 'last 7 days'],
    ['F', 'last 28 days'],
    ['T', 'last 30 days'],
    ['M', 'this month'],
    ['Y', 'this year'],
    ['A', 'all time'],
    ['X', 'compare on/off'],
    ['Esc', 'clear filters'],
    ['?', 'this help'],
  ];
  const dialog = h(
    'dialog',
    { class: 'help', 'aria-label': 'Keyboard shortcuts' },
    h('h2', {}, 'Keyboard shortcuts'),
    h(
      'dl',
      {},
      keys.map(([k, what]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, what)]),
    ),
    h('form', { method: 'dialog' }, h('button', { type: 'submit' }, 'Close')),
  );
  document.body.append(dialog);
  return dialog;
}

let help: HTMLDialogElement | null = null;

document.addEventListener('keydown', (e) => {
  const target = e.target as HTMLElement;
  if (e.metaKey || e.ctrlKey || e.altKey || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
  const view = read(location);
  const periods: Record<string, string> = {
    r: 'realtime',
    d: 'today',
    e: 'yesterday',
    w: '7d',
    f: '28d',
    t: '30d',
    m: 'month',
    y: 'year',
    a: 'all',
  };
  const key = e.key.toLowerCase();
  if (periods[key] && view.page !== 'data') go({ ...view, period: periods[key] });
  else if (key === 'x' && view.page !== 'data') go({ ...view, compare: view.compare ? null : 'previous' });
  else if (e.key === 'Escape' && view.filters.length > 0) go({ ...view, filters: [] });
  else if (e.key === '?') {
    help ??= helpDialog();
    help.showModal();
  }
});

async function render(): Promise<void> {
  stopPage();
  const view = read(location);
  const visitorsNow = h('span', { class: 'now', title: 'Visitors in the last 5 minutes', 'aria-live': 'polite' }, '');
  const main = h('main', { id: 'main' });
  replace(app, h('a', { class: 'skip', href: '#main' }, 'Skip to content'), header(view, visitorsNow), main);
  const ctx: Context = {
    timeZone: timeZoneOf(view),
    go: (v) => go(v),
    onLive: (live) => {
      visitorsNow.textContent = `● ${formatValue('visitors', live.visitorsNow)} current visitor${live.visitorsNow === 1 ? '' : 's'}`;
    },
  };
  const titles = { data: 'Your data', explore: 'Explorer', journeys: 'Journeys', overview: 'Overview' };
  document.title = `Oriel · ${titles[view.page]}${view.site ? ` · ${view.site}` : ''}`;
  if (view.page === 'data') {
    stopPage = yourData(main, who?.role ?? 'viewer', ctx.timeZone);
    return;
  }
  if (view.page === 'overview') {
    const stopOverview = overview(main, view, ctx);
    stopPage = stopOverview;
    // A site without any event gets the tag and a test button instead of empty panels. Asked
    // beside the panels rather than before them, so a site with data waits for nothing extra.
    if (view.filters.length === 0) {
      api
        .report({ site: view.site, range: { preset: 'all' }, measures: ['events'], timeZone: ctx.timeZone })
        .then((all) => {
          if (Number(all.totals.values[0]) === 0 && stopPage === stopOverview) {
            stopOverview();
            stopPage = () => {};
            emptyState(view, main);
          }
        })
        .catch(() => {}); // the panels report errors themselves
    }
  } else if (view.page === 'journeys') {
    stopPage = journeys(main, view, ctx);
  } else {
    stopPage = explorer(main, view, ctx);
  }
}

async function start(): Promise<void> {
  try {
    const [session, sites] = await Promise.all([api.session(), api.sites()]);
    who = session;
    siteList = sites.sites;
  } catch {
    return; // signed out: the sign-in page is shown
  }
  const view = read(location);
  if (!view.site && siteList.length === 1) go({ ...view, site: siteList[0].id }, true);
  else render();
}

start();
