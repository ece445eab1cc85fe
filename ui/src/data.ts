// "Your data": where Oriel keeps the events, what it holds per site, how long it keeps them,
// what it stores about visitors, and (for an administrator) deleting one visitor's events.

import * as api from './api';
import { h, replace } from './dom';
import { formatTime, label } from './format';

function bytes(n: unknown): string {
  const v = Number(n);
  if (!Number.isFinite(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Renders "Your data" into `root`. */
export function yourData(root: HTMLElement, role: string, timeZone: string): () => void {
  replace(root, h('p', { class: 'notice loading' }, 'Loading…'));
  api
    .dataInfo()
    .then((info) => {
      const sites = (info.sites as Record<string, unknown>[]) ?? [];
      const columns = (info.columns as { name: string; type: string }[]) ?? [];
      const privacy = (info.privacy as string[]) ?? [];
      const oldest = sites
        .map((s) => String(s.first ?? ''))
        .filter(Boolean)
        .sort()[0];
      replace(
        root,
        h('h1', {}, 'Your data'),
        h(
          'section',
          { class: 'card facts' },
          h(
            'dl',
            {},
            h('dt', {}, 'Stored in'),
            h('dd', {}, h('code', {}, String(info.dataDir ?? ''))),
            h('dt', {}, 'Events held'),
            h('dd', {}, Number(info.events ?? 0).toLocaleString('en')),
            h('dt', {}, 'On disk'),
            h(
              'dd',
              {},
              `${bytes(info.storeBytes)} of Parquet segments (${info.segments} files), ${bytes(info.logBytes)} of event log`,
            ),
            h('dt', {}, 'Oldest event'),
            h('dd', {}, oldest ? formatTime(oldest, 'PT1M', timeZone) : 'none yet'),
            h('dt', {}, 'Kept for'),
            h(
              'dd',
              {},
              Number(info.retentionDays) > 0
                ? `today and the ${info.retentionDays} days before (store.retention_days); sites may keep their own`
                : 'forever (store.retention_days = 0); sites may keep their own',
            ),
            h('dt', {}, 'Countries from'),
            h('dd', {}, String(info.geoip ?? 'no GeoIP database: countries are not recorded')),
          ),
        ),
        h(
          'section',
          { class: 'card' },
          h('h2', {}, 'Per site'),
          h(
            'table',
            { class: 'data' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col' }, 'Site'),
                h('th', { scope: 'col', class: 'num' }, 'Events'),
                h('th', { scope: 'col' }, 'First'),
                h('th', { scope: 'col' }, 'Last'),
                h('th', { scope: 'col' }, 'Kept for'),
              ),
            ),
            h(
              'tbody',
              {},
              sites.map((s) =>
                h(
                  'tr',
                  {},
                  h('td', {}, label(s.site)),
                  h('td', { class: 'num' }, Number(s.events).toLocaleString('en')),
                  h('td', {}, s.first ? formatTime(String(s.first), 'PT1M', timeZone) : '–'),
                  h('td', {}, s.last ? formatTime(String(s.last), 'PT1M', timeZone) : '–'),
                  h('td', {}, kept(s.retentionDays)),
                ),
              ),
            ),
          ),
        ),
        h(
          'section',
          { class: 'card' },
          h('h2', {}, 'What is stored about visitors'),
          h(
            'ul',
            {},
            privacy.map((p) => h('li', {}, p)),
          ),
        ),
        h(
          'section',
          { class: 'card' },
          h('h2', {}, 'Columns'),
          h(
            'p',
            { class: 'columns' },
            columns.map((c) => h('code', { title: c.type }, c.name)),
          ),
        ),
        ...(role === 'admin'
          ? [visitorData(), receipts()]
          : [h('p', { class: 'notice' }, 'Exporting or deleting a visitor’s events needs an administrator.')]),
        h(
          'section',
          { class: 'card about', 'aria-label': 'About' },
          h('h2', {}, 'About'),
          h(
            'p',
            {},
            'The built-in country database is geo-whois-asn-country by sapics/ip-location-db (CC0). It includes ',
            'statistics data of the Number Resource Organization (nro.net), licensed under CC BY 4.0.',
          ),
        ),
      );
    })
    .catch((e: Error) => replace(root, h('p', { class: 'notice error', role: 'alert' }, e.message)));
  return () => {};
}

function kept(days: unknown): string {
  const n = Number(days);
  return n > 0 ? `${n} days` : 'forever';
}

/** One visitor's or user's events: export them (a data-subject access request) or delete them. */
function visitorData(): HTMLElement {
  const key = h(
    'select',
    { 'aria-label': 'Identify by' },
    h('option', { value: 'party_id' }, 'visitor id (party_id)'),
    h('option', { value: 'user_id' }, 'user id (user_id)'),
  );
  const value = h('input', { 'aria-label': 'Visitor or user id', required: true, maxlength: 256 });
  const result = h('p', { 'aria-live': 'polite', class: 'deletion-result' });
  const which = () => [key.value as 'party_id' | 'user_id', value.value.trim()] as const;
  const download = (format: 'jsonl' | 'parquet') => () => {
    const [k, v] = which();
    if (!v) {
      result.textContent = 'Enter the id first.';
      return;
    }
    const link = h('a', { href: api.exportUrl(k, v, format), download: `oriel-${v}.${format}` });
    link.click();
  };
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, 'A visitor’s data'),
    h(
      'p',
      {},
      'Export every event of one visitor or user (JSON lines or Parquet), or delete them all: from the store, ',
      'from the event log’s replay and from its dump. A deletion cannot be undone and leaves a receipt below.',
    ),
    h(
      'form',
      {
        class: 'add-filter',
        onsubmit: (e: Event) => {
          e.preventDefault();
          const [k, v] = which();
          result.textContent = 'Deleting…';
          api
            .deleteVisitor(k, v)
            .then((r) => {
              result.textContent = `Deleted ${r.deleted} events (receipt ${r.receipt.id}).`;
              const list = document.querySelector('section.receipts');
              list?.replaceWith(receipts());
            })
            .catch((err: Error) => {
              result.textContent = err.message;
            });
        },
      },
      key,
      value,
      h('button', { type: 'button', onclick: download('jsonl') }, 'Export JSON lines'),
      h('button', { type: 'button', onclick: download('parquet') }, 'Export Parquet'),
      h('button', { type: 'submit', class: 'danger' }, 'Delete'),
    ),
    result,
  );
}

/** The receipts of past deletions, newest first. */
function receipts(): HTMLElement {
  const section = h('section', { class: 'card receipts' }, h('h2', {}, 'Deletion receipts'), h('p', {}, 'Loading…'));
  api
    .deletions()
    .then(({ deletions }) => {
      const body =
        deletions.length === 0
          ? h('p', {}, 'No deletions yet.')
          : h(
              'table',
              { class: 'data' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', { scope: 'col' }, 'Receipt'),
                  h('th', { scope: 'col' }, 'Asked'),
                  h('th', { scope: 'col' }, 'By'),
                  h('th', { scope: 'col' }, 'Whose events'),
                  h('th', { scope: 'col', class: 'num' }, 'Deleted'),
                ),
              ),
              h(
                'tbody',
                {},
                deletions
                  .slice(0, 50)
                  .map((r) =>
                    h(
                      'tr',
                      {},
                      h('td', {}, r.id),
                      h('td', {}, r.requested_at),
                      h('td', {}, r.requested_by),
                      h('td', {}, r.party_id ? `visitor ${r.party_id}` : `user ${r.user_id ?? ''}`),
                      h('td', { class: 'num' }, r.deleted.toLocaleString('en')),
                    ),
                  ),
              ),
            );
      replace(section, h('h2', {}, 'Deletion receipts'), body);
    })
    .catch((e: Error) => replace(section, h('h2', {}, 'Deletion receipts'), h('p', { class: 'notice error' }, e.message)));
  return section;
}
