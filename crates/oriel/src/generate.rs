//! `oriel gen`: realistic, deterministic click-stream traffic.
//!
//! The model: sessions arrive over the chosen days with a daily rhythm (quiet at night, busy in
//! the afternoon); each session belongs to a new or returning visitor with a fixed device,
//! browser, country and language; it enters from a channel (direct, search, social, e-mail,
//! paid campaigns, referrals) on a landing page, then views a geometric number of pages drawn
//! from a Zipf distribution (a few pages get most views), with an `engagement` event (visible
//! time, scroll depth) after each page view and occasional custom events (`signup`,
//! `addToCart`, `purchase` with an amount). The same seed always gives the same events.
//! Events come out in time order; the last few percent of the span may stay empty, as the
//! number of sessions is estimated from the requested number of events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use oriel_core::{Event, EventSource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Geometric, Zipf};

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Number of events.
    pub(crate) events: u64,
    /// The time span, ending at `end_ms`.
    pub(crate) days: f64,
    /// End of the span, ms since the epoch.
    pub(crate) end_ms: i64,
    /// Number of sites.
    pub(crate) sites: usize,
    /// Random seed.
    pub(crate) seed: u64,
}

/// One generated event with the client facts a collector would see.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    /// The event as a tag would send it (ids, URL, referrer, props), time set.
    pub(crate) event: Event,
    /// The visitor's IP address.
    pub(crate) ip: IpAddr,
    /// The visitor's user agent.
    pub(crate) user_agent: &'static str,
    /// The visitor's country, for output without a GeoIP database.
    pub(crate) country: &'static str,
}

const USER_AGENTS: &[(&str, u32)] = &[
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", 9),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
        7,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 4),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 4),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        20,
    ),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 14),
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Mobile Safari/537.36", 6),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        4,
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
];

/// Country, weight, language, and a /8 to draw addresses from.
const COUNTRIES: &[(&str, u32, &str, u8)] = &[
    ("US", 30, "en-US", 3),
    ("DE", 10, "de-DE", 5),
    ("GB", 9, "en-GB", 2),
    ("NL", 7, "nl-NL", 145),
    ("FR", 7, "fr-FR", 90),
    ("IN", 8, "en-IN", 49),
    ("BR", 6, "pt-BR", 177),
    ("JP", 5, "ja-JP", 126),
    ("CA", 5, "en-CA", 24),
    ("AU", 4, "en-AU", 1),
    ("ES", 4, "es-ES", 88),
    ("SE", 3, "sv-SE", 78),
];

const SITE_NAMES: &[&str] = &["shop", "blog", "docs", "news", "app", "forum", "careers", "status"];

/// Landing traffic: channel, weight, referrer choices, utm (source, medium) choices.
const SEARCH_REFERRERS: &[&str] =
    &["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.ecosia.org/"];
const SOCIAL_REFERRERS: &[&str] = &[
    "https://t.co/",
    "https://l.facebook.com/",
    "https://www.linkedin.com/",
    "https://www.reddit.com/r/webdev/",
    "https://news.ycombinator.com/",
];
const REFERRAL_REFERRERS: &[&str] = &[
    "https://blog.partner.org/review",
    "https://github.com/awesome/list",
    "https://stackoverflow.com/questions/1",
    "https://medium.com/@writer/post",
];
const CAMPAIGNS: &[&str] = &["spring_sale", "black_friday", "newsletter_weekly", "retargeting_q4", "launch_v2", "webinar_invite"];

struct Visitor {
    party_id: String,
    user_agent: &'static str,
    country: &'static str,
    language: &'static str,
    ip: IpAddr,
    screen: (i32, i32),
    visits: u32,
    user_id: Option<String>,
}

/// A time-ordered stream of generated events.
pub(crate) struct Generator {
    plan: Plan,
    rng: StdRng,
    start_ms: i64,
    /// Sessions still to start, and events already made but not yet due.
    sessions_left: u64,
    hour: i64,
    hours: i64,
    hour_weights: Vec<f64>,
    pending: BinaryHeap<Reverse<(i64, u64, usize)>>,
    made: Vec<Option<Generated>>,
    free: Vec<usize>,
    sequence: u64,
    emitted: u64,
    /// Time of the last event handed out.
    last_ms: i64,
    /// Events a session makes on average.
    per_session: f64,
    visitors: VecDeque<Visitor>,
    site_zipf: Zipf<f64>,
    page_zipf: Zipf<f64>,
    pages_per_session: Geometric,
    dwell: Exp<f64>,
    ua_weights: Vec<u32>,
    country_weights: Vec<u32>,
}

/// Pages per site.
const PAGES: u64 = 400;

impl Generator {
    pub(crate) fn new(plan: Plan) -> Self {
        // Calibrate how many events a session makes with a probe of a few thousand sessions, so
        // the requested number of events spans (almost) the whole time range.
        let mut probe = Self::with_sessions(Plan { seed: plan.seed ^ 0x5eed_cafe, ..plan.clone() }, 0);
        const PROBES: u64 = 3000;
        for _ in 0..PROBES {
            probe.session(plan.end_ms);
        }
        let per_session = (probe.pending.len() as f64 / PROBES as f64).max(1.0);
        let sessions = ((plan.events as f64 / per_session) * 1.03).ceil() as u64 + 10;
        let mut generator = Self::with_sessions(plan, sessions);
        generator.per_session = per_session;
        generator
    }

    fn with_sessions(plan: Plan, sessions: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(plan.seed);
        let span_ms = (plan.days * 86_400_000.0) as i64;
        let start_ms = plan.end_ms - span_ms;
        let hours = (span_ms / 3_600_000).max(1);
        // A daily rhythm: a trough at 4 in the morning, a peak mid-afternoon, weekends quieter.
        let hour_weights: Vec<f64> = (0..hours)
            .map(|h| {
                let t = start_ms + h * 3_600_000;
                let hour_of_day = (t / 3_600_000).rem_euclid(24) as f64;
                let day = (t / 86_400_000 + 4).rem_euclid(7); // 0 = Monday
                let daily = 1.0 + 0.8 * ((hour_of_day - 15.0) / 24.0 * std::f64::consts::TAU).cos();
                let weekly = if day >= 5 { 0.7 } else { 1.0 };
                (daily * weekly).max(0.05) * (0.9 + 0.2 * rng.random::<f64>())
            })
            .collect();
        let sites = plan.sites.clamp(1, SITE_NAMES.len());
        Self {
            // Constant, valid parameters: these cannot fail.
            #[allow(clippy::expect_used)]
            site_zipf: Zipf::new(sites as f64, 1.2).expect("sites is at least 1"),
            #[allow(clippy::expect_used)]
            page_zipf: Zipf::new(PAGES as f64, 1.07).expect("valid Zipf parameters"),
            #[allow(clippy::expect_used)]
            pages_per_session: Geometric::new(0.33).expect("valid probability"),
            #[allow(clippy::expect_used)]
            dwell: Exp::new(1.0 / 45_000.0).expect("valid rate"),
            ua_weights: USER_AGENTS.iter().map(|u| u.1).collect(),
            country_weights: COUNTRIES.iter().map(|c| c.1).collect(),
            plan,
            rng,
            start_ms,
            sessions_left: sessions,
            hour: 0,
            hours,
            hour_weights,
            pending: BinaryHeap::new(),
            made: Vec::new(),
            free: Vec::new(),
            sequence: 0,
            emitted: 0,
            last_ms: start_ms,
            per_session: 1.0,
            visitors: VecDeque::new(),
        }
    }

    fn pick(rng: &mut StdRng, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = rng.random_range(0..total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn id(rng: &mut StdRng) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..22).map(|_| ALPHABET[rng.random_range(0..64)] as char).collect()
    }

    fn visitor(&mut self) -> usize {
        // Six in ten sessions are by returning visitors, drawn from the recent ones.
        if !self.visitors.is_empty() && self.rng.random::<f64>() < 0.6 {
            let n = self.visitors.len();
            let skew = self.rng.random::<f64>().powi(2);
            return n - 1 - ((skew * n as f64) as usize).min(n - 1);
        }
        let ua = Self::pick(&mut self.rng, &self.ua_weights);
        let country = &COUNTRIES[Self::pick(&mut self.rng, &self.country_weights)];
        let ip = IpAddr::V4(Ipv4Addr::new(country.3, self.rng.random(), self.rng.random(), self.rng.random_range(1..255)));
        let mobile = USER_AGENTS[ua].0.contains("Mobile");
        let screen =
            if mobile { (390, 844) } else { [(1920, 1080), (1536, 864), (2560, 1440), (1440, 900)][self.rng.random_range(0..4)] };
        let user_id = (self.rng.random::<f64>() < 0.15).then(|| format!("user-{}", self.rng.random_range(0..1_000_000)));
        let visitor = Visitor {
            party_id: Self::id(&mut self.rng),
            user_agent: USER_AGENTS[ua].0,
            country: country.0,
            language: country.2,
            ip,
            screen,
            visits: 0,
            user_id,
        };
        self.visitors.push_back(visitor);
        if self.visitors.len() > 200_000 {
            self.visitors.pop_front();
        }
        self.visitors.len() - 1
    }

    fn page(&mut self, host: &str) -> (String, String) {
        let rank = self.page_zipf.sample(&mut self.rng) as u64;
        let path = match rank {
            1 => "/".to_string(),
            2 => "/pricing".to_string(),
            3 => "/about".to_string(),
            4 => "/contact".to_string(),
            r if r % 3 == 0 => format!("/blog/post-{r}"),
            r if r % 3 == 1 => format!("/products/item-{r}"),
            r => format!("/docs/guide-{r}"),
        };
        let title = format!("{} | {host}", path.trim_start_matches('/').replace(['/', '-'], " "));
        (path, title)
    }

    /// Makes one session and queues its events.
    fn session(&mut self, start: i64) {
        let site = SITE_NAMES[(self.site_zipf.sample(&mut self.rng) as usize).saturating_sub(1)];
        let host = format!("{site}.example.com");
        let v = self.visitor();
        let session_id = Self::id(&mut self.rng);
        let first_visit = self.visitors[v].visits == 0;
        self.visitors[v].visits += 1;
        let roll = self.rng.random::<f64>();
        let (referrer, utm): (Option<String>, Option<(String, String, String)>) = if roll < 0.30 {
            (None, None)
        } else if roll < 0.62 {
            (Some(SEARCH_REFERRERS[self.rng.random_range(0..SEARCH_REFERRERS.len())].to_string()), None)
        } else if roll < 0.72 {
            (Some(SOCIAL_REFERRERS[self.rng.random_range(0..SOCIAL_REFERRERS.len())].to_string()), None)
        } else if roll < 0.79 {
            let c = CAMPAIGNS[self.rng.random_range(0..CAMPAIGNS.len())];
            (None, Some(("newsletter".into(), "email".into(), c.into())))
        } else if roll < 0.90 {
            let c = CAMPAIGNS[self.rng.random_range(0..CAMPAIGNS.len())];
            let src = ["google", "facebook", "linkedin"][self.rng.random_range(0..3)];
            (Some(format!("https://www.{src}.com/")), Some((src.into(), "cpc".into(), c.into())))
        } else {
            (Some(REFERRAL_REFERRERS[self.rng.random_range(0..REFERRAL_REFERRERS.len())].to_string()), None)
        };
        let pages = 1 + self.pages_per_session.sample(&mut self.rng).min(40);
        let mut t = start;
        let mut previous: Option<String> = referrer;
        let mut counter = 0u32;
        for n in 0..pages {
            let (path, title) = self.page(&host);
            let mut url = format!("https://{host}{path}");
            if n == 0
                && let Some((s, m, c)) = &utm
            {
                url.push_str(&format!("?utm_source={s}&utm_medium={m}&utm_campaign={c}"));
            }
            let page_view_id = Self::id(&mut self.rng);
            let base = Event {
                time: t,
                client_time: Some(t - self.rng.random_range(0..400)),
                site: Some(site.to_string()),
                event_type: "pageView".into(),
                party_id: Some(self.visitors[v].party_id.clone()),
                session_id: Some(session_id.clone()),
                page_view_id: Some(page_view_id.clone()),
                user_id: self.visitors[v].user_id.clone(),
                url: Some(url.clone()),
                title: Some(title),
                referrer: previous.clone(),
                language: Some(self.visitors[v].language.to_string()),
                screen_width: Some(self.visitors[v].screen.0),
                screen_height: Some(self.visitors[v].screen.1),
                viewport_width: Some(self.visitors[v].screen.0),
                viewport_height: Some(self.visitors[v].screen.1 - 120),
                pixel_ratio: Some(if self.visitors[v].screen.0 < 500 { 3.0 } else { 1.0 }),
                source: EventSource::Tag,
                ..Event::default()
            };
            let mut page_view = base.clone();
            page_view.event_id = Some(format!("{page_view_id}.{counter}"));
            page_view.is_new_party = Some(first_visit && n == 0);
            page_view.is_first_in_session = Some(n == 0);
            counter += 1;
            self.queue(page_view, v);
            let dwell = (self.dwell.sample(&mut self.rng) as i64).clamp(800, 900_000);
            for (kind, p) in [("addToCart", 0.05), ("signup", 0.02), ("purchase", 0.012), ("download", 0.01)] {
                if self.rng.random::<f64>() < p {
                    let mut custom = base.clone();
                    custom.event_type = kind.into();
                    custom.time = t + self.rng.random_range(200..dwell.max(201));
                    custom.event_id = Some(format!("{page_view_id}.{counter}"));
                    counter += 1;
                    custom.props = Some(match kind {
                        "purchase" => format!(
                            r#"{{"amount":{:.2},"currency":"EUR","items":{}}}"#,
                            self.rng.random_range(5.0..400.0),
                            self.rng.random_range(1..5)
                        ),
                        "addToCart" => format!(
                            r#"{{"sku":"SKU-{}","qty":{}}}"#,
                            self.rng.random_range(100..999),
                            self.rng.random_range(1..3)
                        ),
                        "signup" => format!(r#"{{"plan":"{}"}}"#, ["free", "pro", "team"][self.rng.random_range(0..3)]),
                        _ => format!(r#"{{"file":"report-{}.pdf"}}"#, self.rng.random_range(1..50)),
                    });
                    self.queue(custom, v);
                }
            }
            let mut engagement = base;
            engagement.event_type = "engagement".into();
            engagement.time = t + dwell;
            engagement.event_id = Some(format!("{page_view_id}.{counter}"));
            engagement.engaged_ms = Some((dwell as f64 * self.rng.random_range(0.4..1.0)) as i64);
            engagement.scroll_depth = Some(self.rng.random_range(5..=100));
            self.queue(engagement, v);
            previous = Some(url);
            t += dwell + self.rng.random_range(300..3000);
        }
    }

    fn queue(&mut self, event: Event, visitor: usize) {
        let v = &self.visitors[visitor];
        let item = Generated { event, ip: v.ip, user_agent: v.user_agent, country: v.country };
        let time = item.event.time;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.made[slot] = Some(item);
                slot
            }
            None => {
                self.made.push(Some(item));
                self.made.len() - 1
            }
        };
        self.sequence += 1;
        self.pending.push(Reverse((time, self.sequence, slot)));
    }

    /// Starts the sessions of the next hour.
    fn next_hour(&mut self) -> bool {
        if self.hour >= self.hours || self.sessions_left == 0 {
            return false;
        }
        let remaining_weight: f64 = self.hour_weights[self.hour as usize..].iter().sum();
        let share = self.hour_weights[self.hour as usize] / remaining_weight.max(f64::MIN_POSITIVE);
        let expected = self.sessions_left as f64 * share;
        let mut n = expected.floor() as u64;
        if self.rng.random::<f64>() < expected.fract() {
            n += 1;
        }
        if self.hour == self.hours - 1 {
            n = self.sessions_left;
        }
        n = n.min(self.sessions_left);
        self.sessions_left -= n;
        let hour_start = self.start_ms + self.hour * 3_600_000;
        let mut starts: Vec<i64> = (0..n).map(|_| hour_start + self.rng.random_range(0..3_600_000)).collect();
        starts.sort_unstable();
        for start in starts {
            self.session(start);
        }
        self.hour += 1;
        true
    }
}

impl Generator {
    /// Starts a few more sessions right after the last event when the planned ones made fewer
    /// events than asked for (a seed and span whose sessions ran short), so exactly the
    /// requested number comes out, still in time order.
    fn top_up(&mut self) {
        let missing = self.plan.events - self.emitted;
        let sessions = (missing as f64 / self.per_session).ceil().max(1.0) as u64;
        let mut starts: Vec<i64> = (0..sessions).map(|_| self.last_ms + self.rng.random_range(0..60_000)).collect();
        starts.sort_unstable();
        for start in starts {
            self.session(start);
        }
    }
}

impl Iterator for Generator {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        if self.emitted >= self.plan.events {
            return None;
        }
        loop {
            // An event is due when no session still to start could precede it: those start at
            // or after the first hour not yet started.
            let horizon = self.start_ms + self.hour * 3_600_000;
            let exhausted = self.hour >= self.hours || self.sessions_left == 0;
            match self.pending.peek() {
                Some(Reverse((time, _, _))) if *time < horizon || exhausted => break,
                None if exhausted => self.top_up(),
                _ => {
                    self.next_hour();
                }
            }
        }
        let Reverse((time, _, slot)) = self.pending.pop()?;
        self.last_ms = time;
        let item = self.made[slot].take();
        self.free.push(slot);
        self.emitted += 1;
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(events: u64, seed: u64) -> Plan {
        Plan { events, days: 3.0, end_ms: 1_795_770_000_000, sites: 3, seed }
    }

    #[test]
    fn exactly_the_requested_number_whatever_the_hour() {
        for hour in 0..24 {
            let end_ms = 1_795_770_000_000 + hour * 3_600_000 + 1_234_567;
            let events: Vec<Generated> = Generator::new(Plan { events: 4000, days: 40.0, end_ms, sites: 3, seed: 5 }).collect();
            assert_eq!(events.len(), 4000, "ending at hour {hour}");
            assert!(events.windows(2).all(|w| w[0].event.time <= w[1].event.time));
        }
    }

    #[test]
    fn deterministic_ordered_and_complete() {
        let a: Vec<Generated> = Generator::new(plan(20_000, 7)).collect();
        let b: Vec<Generated> = Generator::new(plan(20_000, 7)).collect();
        assert_eq!(a.len(), 20_000);
        assert!(a.iter().zip(&b).all(|(x, y)| x.event == y.event && x.ip == y.ip));
        assert!(a.windows(2).all(|w| w[0].event.time <= w[1].event.time), "events come in time order");
        let c: Vec<Generated> = Generator::new(plan(2_000, 8)).collect();
        assert_ne!(c[0].event, a[0].event, "another seed gives other events");
        let start = 1_795_770_000_000 - 3 * 86_400_000;
        assert!(a.iter().all(|g| g.event.time >= start && g.event.time < 1_795_770_000_000 + 3_600_000));
    }

    #[test]
    fn looks_like_click_stream_traffic() {
        let events: Vec<Generated> = Generator::new(plan(50_000, 1)).collect();
        let count = |t: &str| events.iter().filter(|g| g.event.event_type == t).count();
        let (views, engagements) = (count("pageView"), count("engagement"));
        // Every page view has its engagement event, except a few cut off at the end of the span.
        assert!(engagements <= views && views - engagements < 50, "{views} views, {engagements} engagements");
        assert!(views > 15_000 && views < 30_000, "{views}");
        assert!(count("purchase") > 50);
        // A few pages get most views.
        let home = events
            .iter()
            .filter(|g| g.event.event_type == "pageView" && g.event.url.as_deref().is_some_and(|u| u.ends_with(".com/")))
            .count();
        assert!(home * 10 > views, "the home page is the top page: {home} of {views}");
        let sessions: std::collections::HashSet<_> = events.iter().map(|g| g.event.session_id.clone()).collect();
        let visitors: std::collections::HashSet<_> = events.iter().map(|g| g.event.party_id.clone()).collect();
        assert!(visitors.len() < sessions.len(), "visitors come back");
        let ids: std::collections::HashSet<_> = events.iter().map(|g| g.event.event_id.clone()).collect();
        assert_eq!(ids.len(), events.len(), "event ids are unique");
    }
}
