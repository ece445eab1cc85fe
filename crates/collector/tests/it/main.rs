//! Integration tests of [`Collector::accept`] over a memory log: the policy every protocol
//! passes, and the caps on what one request may store. (The HTTP endpoints are tested in
//! `oriel-server`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Tests may unwrap and print (STYLE.md 5).

use std::net::IpAddr;
use std::sync::Arc;

use oriel_collector::{Collector, Error, Payload, Privacy, Request};
use oriel_core::config::SiteConfig;
use oriel_core::{Config, MockClock};
use oriel_log::{EventLog, MemoryLog};
use serde_json::Value;

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

struct Fixture {
    collector: Collector,
    log: Arc<dyn EventLog>,
    _dir: tempfile::TempDir,
}

fn fixture(adjust: impl FnOnce(&mut Config)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        sites: vec![SiteConfig { id: "shop".into(), origins: vec!["https://shop.example.com".into()], ..SiteConfig::default() }],
        ..Config::default()
    };
    config.collector.divolte.site = "shop".into();
    adjust(&mut config);
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new(1));
    let collector = Collector::new(&config, log.clone(), Arc::new(MockClock::new(1_795_770_000_000))).unwrap();
    Fixture { collector, log, _dir: dir }
}

impl Fixture {
    async fn stored(&self) -> Vec<Value> {
        let records = self.log.read(0, 0, usize::MAX).await.unwrap();
        records.iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect()
    }

    async fn stored_bytes(&self) -> usize {
        self.log.read(0, 0, usize::MAX).await.unwrap().iter().map(|r| r.value.len()).sum()
    }
}

fn request<'a>(user_agent: &'a str, privacy: Privacy<'a>) -> Request<'a> {
    Request { peer: IpAddr::from([203, 0, 113, 9]), forwarded_for: None, user_agent, privacy }
}

const DIVOLTE: &str = "p=0:k:a&s=0:k:b&v=v&e=e&c=k&n=t&f=t&t=pageView";

/// One policy for every protocol: a foreign origin is refused, an opt-out stores nothing, and
/// each protocol answers it its own way (a 403 for Oriel's, a counted refusal for Divolte's).
#[tokio::test]
async fn the_site_and_privacy_policy_applies_to_every_protocol() {
    let f = fixture(|_| {});
    let tag = br#"{"site":"shop","ev":[{"t":"x"}]}"#;
    let foreign = Privacy { origin: Some("https://evil.example"), ..Privacy::default() };
    let opted_out = Privacy { origin: Some("https://shop.example.com"), opted_out: true, ..Privacy::default() };
    let payloads = [
        Payload::Tag(tag),
        Payload::Pixel("site=shop&t=x"),
        Payload::DivolteEvent(DIVOLTE),
        Payload::DivolteJson {
            party: Some("0:k:p"),
            body: br#"{"session_id":"0:k:s","event_id":"e","is_new_party":true,"is_new_session":true,"client_timestamp_iso":"2026-11-27T10:00:00Z"}"#,
        },
    ];
    for payload in payloads {
        let refused = f.collector.accept(payload, &request(CHROME, foreign)).await.unwrap_err();
        assert!(matches!(refused, Error::Forbidden(_) | Error::Refused(_)), "{payload:?}: {refused}");
        assert!(refused.to_string().contains("origin https://evil.example may not send events"), "{refused}");
        let outcome = f.collector.accept(payload, &request(CHROME, opted_out)).await.unwrap();
        assert_eq!(outcome.stored, 0, "{payload:?}");
    }
    assert!(f.stored().await.is_empty());
    // A pixel judged by its Referer, as an <img> sends no Origin.
    let from_page = Privacy { referer: Some("https://evil.example/page"), ..Privacy::default() };
    assert!(f.collector.accept(Payload::Pixel("site=shop"), &request(CHROME, from_page)).await.is_err());
    let ok = Privacy { origin: Some("https://shop.example.com"), ..Privacy::default() };
    assert_eq!(f.collector.accept(Payload::Tag(tag), &request(CHROME, ok)).await.unwrap().stored, 1);
}

/// Regression: a 300 KB `User-Agent` was parsed and stored (`browser_version` was 300,000
/// bytes), and the user-agent cache kept whole strings as keys.
#[tokio::test]
async fn the_user_agent_is_cut_before_parsing_and_storing() {
    let f = fixture(|_| {});
    let huge = format!("Mozilla/5.0 (X11; Linux x86_64) Chrome/1{} Safari/537.36", "2".repeat(300_000));
    let body = br#"{"site":"a","ev":[{"t":"x"},{"t":"y"}]}"#;
    f.collector.accept(Payload::Tag(body), &request(&huge, Privacy::default())).await.unwrap();
    for event in f.stored().await {
        for (key, value) in event.as_object().unwrap() {
            if let Some(text) = value.as_str() {
                assert!(text.len() <= 512, "{key} is {} bytes", text.len());
            }
        }
    }
    assert!(f.stored_bytes().await < 4096, "{} bytes stored for two tiny events", f.stored_bytes().await);
}

/// Regression: ids shared by a batch are copied into every event, so long ones multiplied a
/// small body into megabytes of log; identifiers now have their own, shorter cap.
#[tokio::test]
async fn identifiers_have_their_own_cap() {
    let f = fixture(|_| {});
    let long = "v".repeat(4000);
    let body = format!(r#"{{"site":"a","vid":"{long}","ev":[{}]}}"#, vec![r#"{"t":"x"}"#; 50].join(","));
    let err = f.collector.accept(Payload::Tag(body.as_bytes()), &request(CHROME, Privacy::default())).await.unwrap_err();
    assert!(err.to_string().contains("vid is 4000 bytes, more than the limit of 256"), "{err}");
    assert!(f.stored().await.is_empty());
}

/// Regression: Divolte's `POST /json?p=` stored a 60 KB party id.
#[tokio::test]
async fn a_divolte_party_id_over_the_cap_is_refused() {
    let f = fixture(|_| {});
    let party = format!("0:k:{}", "p".repeat(60_000));
    let body = br#"{"session_id":"0:k:s","event_id":"e","is_new_party":true,"is_new_session":true,"client_timestamp_iso":"2026-11-27T10:00:00Z"}"#;
    let err = f
        .collector
        .accept(Payload::DivolteJson { party: Some(&party), body }, &request(CHROME, Privacy::default()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid party id"), "{err}");
    assert!(f.stored().await.is_empty());
}
