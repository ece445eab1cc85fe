// Talking to Oriel: reports, the live stream, sites, dimensions, "Your data", signing in.
// Failures become sentences a person can act on.

import type { Filter } from './state';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Called when a request needs a credential the browser does not have. */
let onSignedOut: () => void = () => {};

export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

/** `signingIn`: a 401 is a wrong password to report, not a reason to show the sign-in page. */
async function call<T>(path: string, init: RequestInit = {}, signingIn = false): Promise<T> {
  let response: Response;
  // Busy (every query slot taken, 503/429): wait as long as Retry-After says and ask again, a
  // few times, so a page that sends many reports at once fills in rather than failing.
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch(path, { credentials: 'same-origin', ...init });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ApiError('Oriel does not answer. Is the server running?', 0);
    }
    const busy = response.status === 503 || response.status === 429;
    const wait = Number(response.headers.get('retry-after'));
    if (!busy || !Number.isFinite(wait) || wait <= 0 || attempt >= 3) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 30) * 1000));
  }
  if (response.status === 401 && !signingIn) {
    onSignedOut();
    throw new ApiError('Sign in to see this.', 401);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const reason = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : text;
    throw new ApiError(sentence(reason || `Oriel answered ${response.status}.`), response.status);
  }
  return body as T;
}

function sentence(text: string): string {
  const t = text.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

export interface ReportRequest {
  site?: string | null;
  range: { preset?: string; start?: string; end?: string };
  timeZone?: string;
  filters?: Filter[];
  split?: { dimension?: string; time?: string }[];
  measures: string[];
  sort?: { by: string; desc: boolean };
  limit?: number;
  compare?: string | null;
}

export interface Row {
  keys: unknown[];
  values: unknown[];
  previous?: unknown[];
}

export interface Report {
  range: { start: string; end: string };
  compareRange: { start: string; end: string } | null;
  timeZone: string;
  granularity: string | null;
  splits: string[];
  measures: string[];
  lowerIsBetter: boolean[];
  rows: Row[];
  totals: Row;
  truncated: boolean;
  caughtUp: boolean;
  ingestLagEvents: number;
}

export function report(request: ReportRequest, signal?: AbortSignal): Promise<Report> {
  return call('/api/v1/query', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
    signal,
  });
}

/** Who and when an analytics request looks at. */
export interface Scope {
  site?: string | null;
  range: { preset?: string; start?: string; end?: string };
  timeZone?: string;
  filters?: Filter[];
}

/** A funnel step or a cohort/return event: a goal, or an event type and/or page path. */
export interface Step {
  goal?: string;
  eventType?: string;
  path?: string;
}

export interface FunnelStep {
  name: string;
  count: number;
  dropped: number;
  conversionFromPrevious: number | null;
  conversionFromFirst: number | null;
  medianSecondsFromPrevious: number | null;
}

export interface Funnel {
  countBy: string;
  totals: { key: unknown; steps: FunnelStep[] };
}

export interface Retention {
  period: string;
  cohorts: { start: string; size: number; returned: number[]; percent: number[] }[];
}

export interface PathNode {
  label: string;
  count: number;
  children: PathNode[];
}

export interface Paths {
  direction: string;
  root: PathNode;
}

export interface Goal {
  name: string;
  configured: boolean;
}

/** One of the product analytics (`sessions`, `funnel`, `retention`, `paths`). */
export function analytics<T>(kind: string, request: Scope & Record<string, unknown>, signal?: AbortSignal): Promise<T> {
  return call(`/api/v1/analytics/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
    signal,
  });
}

export const goals = (): Promise<{ goals: Goal[] }> => call('/api/v1/goals');

export interface Site {
  id: string;
  timeZone: string | null;
  configured: boolean;
}

export const sites = (): Promise<{ sites: Site[] }> => call('/api/v1/sites');

export const dimensions = (site: string | null): Promise<{ columns: string[]; props: string[] }> =>
  call(`/api/v1/dimensions${site ? `?site=${encodeURIComponent(site)}` : ''}`);

export const session = (): Promise<{ name: string; role: string }> => call('/api/v1/session');

export const dataInfo = (): Promise<Record<string, unknown>> => call('/api/v1/data');

export function signIn(name: string, password: string): Promise<{ name: string; role: string }> {
  return call(
    '/api/v1/signin',
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, password }),
    },
    true,
  );
}

export const signOut = (): Promise<void> => call('/api/v1/signout', { method: 'POST' });

/** What a deletion left behind: who asked, when, whose events and how many went. */
export interface Receipt {
  id: string;
  requested_by: string;
  requested_at: string;
  deleted: number;
  party_id?: string;
  user_id?: string;
}

export function deleteVisitor(key: 'party_id' | 'user_id', value: string): Promise<{ deleted: number; receipt: Receipt }> {
  return call('/api/v1/delete', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ [key]: value }),
  });
}

export const deletions = (): Promise<{ deletions: Receipt[] }> => call('/api/v1/deletions');

/** Where the browser downloads every event of one visitor or user. */
export function exportUrl(key: 'party_id' | 'user_id', value: string, format: 'jsonl' | 'parquet'): string {
  return `/api/v1/export?${new URLSearchParams({ [key]: value, format })}`;
}

/** Sends one test page view for `site` through the collector, as a page would. */
export async function sendTestEvent(site: string): Promise<void> {
  const body = JSON.stringify({
    site,
    vid: `test-${Date.now()}`,
    sid: `test-${Date.now()}`,
    ev: [{ id: `test-${Date.now()}`, t: 'pageView', url: `${location.origin}/oriel-test-event`, ti: 'Oriel test event' }],
  });
  const response = await fetch('/e', { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
  if (!response.ok) throw new ApiError(`The collector refused the test event (${response.status}).`, response.status);
}

export interface Live {
  at: number;
  visitorsNow: number;
  perMinute: [string, number][];
  recent: unknown[][];
  ingestLagEvents: number;
  caughtUp: boolean;
  error?: string;
}

/** Live snapshots of `site` until the returned function is called. */
export function live(site: string | null, handler: (live: Live) => void): () => void {
  const source = new EventSource(`/api/v1/live${site ? `?site=${encodeURIComponent(site)}` : ''}`);
  source.addEventListener('live', (event) => {
    try {
      handler(JSON.parse((event as MessageEvent).data));
    } catch {
      // A malformed snapshot is skipped; the next one comes in two seconds.
    }
  });
  return () => source.close();
}
