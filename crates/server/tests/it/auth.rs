//! Analytics are never served without a credential: every query endpoint, in one table, so a
//! new endpoint cannot be forgotten.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oriel_core::Config;
use oriel_core::config::{ApiToken, Role};
use oriel_server::{AppState, router};
use tower::ServiceExt;

/// Every endpoint that serves or changes analytics data, with a valid body, and the role it
/// needs. A request that passes authentication gets 503 here (no store is open) or its answer.
const ENDPOINTS: &[(&str, &str, &str, Role)] = &[
    ("POST", "/api/v1/sql", r#"{"query":"SELECT 1"}"#, Role::Viewer),
    ("POST", "/api/v1/delete", r#"{"party_id":"p"}"#, Role::Admin),
    ("GET", "/api/v1/session", "", Role::Viewer),
    ("POST", "/api/v1/signin-links", r#"{"role":"viewer"}"#, Role::Admin),
];

const VIEWER: &str = "viewer-token-0123456789";

struct Fixture {
    state: AppState,
    admin: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    config.server.api_tokens = vec![ApiToken::Plain(VIEWER.into())];
    config.server.public_hosts = vec!["analytics.example.com".into()];
    let state = crate::state_in(dir.path(), &config);
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap().trim().to_string();
    Fixture { state, admin, _dir: dir }
}

async fn send(
    state: &AppState,
    method: &str,
    path: &str,
    body: &str,
    peer: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let mut request = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(name, _)| *name == "host") {
        request = request.header("host", "127.0.0.1:8080");
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    let text = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, text, cookie)
}

/// Passed authentication: 503 (the store is not open) or an answer of the endpoint itself.
fn passed(status: StatusCode) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE || status.is_success()
}

#[tokio::test]
async fn every_query_endpoint_needs_a_credential_with_the_right_role() {
    let f = fixture();
    let admin = format!("Bearer {}", f.admin);
    let viewer = format!("Bearer {VIEWER}");
    for &(method, path, body, role) in ENDPOINTS {
        let case = |what: &str| format!("{method} {path}: {what}");
        // Loopback is not trusted: reverse proxies and DNS rebinding make it meaningless.
        for peer in ["127.0.0.1:5000", "[::1]:5000", "192.0.2.7:5000"] {
            let (status, text, _) = send(&f.state, method, path, body, peer, &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case(peer));
            assert!(text.contains("analytics need a credential"), "{}: {text}", case(peer));
        }
        let (status, _, _) = send(&f.state, method, path, body, "127.0.0.1:5000", &[("x-forwarded-for", "192.0.2.7")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case("proxied"));
        let (status, text, _) =
            send(&f.state, method, path, body, "192.0.2.8:5000", &[("authorization", "Bearer wrong-token-0123456789")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case("wrong token"));
        assert!(!text.contains("wrong-token"), "the credential is never echoed: {text}");

        let (status, text, _) = send(&f.state, method, path, body, "192.0.2.9:5000", &[("authorization", &viewer)]).await;
        if role == Role::Viewer {
            assert!(passed(status), "{}: {status} {text}", case("viewer"));
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{}: {text}", case("viewer may not"));
            assert!(text.contains("needs an admin credential"), "{text}");
        }
        let (status, text, _) = send(&f.state, method, path, body, "192.0.2.9:5000", &[("authorization", &admin)]).await;
        assert!(passed(status), "{}: {status} {text}", case("admin"));

        // DNS rebinding: a page of another domain that resolves to this server.
        let (status, text, _) = send(
            &f.state,
            method,
            path,
            body,
            "127.0.0.1:5000",
            &[("authorization", &admin), ("host", "rebind.evil.example:8080")],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {text}", case("foreign host"));
        let (status, _, _) =
            send(&f.state, method, path, body, "127.0.0.1:5000", &[("authorization", &admin), ("host", "analytics.example.com")])
                .await;
        assert!(passed(status), "{}", case("configured public host"));
    }
    // The collector stays open: its answer here is 503 only because it is not started.
    let (status, _, _) = send(&f.state, "GET", "/e.gif?site=a", "", "192.0.2.7:5000", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_one_time_link_signs_a_browser_in() {
    let f = fixture();
    let code = f.state.auth().signin_code(Role::Admin);
    let (status, _, cookie) = send(&f.state, "GET", &format!("/signin?code={code}"), "", "192.0.2.7:5000", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http on loopback must still get the cookie back");
    let session = cookie.split(';').next().unwrap().to_string();
    let (status, text, _) = send(&f.state, "GET", "/api/v1/session", "", "192.0.2.7:5000", &[("cookie", &session)]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""role":"admin""#), "{text}");
    // Writes with a cookie must come from Oriel's own pages.
    let sql = r#"{"query":"SELECT 1"}"#;
    let (status, _, _) = send(&f.state, "POST", "/api/v1/sql", sql, "192.0.2.7:5000", &[("cookie", &session)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no Origin");
    let cross = [("cookie", session.as_str()), ("origin", "https://evil.example")];
    assert_eq!(send(&f.state, "POST", "/api/v1/sql", sql, "192.0.2.7:5000", &cross).await.0, StatusCode::FORBIDDEN);
    let same = [("cookie", session.as_str()), ("origin", "http://127.0.0.1:8080")];
    assert!(passed(send(&f.state, "POST", "/api/v1/sql", sql, "192.0.2.7:5000", &same).await.0));
    // The link works once.
    let (status, text, _) = send(&f.state, "GET", &format!("/signin?code={code}"), "", "192.0.2.7:5000", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let forged = session.replacen("admin", "viewer", 1);
    assert_eq!(
        send(&f.state, "GET", "/api/v1/session", "", "192.0.2.7:5000", &[("cookie", &forged)]).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_client_that_keeps_guessing_is_refused_for_a_while() {
    let f = fixture();
    for _ in 0..20 {
        let (status, _, _) = send(
            &f.state,
            "GET",
            "/api/v1/session",
            "",
            "198.51.100.1:5000",
            &[("authorization", "Bearer guess-0123456789abcdef")],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) =
        send(&f.state, "GET", "/api/v1/session", "", "198.51.100.1:5000", &[("authorization", "Bearer guess-again-0123456789")])
            .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the next wrong token waits out the block");
    // Someone else behind the same address (a proxy) with a valid credential is not locked out.
    let right = format!("Bearer {}", f.admin);
    let (status, _, _) = send(&f.state, "GET", "/api/v1/session", "", "198.51.100.1:5000", &[("authorization", &right)]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn deletions_are_rate_limited() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let store = oriel_store::Store::open(oriel_store::StoreOptions::from_config(&config), None).await.unwrap();
    f.state.store().set(store);
    let admin = format!("Bearer {}", f.admin);
    for i in 0..30 {
        let body = format!(r#"{{"party_id":"p{i}"}}"#);
        let (status, text, _) =
            send(&f.state, "POST", "/api/v1/delete", &body, "192.0.2.7:5000", &[("authorization", &admin)]).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(text, r#"{"deleted":0}"#);
    }
    let (status, text, _) =
        send(&f.state, "POST", "/api/v1/delete", r#"{"party_id":"one-more"}"#, "192.0.2.7:5000", &[("authorization", &admin)])
            .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("at most 30 deletions a minute"), "{text}");
}
