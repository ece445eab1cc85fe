//! The Divolte protocol at request level: one test per row of the reference's "bad / corrupt
//! requests" table (§2.8), plus the responses a divolte.js page relies on.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::{CHROME, Harness};

/// A request exactly as divolte.js sends it (checksum `si9804` is valid for it).
const REAL: &str = "p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8\
                    &v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f\
                    &l=http%3A%2F%2Flocalhost%3A8290%2F&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView&x=si9804";
const SENTINEL: &str = "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"";

fn csc(query: &str) -> Request<Body> {
    Request::get(format!("/csc-event?{query}")).header("user-agent", CHROME).body(Body::empty()).unwrap()
}

async fn pixel_answer(h: &Harness, query: &str) {
    let (status, headers, body) = h.send(csc(query)).await;
    assert_eq!(status, StatusCode::OK, "{query}");
    // Divolte's src/main/resources/transparent1x1.gif, byte for byte.
    let divolte_gif = "4749463839610100010000000021f904010a0001002c00000000010001000002024c01003b";
    assert_eq!(body.iter().map(|b| format!("{b:02x}")).collect::<String>(), divolte_gif);
    assert_eq!(headers["content-type"], "image/gif");
    assert_eq!(headers["etag"], SENTINEL);
    assert_eq!(headers["cache-control"], "private, no-cache, proxy-revalidate");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(headers["expires"], "Fri, 14 Apr 1995 11:30:00 GMT");
    assert_eq!(headers["server"], "divolte");
}

#[tokio::test]
async fn valid_request_is_stored_with_every_field() {
    let h = Harness::new();
    pixel_answer(&h, REAL).await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    let e = &stored[0];
    assert_eq!(e["source"], "divolte");
    assert_eq!(e["is_corrupt"], false);
    assert_eq!(e["party_id"], "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG");
    assert_eq!(e["session_id"], "0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8");
    assert_eq!(e["page_view_id"], "0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF");
    assert_eq!(e["event_id"], "0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0");
    assert_eq!(e["client_time"], 1_414_499_908_146i64);
    assert_eq!(e["url"], "http://localhost:8290/");
    assert_eq!(e["host"], "localhost");
    assert_eq!(e["screen_width"], 1676);
    assert_eq!(e["viewport_height"], 949);
    assert_eq!(e["pixel_ratio"], 2.0);
    assert_eq!(e["event_type"], "pageView");
    assert_eq!(e["is_new_party"], false);
    assert_eq!(e["browser"], "Chrome");
    assert_eq!(e["__time"], super::NOW);
}

#[tokio::test]
async fn checksum_missing_or_wrong_is_stored_as_corrupt() {
    let h = Harness::new();
    pixel_answer(&h, &REAL.replace("x=si9804", "x=si9805")).await;
    pixel_answer(&h, &REAL.replace("&x=si9804", "").replace("0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0", "other-event")).await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|e| e["is_corrupt"] == true));
}

#[tokio::test]
async fn duplicate_is_stored_flagged() {
    let h = Harness::new();
    pixel_answer(&h, REAL).await;
    pixel_answer(&h, REAL).await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["is_duplicate"], false);
    assert_eq!(stored[1]["is_duplicate"], true);
}

#[tokio::test]
async fn revalidating_the_sentinel_etag_gets_304_and_stores_nothing() {
    let h = Harness::new();
    let request = Request::get(format!("/csc-event?{REAL}")).header("if-none-match", SENTINEL).body(Body::empty()).unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers["etag"], SENTINEL);
    assert!(h.stored().await.is_empty());
}

#[tokio::test]
async fn missing_or_invalid_party_gets_the_pixel_and_stores_nothing() {
    let h = Harness::new();
    pixel_answer(&h, &REAL.replace("p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&", "")).await;
    pixel_answer(&h, &REAL.replace("p=0%3Ai1t84hgy", "p=9%3Ai1t84hgy")).await;
    assert!(h.stored().await.is_empty());
}

#[tokio::test]
async fn other_required_parameters_missing_or_invalid_store_nothing() {
    let h = Harness::new();
    for name in ["s", "v", "e", "n", "f", "c"] {
        let without: Vec<&str> = REAL.split('&').filter(|p| !p.starts_with(&format!("{name}="))).collect();
        pixel_answer(&h, &without.join("&")).await;
    }
    pixel_answer(&h, &REAL.replace("s=0%3Ai1t84hgy", "s=0%3A%3F%3F")).await;
    pixel_answer(&h, &REAL.replace("c=i1t8q2b6", "c=i1t8.q2b6")).await;
    assert!(h.stored().await.is_empty());
}

#[tokio::test]
async fn unparseable_custom_parameters_are_stored_without_props() {
    let h = Harness::new();
    pixel_answer(&h, &format!("{REAL}&u=%28sfoo%21bar")).await;
    let signup = REAL.replace("0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0", "e2").replace("t=pageView", "t=signup");
    pixel_answer(&h, &format!("{signup}&u=%28sfoo%21bar%21%29")).await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 2);
    assert!(stored[0].get("props").is_none());
    assert_eq!(stored[1]["props"], r#"{"foo":"bar"}"#);
}

#[tokio::test]
async fn unparseable_numbers_are_stored_absent() {
    let h = Harness::new();
    pixel_answer(&h, &REAL.replace("i=1ak", "i=1.5").replace("k=2", "k=1.i")).await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].get("screen_width").is_none());
    assert!(stored[0].get("pixel_ratio").is_none());
    assert_eq!(stored[0]["screen_height"], 1027);
}

#[tokio::test]
async fn json_source_stores_valid_bodies_and_counts_invalid_ones() {
    let h = Harness::new();
    let body = r#"{"session_id":"0:k:s","event_id":"e1","is_new_party":true,"is_new_session":true,"client_timestamp_iso":"2026-11-27T09:00:00Z","event_type":"appOpen","parameters":{"v":2}}"#;
    let send = |b: &str| {
        Request::post("/json?p=0%3AK%3Aparty").header("content-type", "application/json").body(Body::from(b.to_string())).unwrap()
    };
    let (status, headers, _) = h.send(send(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["server"], "divolte");
    // Divolte answers 204 before parsing, so a bad body is answered the same way, and dropped.
    assert_eq!(h.send(send(r#"{"session_id":"0:k:s"}"#)).await.0, StatusCode::NO_CONTENT);
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["party_id"], "0:k:party");
    assert_eq!(stored[0]["event_type"], "appOpen");
    assert_eq!(stored[0]["props"], r#"{"v":2}"#);
    assert_eq!(stored[0]["client_time"], 1_795_770_000_000i64);
    assert_eq!(stored[0]["is_corrupt"], false);
}

#[tokio::test]
async fn divolte_js_is_served_like_divolte_serves_it() {
    let h = Harness::new();
    let (status, headers, body) = h.send(Request::get("/divolte.js").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/javascript; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("__DIVOLTE_CONFIG__"), "settings must be baked in");
    assert!(text.contains("\"partyCookie\":\"_dvp\""), "{text:.200}");
    let etag = headers["etag"].clone();
    let again = Request::get("/divolte.js").header("if-none-match", etag).body(Body::empty()).unwrap();
    assert_eq!(h.send(again).await.0, StatusCode::NOT_MODIFIED);
    let gz = Request::get("/divolte.js").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
    let (_, headers, _) = h.send(gz).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers["etag"].to_str().unwrap().starts_with("\"gz+"));
    let (status, headers, body) = h.send(Request::put("/divolte.js").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET");
    assert_eq!(body, b"HTTP method PUT not allowed.");
}
