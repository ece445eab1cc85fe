// How numbers, durations, changes and times are written.

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat('en');

/** A measure's value for display. */
export function formatValue(measure: string, value: unknown): string {
  if (value === null || value === undefined) return '–';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (measure === 'bounceRate' || measure === 'avgScrollDepth') return `${Math.round(n)}%`;
  if (measure === 'avgEngagedSeconds') return duration(n);
  if (measure === 'viewsPerSession') return n.toFixed(2);
  return Math.abs(n) >= 100_000 ? compact.format(n) : whole.format(n);
}

/** Seconds as `1m 05s`. */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** The change from `before` to `now`: percent for counts, points for rates; null when unknown. */
export function change(measure: string, now: unknown, before: unknown): { text: string; sign: number } | null {
  const a = Number(now);
  const b = Number(before);
  if (now === null || before === null || !Number.isFinite(a) || !Number.isFinite(b)) return null;
  if (measure === 'bounceRate' || measure === 'avgScrollDepth') {
    const points = a - b;
    return { text: `${points >= 0 ? '+' : ''}${points.toFixed(1)} pt`, sign: Math.sign(points) };
  }
  if (b === 0) return a === 0 ? { text: '0%', sign: 0 } : { text: 'new', sign: 1 };
  const percent = ((a - b) / b) * 100;
  return {
    text: `${percent >= 0 ? '+' : ''}${percent.toFixed(percent >= 10 || percent <= -10 ? 0 : 1)}%`,
    sign: Math.sign(percent),
  };
}

/** A bucket start for an axis or a table, in the report's zone. */
export function formatTime(iso: string, granularity: string | null, timeZone: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options: Intl.DateTimeFormatOptions = { timeZone };
  if (granularity === 'P1M') Object.assign(options, { year: 'numeric', month: 'short' });
  else if (granularity === 'P1D' || granularity === 'P1W') Object.assign(options, { month: 'short', day: 'numeric' });
  else Object.assign(options, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
  return new Intl.DateTimeFormat('en', options).format(date);
}

/** A flag from an ISO 3166 country code (regional indicator letters), or nothing. */
export function flag(code: unknown): string {
  if (typeof code !== 'string' || !/^[A-Z]{2}$/.test(code)) return '';
  return String.fromCodePoint(...[...code].map((c) => 0x1f1e6 + c.charCodeAt(0) - 65));
}

/** A value as shown in lists: `(none)` for a missing one. */
export function label(value: unknown): string {
  if (value === null || value === undefined || value === '') return '(none)';
  return String(value);
}
