//! The ordered scan the analytics share: a scope's events sorted by visitor, time and event id
//! in one statement (a sort the query budget tracks and spills), then walked one visitor at a
//! time. A walk holds one visitor's events, never the whole range, and reads strings in place
//! from the sorted batches; only what it counts is kept, and that counts against the query
//! memory budget too ([`Budget`]).

use std::collections::HashMap;
use std::ops::Range;

use datafusion::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::DataType;
use datafusion::execution::memory_pool::MemoryReservation;

use crate::analytics::AnalyticsContext;
use crate::analytics::scope::{Resolved, TIME_MS};
use crate::query::engine::{QueryEngine, QueryInput, QuerySettings, classify};
use crate::report::compile::quote;
use crate::{Error, Result};

/// What a walk needs besides the columns every walk gets (visitor, time, the kind of event,
/// whether the scope's filters hold). Every column left out is a column less to sort.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    /// Whether the walk cuts sessions (it then gets the tag's session id and the timeout).
    pub(crate) sessions: bool,
    /// The only events the walk needs, as SQL (all when absent).
    pub(crate) only: Option<String>,
    /// A text per event (a breakdown's value), as SQL.
    pub(crate) key: Option<String>,
    /// Another text per event (a path's label), as SQL.
    pub(crate) label: Option<String>,
    /// A number per event (a funnel's step mask), as SQL.
    pub(crate) mask: Option<String>,
}

/// The kind of a page view in the walk's `kind` column (a number sorts cheaper than a text).
const VIEW: i64 = 1;
/// The kind of an engagement ping.
const ENGAGEMENT: i64 = 2;

/// The session timeout of each event's site, in ms, as SQL.
fn timeout_expr(context: &AnalyticsContext) -> String {
    if context.site_timeouts_ms.is_empty() {
        return context.session_timeout_ms.to_string();
    }
    let arms: String = context.site_timeouts_ms.iter().map(|(site, ms)| format!(" WHEN {} THEN {ms}", quote(site))).collect();
    format!("CASE \"site\"{arms} ELSE {} END", context.session_timeout_ms)
}

/// The statement of a walk over `scope`'s events: only the columns this walk reads (a
/// column left out is one less to sort), its rows in visitor, time and event id order.
fn statement(scope: &Resolved, context: &AnalyticsContext, extra: &Extra) -> String {
    let mut columns = vec![
        "\"party_id\" AS party".to_string(),
        format!("{TIME_MS} AS t"),
        format!("CASE \"event_type\" WHEN 'pageView' THEN {VIEW} WHEN 'engagement' THEN {ENGAGEMENT} ELSE 0 END AS kind"),
    ];
    if extra.sessions {
        columns.push("\"session_id\" AS session".into());
        if !context.site_timeouts_ms.is_empty() {
            columns.push(format!("CAST({} AS BIGINT) AS timeout", timeout_expr(context)));
        }
    }
    // Without filters every event meets them.
    if scope.hit != "TRUE" {
        columns.push(format!("COALESCE({}, FALSE) AS hit", scope.hit));
    }
    let optional = [("k", &extra.key, "arrow_cast({}, 'Utf8')"), ("label", &extra.label, "arrow_cast({}, 'Utf8')")];
    for (name, sql, shape) in optional {
        if let Some(sql) = sql {
            columns.push(format!("{} AS {name}", shape.replace("{}", sql)));
        }
    }
    if let Some(mask) = &extra.mask {
        columns.push(format!("CAST({mask} AS BIGINT) AS mask"));
    }
    format!(
        "SELECT {columns} FROM events WHERE {where_} AND ({only}) ORDER BY \"party_id\", \"__time\", \"event_id\"",
        columns = columns.join(", "),
        where_ = scope.where_clause(),
        only = extra.only.as_deref().unwrap_or("TRUE"),
    )
}

/// The columns of one sorted batch, typed; those a walk left out are `None`.
pub(crate) struct Columns {
    party: StringArray,
    t: Int64Array,
    /// [`VIEW`], [`ENGAGEMENT`] or 0 for any other event.
    kind: Int64Array,
    session: Option<StringArray>,
    /// Per event; [`Columns::default_timeout`] when all sites share it.
    timeout: Option<Int64Array>,
    default_timeout: i64,
    hit: Option<BooleanArray>,
    key: Option<StringArray>,
    label: Option<StringArray>,
    mask: Option<Int64Array>,
}

/// Column `name` of `batch` as a `T` of type `to`, cast if the engine handed over another
/// type (strings as views); `None` when the walk left it out.
fn typed<T: Array + Clone + 'static>(batch: &RecordBatch, name: &str, to: &DataType) -> Result<Option<T>> {
    let Some(array) = batch.column_by_name(name) else { return Ok(None) };
    let array = if array.data_type() == to { std::sync::Arc::clone(array) } else { cast(array, to)? };
    let typed = array.as_any().downcast_ref::<T>().cloned();
    typed.map(Some).ok_or_else(|| Error::Internal(format!("the walk's column {name} is not {to}")))
}

impl Columns {
    fn of(batch: &RecordBatch, default_timeout: i64) -> Result<Self> {
        let text = |name: &str| typed::<StringArray>(batch, name, &DataType::Utf8);
        let number = |name: &str| typed::<Int64Array>(batch, name, &DataType::Int64);
        let needed = |name: &str| Error::Internal(format!("the walk has no column {name}"));
        Ok(Self {
            party: text("party")?.ok_or_else(|| needed("party"))?,
            t: number("t")?.ok_or_else(|| needed("t"))?,
            kind: number("kind")?.ok_or_else(|| needed("kind"))?,
            session: text("session")?,
            timeout: number("timeout")?,
            default_timeout,
            hit: typed::<BooleanArray>(batch, "hit", &DataType::Boolean)?,
            key: text("k")?,
            label: text("label")?,
            mask: number("mask")?,
        })
    }

    /// Where the visitor at `start` ends (the first row of another visitor, or the length).
    fn run_end(&self, start: usize) -> usize {
        let party = self.party.value(start);
        (start + 1..self.party.len()).find(|&i| self.party.value(i) != party).unwrap_or(self.party.len())
    }
}

/// One visitor's events, in time order (ties by event id).
pub(crate) struct Visitor<'a> {
    c: &'a Columns,
    rows: Range<usize>,
}

/// The text at `i`, `None` where the array holds null or is left out.
fn text_at(array: Option<&StringArray>, i: usize) -> Option<&str> {
    array.filter(|a| !a.is_null(i)).map(|a| a.value(i))
}

impl<'a> Visitor<'a> {
    /// The events' positions, in order.
    pub(crate) fn events(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// The time of event `i`, in ms.
    pub(crate) fn time(&self, i: usize) -> i64 {
        self.c.t.value(i)
    }

    /// Whether event `i` is a page view.
    pub(crate) fn is_view(&self, i: usize) -> bool {
        self.c.kind.value(i) == VIEW
    }

    /// Whether event `i` is an engagement ping.
    pub(crate) fn is_engagement(&self, i: usize) -> bool {
        self.c.kind.value(i) == ENGAGEMENT
    }

    /// Whether the scope's filters hold for event `i`.
    pub(crate) fn hit(&self, i: usize) -> bool {
        self.c.hit.as_ref().is_none_or(|hit| hit.value(i))
    }

    /// The key of event `i` ([`Extra::key`]).
    pub(crate) fn key(&self, i: usize) -> Option<&'a str> {
        text_at(self.c.key.as_ref(), i)
    }

    /// The label of event `i` ([`Extra::label`]).
    pub(crate) fn label(&self, i: usize) -> Option<&'a str> {
        text_at(self.c.label.as_ref(), i)
    }

    /// The mask of event `i` ([`Extra::mask`]).
    pub(crate) fn mask(&self, i: usize) -> i64 {
        self.c.mask.as_ref().map_or(0, |mask| mask.value(i))
    }

    /// The visitor's sessions, each its events' positions in order: events with the tag's
    /// session id belong to that session; the others are cut wherever the visitor paused
    /// longer than the event's site's timeout since the previous such event.
    pub(crate) fn sessions(&self) -> Vec<Vec<usize>> {
        let mut tagged: HashMap<&str, usize> = HashMap::new();
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut untagged: Option<(usize, i64)> = None;
        for i in self.events() {
            match text_at(self.c.session.as_ref(), i) {
                Some(id) => {
                    let n = out.len();
                    let at = *tagged.entry(id).or_insert(n);
                    if at == n {
                        out.push(Vec::new());
                    }
                    out[at].push(i);
                }
                None => {
                    let t = self.time(i);
                    let timeout = self.c.timeout.as_ref().map_or(self.c.default_timeout, |a| a.value(i));
                    let at = match untagged {
                        Some((at, last)) if t - last <= timeout => at,
                        _ => {
                            out.push(Vec::new());
                            out.len() - 1
                        }
                    };
                    out[at].push(i);
                    untagged = Some((at, t));
                }
            }
        }
        out
    }
}

/// Runs the walk over `scope`'s events with `extra`'s columns, calling `visit` with each
/// visitor in turn. The statement runs under the query limits but without the row limit
/// (nothing of it goes to a client).
pub(crate) async fn each_visitor(
    engine: &QueryEngine,
    scope: &Resolved,
    context: &AnalyticsContext,
    extra: &Extra,
    mut visit: impl FnMut(&Visitor<'_>) -> Result<()>,
) -> Result<()> {
    let sql = statement(scope, context, extra);
    let settings = QuerySettings { internal: true, ..Default::default() };
    let mut stream = engine.start(QueryInput::Sql(sql), settings).await?;
    let mut split = Split::new(context.session_timeout_ms);
    while let Some(batch) = stream.next().await {
        split.feed(batch?, &mut visit)?;
    }
    split.finish(&mut visit)
}

/// Cuts sorted batches into visitors; a visitor may go on from one batch into the next.
struct Split {
    /// The rows so far of the last visitor seen, who may go on in the next batch: joined once,
    /// when the visitor ends, however many batches they span.
    carry: Vec<RecordBatch>,
    /// That visitor.
    party: String,
    /// The session timeout of batches without a `timeout` column.
    timeout: i64,
}

impl Split {
    fn new(timeout: i64) -> Self {
        Self { carry: Vec::new(), party: String::new(), timeout }
    }

    /// Hands over every visitor that ends within `batch` (the one it starts with may have
    /// begun in earlier batches) and keeps the last one, who may go on.
    fn feed(&mut self, batch: RecordBatch, visit: &mut impl FnMut(&Visitor<'_>) -> Result<()>) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let c = Columns::of(&batch, self.timeout)?;
        let mut start = 0;
        if !self.carry.is_empty() {
            let end = (0..rows).find(|&i| c.party.value(i) != self.party).unwrap_or(rows);
            self.carry.push(batch.slice(0, end));
            if end == rows {
                return Ok(());
            }
            self.hand_over(visit)?;
            start = end;
        }
        while start < rows {
            let end = c.run_end(start);
            if end == rows {
                self.party = c.party.value(start).to_string();
                self.carry.push(batch.slice(start, end - start));
                break;
            }
            visit(&Visitor { c: &c, rows: start..end })?;
            start = end;
        }
        Ok(())
    }

    /// Hands over the carried visitor.
    fn hand_over(&mut self, visit: &mut impl FnMut(&Visitor<'_>) -> Result<()>) -> Result<()> {
        let parts = std::mem::take(&mut self.carry);
        let Some(first) = parts.first() else { return Ok(()) };
        let joined = if parts.len() == 1 { first.clone() } else { concat_batches(&first.schema(), &parts)? };
        let c = Columns::of(&joined, self.timeout)?;
        visit(&Visitor { c: &c, rows: 0..joined.num_rows() })
    }

    /// Hands over the last visitor.
    fn finish(mut self, visit: &mut impl FnMut(&Visitor<'_>) -> Result<()>) -> Result<()> {
        self.hand_over(visit)
    }
}

/// The memory a walk's sums hold, counted in the query memory pool beside the sort's: a walk
/// that would outgrow `store.query_memory_mb` fails with a clear error instead of growing the
/// process. Sizes are estimates, asked for in steps of a MiB so the pool is asked rarely.
pub(crate) struct Budget {
    reservation: MemoryReservation,
}

impl Budget {
    /// Most bytes asked of the pool at once.
    const STEP: usize = 1 << 20;

    /// An empty budget in `engine`'s pool.
    pub(crate) fn new(engine: &QueryEngine) -> Self {
        Self { reservation: engine.reserve("analytics walk") }
    }

    /// Holds `bytes` in all, or fails when the pool has no room for them.
    pub(crate) fn hold(&mut self, bytes: usize) -> Result<()> {
        if bytes <= self.reservation.size() {
            return Ok(());
        }
        let want = bytes.div_ceil(Self::STEP).saturating_mul(Self::STEP);
        self.reservation.try_resize(want).map_err(|e| match classify(e) {
            Error::TooBig(reason) => Error::TooBig(format!(
                "the answer's sums need more memory than store.query_memory_mb leaves them ({reason}); \
                 narrow the range or the breakdown, or raise store.query_memory_mb"
            )),
            other => other,
        })
    }
}

/// Accumulators per value of a text (a breakdown, a page), the null value apart, filled
/// without copying a value already seen.
#[derive(Debug)]
pub(crate) struct Groups<A> {
    /// Where each value's accumulator is in `named`.
    index: HashMap<String, usize>,
    named: Vec<(String, A)>,
    none: Option<A>,
    /// About what the groups hold, for the [`Budget`].
    bytes: usize,
}

impl<A> Default for Groups<A> {
    fn default() -> Self {
        Self { index: HashMap::new(), named: Vec::new(), none: None, bytes: 0 }
    }
}

impl<A> Groups<A> {
    /// About how many bytes the groups hold (their accumulators' own heap aside).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<A: Default> Groups<A> {
    /// The accumulator of `key`.
    pub(crate) fn at(&mut self, key: Option<&str>) -> &mut A {
        let Some(key) = key else {
            return self.none.get_or_insert_with(A::default);
        };
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => {
                // The key twice, an entry in each collection, and the map's own overhead.
                self.bytes += 2 * key.len() + size_of::<(String, A)>() + size_of::<(String, usize)>() + 16;
                self.index.insert(key.to_string(), self.named.len());
                self.named.push((key.to_string(), A::default()));
                self.named.len() - 1
            }
        };
        &mut self.named[at].1
    }

    /// Every group with its key.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (Option<String>, A)> {
        self.named.into_iter().map(|(k, a)| (Some(k), a)).chain(self.none.map(|a| (None, a)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    /// A sorted batch of `(party, session, t)` rows, page views that meet the filters.
    fn batch(rows: &[(&str, Option<&str>, i64)]) -> RecordBatch {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let number = |name: &str| Field::new(name, DataType::Int64, false);
        let schema = Schema::new(vec![
            text("party"),
            text("session"),
            number("t"),
            number("kind"),
            Field::new("hit", DataType::Boolean, false),
            number("timeout"),
            text("k"),
            text("label"),
            number("mask"),
        ]);
        let n = rows.len();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(vec![VIEW; n])),
                Arc::new(BooleanArray::from(vec![true; n])),
                Arc::new(Int64Array::from(vec![30; n])),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
                Arc::new(Int64Array::from(vec![0; n])),
            ],
        )
        .expect("a valid batch")
    }

    /// Each visitor the split hands over: the party and its sessions' times.
    fn visitors(batches: Vec<RecordBatch>) -> Vec<(String, Vec<Vec<i64>>)> {
        let mut seen = Vec::new();
        let mut visit = |v: &Visitor<'_>| {
            let party = v.c.party.value(v.rows.start).to_string();
            assert!(v.events().all(|i| v.c.party.value(i) == party), "one visitor at a time");
            seen.push((party, v.sessions().iter().map(|s| s.iter().map(|&i| v.time(i)).collect()).collect()));
            Ok(())
        };
        let mut split = Split::new(1_000);
        for b in batches {
            split.feed(b, &mut visit).expect("fed");
        }
        split.finish(&mut visit).expect("finished");
        seen
    }

    #[test]
    fn visitors_are_whole_however_the_batches_fall() {
        let rows = [
            ("a", None, 0),
            ("a", None, 10),
            ("a", None, 50),
            ("b", Some("s1"), 0),
            ("b", None, 5),
            ("b", Some("s2"), 100),
            ("b", Some("s1"), 200),
            ("c", None, 7),
        ];
        // a: a pause of 40 > 30 cuts; b: tagged sessions keep their events, the untagged one alone.
        let expected = vec![
            ("a".to_string(), vec![vec![0, 10], vec![50]]),
            ("b".to_string(), vec![vec![0, 200], vec![5], vec![100]]),
            ("c".to_string(), vec![vec![7]]),
        ];
        let whole = batch(&rows);
        // Every way of cutting the rows into up to four batches, empty ones included (b spans
        // three batches in some).
        let n = rows.len();
        for i in 0..=n {
            for j in i..=n {
                for k in j..=n {
                    let parts = vec![whole.slice(0, i), whole.slice(i, j - i), whole.slice(j, k - j), whole.slice(k, n - k)];
                    assert_eq!(visitors(parts), expected, "cut at {i}, {j} and {k}");
                }
            }
        }
        assert!(visitors(Vec::new()).is_empty());
    }

    #[tokio::test]
    async fn sums_beyond_the_query_budget_fail_clearly_and_give_their_memory_back() {
        let events = Arc::new(datafusion::datasource::MemTable::try_new(crate::schema::events_schema(), vec![vec![]]).unwrap());
        let options = crate::query::engine::QueryOptions { memory_bytes: 4 << 20, threads: 1, ..Default::default() };
        let engine = QueryEngine::new(events, options).unwrap();
        let mut budget = Budget::new(&engine);
        budget.hold(1).unwrap();
        budget.hold(3 << 20).unwrap();
        let error = budget.hold(5 << 20).unwrap_err();
        assert!(matches!(&error, Error::TooBig(m) if m.contains("store.query_memory_mb")), "{error}");
        drop(budget);
        // What it held is free again for the next walk.
        Budget::new(&engine).hold(4 << 20).unwrap();
    }

    #[test]
    fn groups_count_what_they_hold() {
        let mut groups = Groups::<u64>::default();
        groups.at(Some("/a"));
        let one = groups.bytes();
        assert!(one > 2 * "/a".len());
        groups.at(Some("/a"));
        groups.at(None);
        assert_eq!(groups.bytes(), one, "a value seen before and null cost nothing more");
        groups.at(Some("/b"));
        assert_eq!(groups.bytes(), 2 * one);
    }

    #[test]
    fn groups_keep_null_apart() {
        let mut groups = Groups::<u32>::default();
        *groups.at(Some("x")) += 1;
        *groups.at(None) += 2;
        *groups.at(Some("x")) += 3;
        let mut entries: Vec<_> = groups.into_entries().collect();
        entries.sort();
        assert_eq!(entries, vec![(None, 2), (Some("x".to_string()), 4)]);
    }
}
