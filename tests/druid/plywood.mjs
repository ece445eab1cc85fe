// Turnilo's query layer against Oriel: plywood 0.21.8 with plywood-druid-requester 2.6.13,
// signing in with HTTP Basic. It introspects `events` (segmentMetadata, timeBoundary), then asks
// what Turnilo's views ask; plywood picks the native query types (timeseries, topN, groupBy,
// scan) itself. Prints the answers as JSON for tests/druid/clients.py to hold against DuckDB.
//
//   node plywood.mjs --host 127.0.0.1:PORT --user U --password P --start ISO --end ISO

import plywood from 'plywood';
import requesterModule from 'plywood-druid-requester';

const { External, $, ply, basicExecutorFactory } = plywood;

function option(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing --${name}`);
  }
  return process.argv[i + 1];
}

const requester = requesterModule.druidRequesterFactory({
  host: option('host'),
  timeout: 60000,
  authToken: { type: 'basic-auth', username: option('user'), password: option('password') },
});
const external = External.fromJS(
  { engine: 'druid', source: 'events', timeAttribute: '__time', allowSelectQueries: true, context: { timeout: 60000 } },
  requester,
);
const introspected = await external.introspect();
const executor = basicExecutorFactory({ datasets: { main: introspected } });
const range = { start: new Date(option('start')), end: new Date(option('end')) };
const main = $('main').filter($('__time').overlap(range));

async function run(expression) {
  const dataset = await executor(ply().apply('main', main).apply('result', expression));
  return dataset.toJS().data[0].result;
}

/** A split's rows as arrays of `names`, times as ISO text. */
function rows(result, names) {
  return result.data.map((row) =>
    names.map((n) => {
      const v = row[n];
      if (v && typeof v === 'object' && 'start' in v) return new Date(v.start).toISOString();
      return v === undefined ? null : v;
    }),
  );
}

const answers = {};
answers.attributes = introspected.toJS().attributes.map((a) => [a.name, a.type]);
answers.total = await run($('main').count());
answers.visitors = await run($('main').countDistinct('$party_id'));
answers.engaged = await run($('main').sum('$engaged_ms'));
answers.hourly = rows(
  await run($('main').split($('__time').timeBucket('PT1H', 'Etc/UTC'), 'Hour').apply('Count', $('main').count()).sort('$Hour', 'ascending')),
  ['Hour', 'Count'],
);
answers.countries = rows(
  await run($('main').split('$country', 'Country').apply('Count', $('main').count()).sort('$Count', 'descending').limit(5)),
  ['Country', 'Count'],
);
answers.sitesAndDevices = rows(
  await run(
    $('main')
      .split({ Site: '$site', Device: '$device_type' })
      .apply('Count', $('main').count())
      .apply('Visitors', $('main').countDistinct('$party_id'))
      .sort('$Count', 'descending')
      .limit(10),
  ),
  ['Site', 'Device', 'Count', 'Visitors'],
);
answers.mobileOs = rows(
  await run(
    $('main')
      .filter($('device_type').is('mobile').and($('event_type').in(['pageView', 'engagement'])))
      .split('$os', 'Os')
      .apply('Count', $('main').count())
      .sort('$Count', 'descending')
      .limit(5),
  ),
  ['Os', 'Count'],
);
answers.raw = rows(
  await run($('main').select('__time', 'event_id', 'site').sort('$__time', 'ascending').limit(5)),
  ['__time', 'event_id', 'site'],
);
process.stdout.write(JSON.stringify(answers));
