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
                ? `${info.retentionDays} days; older days are dropped whole (store.retention_days)`
                : 'forever (store.retention_days = 0)',
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
        role === 'admin' ? deletion() : h('p', { class: 'notice' }, 'Deleting a visitor needs an administrator.'),
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

function deletion(): HTMLElement {
  const key = h(
    'select',
    { 'aria-label': 'Identify by' },
    h('option', { value: 'party_id' }, 'visitor id (party_id)'),
    h('option', { value: 'user_id' }, 'user id (user_id)'),
  );
  const value = h('input', { 'aria-label': 'Id to delete', required: true, maxlength: 256 });
  const result = h('p', { 'aria-live': 'polite' });
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Delete a visitor'),
    h(
      'p',
      {},
      'Removes every event of one visitor or user, from the store and from the event log’s replay. It cannot be undone.',
    ),
    h(
      'form',
      {
        class: 'add-filter',
        onsubmit: (e: Event) => {
          e.preventDefault();
          result.textContent = 'Deleting…';
          api
            .deleteVisitor(key.value as 'party_id' | 'user_id', value.value.trim())
            .then((r) => {
              result.textContent = `Deleted ${r.deleted} events.`;
            })
            .catch((err: Error) => {
              result.textContent = err.message;
            });
        },
      },
      key,
      value,
      h('button', { type: 'submit', class: 'danger' }, 'Delete'),
    ),
    result,
  );
}
