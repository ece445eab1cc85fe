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
    ("GET", "/api/v1/deletions", "", Role::Admin),
    ("GET", "/api/v1/export?party_id=p", "", Role::Admin),
    ("GET", "/api/v1/session", "", Role::Viewer),
    ("POST", "/api/v1/signin-links", r#"{"role":"viewer"}"#, Role::Admin),
    ("POST", "/api/v1/query", r#"{"range":{"preset":"today"},"measures":["events"]}"#, Role::Viewer),
    ("GET", "/api/v1/live?site=s", "", Role::Viewer),
    ("GET", "/api/v1/sites", "", Role::Viewer),
    ("GET", "/api/v1/dimensions", "", Role::Viewer),
    ("GET", "/api/v1/data", "", Role::Viewer),
    ("POST", "/api/v1/analytics/sessions", r#"{"range":{"preset":"today"}}"#, Role::Viewer),
    ("POST", "/api/v1/analytics/funnel", r#"{"range":{"preset":"today"},"steps":[{"path":"/"},{"path":"/a"}]}"#, Role::Viewer),
    ("POST", "/api/v1/analytics/retention", r#"{"range":{"preset":"28d"}}"#, Role::Viewer),
    ("POST", "/api/v1/analytics/paths", r#"{"range":{"preset":"today"},"from":"/"}"#, Role::Viewer),
    ("GET", "/api/v1/goals", "", Role::Viewer),
    ("PUT", "/api/v1/goals/signup", r#"{"eventType":"signup"}"#, Role::Admin),
    ("DELETE", "/api/v1/goals/signup", "", Role::Admin),
    ("POST", "/druid/v2/sql", r#"{"query":"SELECT 1"}"#, Role::Viewer),
    ("POST", "/druid/v2/sql/", r#"{"query":"SELECT 1"}"#, Role::Viewer),
    ("POST", "/druid/v2", r#"{"queryType":"timeBoundary","dataSource":"events"}"#, Role::Viewer),
    ("POST", "/druid/v2/", r#"{"queryType":"timeBoundary","dataSource":"events"}"#, Role::Viewer),
    ("GET", "/druid/v2/datasources", "", Role::Viewer),
    ("GET", "/druid/v2/datasources/", "", Role::Viewer),
    ("GET", "/druid/v2/datasources/events", "", Role::Viewer),
    ("GET", "/druid/broker/v1/loadstatus", "", Role::Viewer),
    ("GET", "/druid/broker/v1/readiness", "", Role::Viewer),
    ("GET", "/status", "", Role::Viewer),
];

const VIEWER: &str = "viewer-token-0123456789";
/// Users of `server.users`: name, password, role.
const USERS: [(&str, &str, Role); 2] = [("vera", "vera's password", Role::Viewer), ("adam", "adam's password", Role::Admin)];

fn basic(name: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}")))
}

struct Fixture {
    state: AppState,
    admin: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    config.server.api_tokens = vec![ApiToken::Plain(VIEWER.into())];
    config.server.users = USERS
        .iter()
        .map(|(name, password, role)| oriel_core::config::User {
            name: (*name).into(),
            role: *role,
            password_hash: oriel_server::auth::hash_password(password).unwrap(),
        })
        .collect();
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
    for (index, &(method, path, body, role)) in ENDPOINTS.iter().enumerate() {
        let case = |what: &str| format!("{method} {path}: {what}");
        // Each endpoint's wrong credentials come from an address of its own, within the limit.
        let guesser = format!("192.0.2.{}:5000", 100 + index);
        let guesser = guesser.as_str();
        // Loopback is not trusted: reverse proxies and DNS rebinding make it meaningless.
        for peer in ["127.0.0.1:5000", "[::1]:5000", "192.0.2.7:5000"] {
            let (status, text, _) = send(&f.state, method, path, body, peer, &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case(peer));
            assert!(text.contains("analytics need a credential"), "{}: {text}", case(peer));
        }
        let (status, _, _) = send(&f.state, method, path, body, "127.0.0.1:5000", &[("x-forwarded-for", "192.0.2.7")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case("proxied"));
        let (status, text, _) =
            send(&f.state, method, path, body, guesser, &[("authorization", "Bearer wrong-token-0123456789")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case("wrong token"));
        assert!(!text.contains("wrong-token"), "the credential is never echoed: {text}");

        let (status, text, _) =
            send(&f.state, method, path, body, guesser, &[("authorization", &basic("vera", "not her password"))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case("wrong password"));
        assert!(!text.contains("not her password"), "the password is never echoed: {text}");
        let (status, _, _) =
            send(&f.state, method, path, body, guesser, &[("authorization", &basic("nobody", "vera's password"))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case("unknown user"));

        let viewers = [viewer.clone(), basic(USERS[0].0, USERS[0].1)];
        for credential in &viewers {
            let (status, text, _) = send(&f.state, method, path, body, "192.0.2.9:5000", &[("authorization", credential)]).await;
            if role == Role::Viewer {
                assert!(passed(status), "{}: {status} {text}", case("viewer"));
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{}: {text}", case("viewer may not"));
                assert!(text.contains("needs an admin credential"), "{text}");
            }
        }
        for credential in [admin.clone(), basic(USERS[1].0, USERS[1].1)] {
            let (status, text, _) = send(&f.state, method, path, body, "192.0.2.9:5000", &[("authorization", &credential)]).await;
            assert!(passed(status), "{}: {status} {text}", case("admin"));
        }

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
    // So does Druid's health check, which tells nothing about the data.
    assert_eq!(send(&f.state, "GET", "/status/health", "", "192.0.2.7:5000", &[]).await.1, "true");
}

#[tokio::test]
async fn a_user_signs_a_browser_in_with_a_password() {
    let f = fixture();
    let (status, text, cookie) =
        send(&f.state, "POST", "/api/v1/signin", r#"{"name":"vera","password":"vera's password"}"#, "192.0.2.7:5000", &[]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, r#"{"name":"vera","role":"viewer"}"#);
    let session = cookie.unwrap().split(';').next().unwrap().to_string();
    let (status, text, _) = send(&f.state, "GET", "/api/v1/session", "", "192.0.2.7:5000", &[("cookie", &session)]).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"name":"vera","role":"viewer"}"#));
    let (status, _, _) =
        send(&f.state, "POST", "/api/v1/signin", r#"{"name":"vera","password":"wrong"}"#, "192.0.2.7:5000", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A form on another site cannot sign a browser in.
    let (status, _, _) = send(
        &f.state,
        "POST",
        "/api/v1/signin",
        r#"{"name":"vera","password":"vera's password"}"#,
        "192.0.2.7:5000",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, cleared) = send(&f.state, "POST", "/api/v1/signout", "", "192.0.2.7:5000", &[("cookie", &session)]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(cleared.unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn a_client_that_keeps_guessing_passwords_gets_no_more_checks() {
    let f = fixture();
    for _ in 0..20 {
        let wrong = [("authorization", basic("vera", "guess"))];
        let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(send(&f.state, "GET", "/api/v1/session", "", "198.51.100.2:5000", &wrong).await.0, StatusCode::UNAUTHORIZED);
    }
    let again = basic("vera", "another guess");
    let (status, _, _) = send(&f.state, "GET", "/api/v1/session", "", "198.51.100.2:5000", &[("authorization", &again)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) =
        send(&f.state, "POST", "/api/v1/signin", r#"{"name":"vera","password":"x"}"#, "198.51.100.2:5000", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the sign-in form counts the same failures");
    // Another address is not affected.
    let right = basic("vera", "vera's password");
    assert_eq!(
        send(&f.state, "GET", "/api/v1/session", "", "198.51.100.3:5000", &[("authorization", &right)]).await.0,
        StatusCode::OK
    );
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
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (answer["deleted"].as_u64(), answer["receipt"]["party_id"].as_str()),
            (Some(0), Some(format!("p{i}").as_str()))
        );
        assert_eq!(answer["receipt"]["requested_by"], "admin token");
    }
    let (status, text, _) =
        send(&f.state, "POST", "/api/v1/delete", r#"{"party_id":"one-more"}"#, "192.0.2.7:5000", &[("authorization", &admin)])
            .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("at most 30 deletions a minute"), "{text}");
}

/// An ingest node's cluster API takes the cluster's token and nothing else: not the admin
/// token, not a viewer's; it exists only on an ingest node; bad parameters are a 400.
#[tokio::test]
async fn the_cluster_api_needs_the_cluster_token_and_only_that() {
    const CLUSTER: &str = "the-cluster-token-of-more-than-32-characters";
    let path = "/internal/v1/live";
    let serve = fixture();
    let (status, _, _) =
        send(&serve.state, "GET", path, "", "127.0.0.1:5000", &[("authorization", &format!("Bearer {CLUSTER}"))]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "oriel serve has no cluster API");

    let f = fixture();
    f.state.set_role(oriel_core::config::NodeRole::Ingest);
    f.state.set_cluster_token(CLUSTER.into());
    let admin = format!("Bearer {}", f.admin);
    let viewer = format!("Bearer {VIEWER}");
    let wrong = format!("Bearer {CLUSTER}x");
    for (what, headers) in [
        ("no credential", vec![]),
        ("the admin token", vec![("authorization", admin.as_str())]),
        ("a viewer token", vec![("authorization", viewer.as_str())]),
        ("a wrong cluster token", vec![("authorization", wrong.as_str())]),
        ("a user's password", vec![("authorization", "Basic YWRhbTphZGFtJ3MgcGFzc3dvcmQ=")]),
    ] {
        let (status, text, _) = send(&f.state, "GET", path, "", "127.0.0.1:5000", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {text}");
    }
    let right = format!("Bearer {CLUSTER}");
    let (status, _, _) = send(&f.state, "GET", path, "", "127.0.0.1:5000", &[("authorization", &right)]).await;
    assert!(passed(status), "the cluster token: {status}");
    for bad in ["?after=abc", "?instance=-1&after=2", "?from=1"] {
        let (status, text, _) =
            send(&f.state, "GET", &format!("{path}{bad}"), "", "127.0.0.1:5000", &[("authorization", &right)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {text}");
    }
    // The ingest node serves no analytics.
    let (status, _, _) =
        send(&f.state, "POST", "/api/v1/sql", r#"{"query":"SELECT 1"}"#, "127.0.0.1:5000", &[("authorization", &admin)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
