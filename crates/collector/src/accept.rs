//! [`Collector::accept`]: the one entry point from a request to durable events.
//!
//! The HTTP layer reads the body (within [`Limits::max_body_bytes`](crate::limits::Limits)),
//! picks the headers that matter into a [`Request`], and hands over the [`Payload`] as it
//! arrived. Here it is decoded by its protocol, judged by the site and privacy
//! [`policy`](crate::policy) (the same for every protocol), completed and made durable.

use std::net::IpAddr;

use oriel_core::Event;

use crate::divolte;
use crate::enrich::Client;
use crate::metrics::rejected;
use crate::pipeline::{Collector, Outcome};
use crate::policy::{self, Privacy, Verdict};
use crate::sites::Site;
use crate::{Error, Result, wire};

/// What one request carries, as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// `POST /e`: a batch from the tag.
    Tag(&'a [u8]),
    /// `GET /e.gif`: the query string.
    Pixel(&'a str),
    /// `POST /api/v1/events`: the body and the bearer write key.
    Api {
        /// The JSON body.
        body: &'a [u8],
        /// The write key from `Authorization: Bearer`.
        write_key: Option<&'a str>,
    },
    /// `GET /csc-event`: Divolte's browser event in the query string.
    DivolteEvent(&'a str),
    /// `POST /json?p=`: Divolte's mobile and server event.
    DivolteJson {
        /// The `p` parameter.
        party: Option<&'a str>,
        /// The JSON body.
        body: &'a [u8],
    },
}

impl Payload<'_> {
    /// The protocol's name in metrics.
    fn source(&self) -> &'static str {
        match self {
            Self::Tag(_) => "tag",
            Self::Pixel(_) => "pixel",
            Self::Api { .. } => "api",
            Self::DivolteEvent(_) | Self::DivolteJson { .. } => "divolte",
        }
    }

    /// Whether the payload may carry many events.
    fn is_batch(&self) -> bool {
        matches!(self, Self::Tag(_) | Self::Api { .. })
    }

    /// Whether the protocol answers success whatever it receives (Divolte does).
    fn always_succeeds(&self) -> bool {
        matches!(self, Self::DivolteEvent(_) | Self::DivolteJson { .. })
    }
}

/// The connection and the headers the collector needs.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The connecting address.
    pub peer: IpAddr,
    /// The `X-Forwarded-For` values, joined with commas (believed only from trusted proxies).
    pub forwarded_for: Option<&'a str>,
    /// The `User-Agent` header as sent; it is cut to `collector.max_user_agent_bytes` here.
    pub user_agent: &'a str,
    /// Origin, Referer and opt-out signals.
    pub privacy: Privacy<'a>,
}

impl Collector {
    /// Decodes `payload`, applies the site and privacy policy, enriches the events and returns
    /// once they are durable in the log. Refusals are counted by protocol and reason; for
    /// Divolte, whose clients get the same answer whatever happened, a refused event is an
    /// [`Error::Refused`] the HTTP layer answers like a success.
    pub async fn accept(&self, payload: Payload<'_>, request: &Request<'_>) -> Result<Outcome> {
        let admitted = off_the_async_threads(payload.is_batch(), || {
            self.admit(payload, request)?.map(|events| self.encode(events)).transpose()
        })?;
        match admitted {
            Some(encoded) => self.append(encoded).await,
            None => Ok(Outcome::default()),
        }
    }

    /// Everything but the append: decode, policy, completion. `None` when the user opted out
    /// and nothing is to be stored.
    fn admit(&self, payload: Payload<'_>, request: &Request<'_>) -> Result<Option<Vec<Event>>> {
        let user_agent = self.limits.user_agent(request.user_agent);
        let client = self.enricher.client(request.peer, request.forwarded_for, user_agent);
        let (mut events, site) = match payload {
            Payload::Tag(body) => {
                let decoded = wire::tag::decode(body, &self.limits).map_err(|r| refuse(&payload, "malformed", r))?;
                (decoded.events, self.site(decoded.site.as_deref())?)
            }
            Payload::Pixel(query) => {
                if query.len() > self.limits.max_body_bytes {
                    rejected(payload.source(), "too_large");
                    return Err(Error::TooLarge { limit: self.limits.max_body_bytes });
                }
                let decoded = wire::pixel::decode(query, request.privacy.referer, &self.limits)
                    .map_err(|r| refuse(&payload, "malformed", r))?;
                (vec![decoded.event], self.site(decoded.site.as_deref())?)
            }
            Payload::Api { body, write_key } => return self.admit_api(body, write_key, &client).map(Some),
            Payload::DivolteEvent(query) => {
                let event = if query.len() > self.limits.max_body_bytes {
                    Err(divolte::query::Rejected::TooLong("query"))
                } else {
                    divolte::query::parse_event(query, &self.limits)
                };
                let event = event.map_err(|r| refuse(&payload, r.reason(), r.to_string()))?;
                (vec![event], self.divolte_site())
            }
            Payload::DivolteJson { party, body } => {
                let party = divolte::json::party(party, &self.limits).ok_or_else(|| {
                    rejected(payload.source(), "bad_identifier");
                    Error::BadRequest("missing or invalid party id parameter p".into())
                })?;
                let event =
                    divolte::json::parse_event(party, body, &self.limits).map_err(|r| refuse(&payload, "malformed", r))?;
                (vec![event], self.divolte_site())
            }
        };
        match policy::judge(&site, &request.privacy) {
            Verdict::Accept => {}
            Verdict::OptedOut => {
                rejected(payload.source(), "do_not_track");
                return Ok(None);
            }
            Verdict::WrongOrigin(reason) => {
                rejected(payload.source(), "origin");
                return Err(if payload.always_succeeds() { Error::Refused(reason) } else { Error::Forbidden(reason) });
            }
        }
        self.prepare(&mut events, &site, &client, self.now_ms());
        Ok(Some(events))
    }

    /// `POST /api/v1/events`: the write key names the site, and each event may name its own
    /// end user (the caller is a server, not the visitor).
    fn admit_api(&self, body: &[u8], write_key: Option<&str>, caller: &Client) -> Result<Vec<Event>> {
        let site: Site = write_key.and_then(|k| self.sites.by_write_key(k)).cloned().ok_or(Error::Unauthorized)?;
        let items = wire::api::decode(body, &self.limits).map_err(|r| {
            rejected("api", "malformed");
            Error::BadRequest(r)
        })?;
        let now = self.now_ms();
        let mut events = Vec::with_capacity(items.len());
        for item in items {
            let end_user = Client {
                ip: item.ip.unwrap_or(caller.ip),
                user_agent: item.user_agent.unwrap_or_else(|| caller.user_agent.clone()),
            };
            let mut one = vec![item.event];
            self.prepare(&mut one, &site, &end_user, now);
            events.extend(one);
        }
        Ok(events)
    }
}

/// Runs `work` so that it does not hold up the async threads when it is `heavy`: decoding and
/// enriching a batch of up to a hundred events takes longer than async code may block, and
/// the same threads answer `/healthz` and every other request. On a multi-threaded runtime the
/// thread hands its other tasks to a sibling while it works; a single event is cheaper than
/// that hand-over and runs in place.
fn off_the_async_threads<T>(heavy: bool, work: impl FnOnce() -> T) -> T {
    let multi_thread =
        tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if heavy && multi_thread { tokio::task::block_in_place(work) } else { work() }
}

/// Counts a payload refused for `reason` and builds its error: a 400 for Oriel's protocols, a
/// refusal answered like a success for Divolte's.
fn refuse(payload: &Payload<'_>, reason: &'static str, message: String) -> Error {
    rejected(payload.source(), reason);
    if payload.always_succeeds() {
        tracing::debug!(%message, reason, "divolte event refused");
        Error::Refused(message)
    } else {
        Error::BadRequest(message)
    }
}
