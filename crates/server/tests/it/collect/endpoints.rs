//! The endpoints' happy paths, and what enrichment adds.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::{CHROME, Harness, WRITE_KEY, post_e};

const BATCH: &str = r#"{"site":"shop","vid":"V1","sid":"S1","uid":"u-7","sw":1920,"sh":1080,"vw":1280,"vh":700,"dpr":2,"lang":"en-GB",
  "ev":[{"id":"e1","t":"pageView","ts":1795769999000,"pv":"P1","url":"https://shop.example.com/sale?utm_source=news&utm_medium=email&utm_campaign=nov",
         "ref":"https://mail.google.com/","ti":"Sale <b>now</b>","nv":true,"fs":true},
        {"id":"e2","t":"addToCart","pv":"P1","url":"https://shop.example.com/sale","p":{"sku":"A-1","qty":2,"tags":["x"]}}]}"#;

#[tokio::test]
async fn tag_batch_is_stored_enriched() {
    let h = Harness::new();
    let request = Request::post("/e")
        .header("origin", "https://shop.example.com")
        .header("user-agent", CHROME)
        .header("x-forwarded-for", "8.8.8.8")
        .body(Body::from(BATCH))
        .unwrap();
    // The connection comes from a trusted proxy, so X-Forwarded-For names the client.
    let (status, headers, _) = h.send_from("10.1.2.3", request).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "https://shop.example.com");
    let stored = h.stored().await;
    assert_eq!(stored.len(), 2);
    let pv = stored.iter().find(|e| e["event_id"] == "e1").unwrap();
    assert_eq!(pv["site"], "shop");
    assert_eq!(pv["party_id"], "V1");
    assert_eq!(pv["session_id"], "S1");
    assert_eq!(pv["user_id"], "u-7");
    assert_eq!(pv["host"], "shop.example.com");
    assert_eq!(pv["path"], "/sale");
    assert_eq!(pv["utm_campaign"], "nov");
    assert_eq!(pv["channel"], "email");
    assert_eq!(pv["referrer_host"], "mail.google.com");
    assert_eq!(pv["title"], "Sale <b>now</b>");
    assert_eq!(pv["country"], "US", "8.8.8.8 is in the US according to the GeoIP database");
    assert_eq!(pv["ip"], "8.8.8.0", "stored anonymised");
    assert_eq!(pv["browser"], "Chrome");
    assert_eq!(pv["os"], "Windows");
    assert_eq!(pv["device_type"], "desktop");
    assert_eq!(pv["is_bot"], false);
    assert_eq!(pv["language"], "en-GB");
    assert_eq!(pv["pixel_ratio"], 2.0);
    assert_eq!(pv["client_time"], 1_795_769_999_000i64);
    assert_eq!(pv["__time"], super::NOW);
    assert_eq!(pv["source"], "tag");
    let cart = stored.iter().find(|e| e["event_id"] == "e2").unwrap();
    assert_eq!(cart["props"], r#"{"qty":2,"sku":"A-1","tags":["x"]}"#);
}

#[tokio::test]
async fn location_comes_from_the_database() {
    let h = Harness::new();
    for (ip, country) in [("1.1.1.1", "AU"), ("2a00:1450:4001::1", "IE")] {
        let (status, _, _) = h.send_from(ip, post_e(r#"{"site":"a","ev":[{"t":"x"}]}"#)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let last = h.stored().await.into_iter().find(|e| e["country"] == country);
        assert!(last.is_some(), "{ip} should be located in {country}");
    }
    // An untrusted peer's X-Forwarded-For is ignored.
    let spoofed =
        Request::post("/e").header("x-forwarded-for", "8.8.8.8").body(Body::from(r#"{"site":"b","ev":[{"t":"x"}]}"#)).unwrap();
    h.send_from("1.1.1.1", spoofed).await;
    let stored = h.stored().await;
    let b = stored.iter().find(|e| e["site"] == "b").unwrap();
    assert_eq!(b["country"], "AU");
}

#[tokio::test]
async fn cookieless_sites_get_server_derived_ids() {
    let h = Harness::new();
    let send = |ua: &'static str| {
        Request::post("/e")
            .header("user-agent", ua)
            .body(Body::from(r#"{"site":"private","vid":"client-id","ev":[{"t":"pageView"}]}"#))
            .unwrap()
    };
    h.send(send(CHROME)).await;
    h.send(send(CHROME)).await;
    h.send(send("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")).await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|e| e["party_id"] != "client-id"), "a cookieless site never keeps client ids");
    let chrome: Vec<_> = stored.iter().filter(|e| e["browser"] == "Chrome").collect();
    assert_eq!(chrome[0]["party_id"], chrome[1]["party_id"]);
    assert_eq!(chrome[0]["session_id"], chrome[1]["session_id"]);
    let firefox = stored.iter().find(|e| e["browser"] == "Firefox").unwrap();
    assert_ne!(firefox["party_id"], chrome[0]["party_id"]);
}

#[tokio::test]
async fn bots_and_duplicates_are_flagged_or_dropped() {
    let h = Harness::new();
    let bot = Request::post("/e").header("user-agent", "curl/8.5.0").body(Body::from(r#"{"ev":[{"id":"d1","t":"x"}]}"#)).unwrap();
    h.send(bot).await;
    h.send(post_e(r#"{"ev":[{"id":"d1","t":"x"}]}"#)).await;
    let stored = h.stored().await;
    let bot = stored.iter().find(|e| e["is_bot"] == true).unwrap();
    assert_eq!(bot["device_type"], "bot");
    let repeat = stored.iter().find(|e| e["is_bot"] == false).unwrap();
    assert_eq!(repeat["is_duplicate"], true);

    let mut config = super::config();
    config.collector.drop_bots = true;
    config.collector.drop_duplicates = true;
    let dropping = Harness::with_config(config);
    let bot = Request::post("/e").header("user-agent", "Googlebot/2.1").body(Body::from(r#"{"ev":[{"t":"x"}]}"#)).unwrap();
    assert_eq!(dropping.send(bot).await.0, StatusCode::NO_CONTENT);
    dropping.send(post_e(r#"{"ev":[{"id":"k","t":"x"},{"id":"k","t":"x"}]}"#)).await;
    assert_eq!(dropping.stored().await.len(), 1);
}

#[tokio::test]
async fn do_not_track_is_honoured_on_the_server_too() {
    let h = Harness::new();
    let request = Request::post("/e").header("sec-gpc", "1").body(Body::from(r#"{"ev":[{"t":"x"}]}"#)).unwrap();
    assert_eq!(h.send(request).await.0, StatusCode::NO_CONTENT);
    assert!(h.stored().await.is_empty());
}

#[tokio::test]
async fn pixel_and_api_events() {
    let h = Harness::new();
    let pixel = Request::get("/e.gif?site=news&t=emailOpen&vid=V&p=%7B%22issue%22%3A12%7D")
        .header("referer", "https://news.example.com/issue/12")
        .header("user-agent", CHROME)
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = h.send(pixel).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/gif");
    assert_eq!(headers["cache-control"], "no-store, max-age=0");
    assert_eq!(&body[..6], b"GIF89a");
    // A site restricted to its origins: a pixel from one of its pages, or from nowhere (an
    // e-mail client sends no Referer), is taken; bad_input.rs has the refused foreign page.
    for referer in [Some("https://shop.example.com/cart"), None] {
        let mut request = Request::get("/e.gif?site=shop&t=pageView&url=https%3A%2F%2Fshop.example.com%2Fcart");
        if let Some(r) = referer {
            request = request.header("referer", r);
        }
        assert_eq!(h.send(request.body(Body::empty()).unwrap()).await.0, StatusCode::OK, "{referer:?}");
    }

    let api = Request::post("/api/v1/events")
        .header("authorization", format!("Bearer {WRITE_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"events":[{"event_type":"purchase","party_id":"P9","props":{"amount":42.5},"ip":"1.1.1.1","user_agent":"ShopApp/3.1 (iPhone; iOS 17.4)"}]}"#))
        .unwrap();
    let (status, _, body) = h.send(api).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap(), r#"{"accepted":1,"dropped":0}"#);
    let stored = h.stored().await;
    let open = stored.iter().find(|e| e["event_type"] == "emailOpen").unwrap();
    assert_eq!(open["source"], "pixel");
    assert_eq!(open["url"], "https://news.example.com/issue/12");
    assert_eq!(open["props"], r#"{"issue":12}"#);
    let purchase = stored.iter().find(|e| e["event_type"] == "purchase").unwrap();
    assert_eq!(purchase["site"], "shop", "the site comes from the write key");
    assert_eq!(purchase["source"], "api");
    assert_eq!(purchase["country"], "AU", "the end user's address, not the server's");
    assert_eq!(purchase["party_id"], "P9");
}

#[tokio::test]
async fn oriel_js_is_served_baked_compressed_and_cached() {
    let h = Harness::new();
    let get = |uri: &str, enc: Option<&str>| {
        let mut r = Request::get(uri);
        if let Some(enc) = enc {
            r = r.header("accept-encoding", enc);
        }
        r.body(Body::empty()).unwrap()
    };
    let (status, headers, body) = h.send(get("/oriel.js", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("__ORIEL_CONFIG__"));
    assert!(text.contains(r#""site":null"#) && text.contains(r#""cookieless":false"#), "{text:.300}");
    let (_, _, body) = h.send(get("/oriel.js?site=private", None)).await;
    let private = String::from_utf8(body).unwrap();
    assert!(private.contains(r#""site":"private""#) && private.contains(r#""cookieless":true"#));
    let (_, _, body) = h.send(get("/oriel.js?site=not-configured", None)).await;
    assert_eq!(String::from_utf8(body).unwrap(), text, "unknown sites get the defaults");

    let (_, headers, gz) = h.send(get("/oriel.js", Some("gzip"))).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(gz.len() <= 3072, "oriel.js is {} bytes gzipped, over the 3 KB budget", gz.len());
    let (_, headers, br) = h.send(get("/oriel.js", Some("br, gzip"))).await;
    assert_eq!(headers["content-encoding"], "br");
    assert!(br.len() < gz.len() + 200);
    let etag = headers["etag"].to_str().unwrap().to_string();
    let revalidate =
        Request::get("/oriel.js").header("accept-encoding", "br").header("if-none-match", etag).body(Body::empty()).unwrap();
    assert_eq!(h.send(revalidate).await.0, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn preflight_is_answered() {
    let h = Harness::new();
    let request = Request::options("/e").header("origin", "https://a.example").body(Body::empty()).unwrap();
    let (status, headers, _) = h.send(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "https://a.example");
    assert_eq!(headers["access-control-allow-methods"], "POST");
}

/// Each site stores what its `ip_handling` says of the address — nothing, the network part or
/// all of it — and the location is looked up from the whole address whatever it says.
#[tokio::test]
async fn each_site_stores_what_it_says_of_the_ip_address() {
    use oriel_core::config::{IpHandling, SiteConfig};
    let mut config = super::config();
    for (id, ip_handling) in [("dropped", IpHandling::Drop), ("kept", IpHandling::Keep)] {
        config.sites.push(SiteConfig { id: id.into(), ip_handling: Some(ip_handling), ..SiteConfig::default() });
    }
    let h = Harness::with_config(config);
    for site in ["dropped", "kept", "unconfigured"] {
        let request = Request::post("/e")
            .header("user-agent", CHROME)
            .header("x-forwarded-for", "8.8.8.8")
            .body(Body::from(format!(r#"{{"site":"{site}","ev":[{{"t":"x"}}]}}"#)))
            .unwrap();
        assert_eq!(h.send_from("10.1.2.3", request).await.0, StatusCode::NO_CONTENT);
    }
    let stored = h.stored().await;
    let of = |site: &str| stored.iter().find(|e| e["site"] == site).unwrap().clone();
    assert!(of("dropped").get("ip").is_none(), "{:?}", of("dropped"));
    assert_eq!(of("kept")["ip"], "8.8.8.8");
    assert_eq!(of("unconfigured")["ip"], "8.8.8.0", "the default anonymises");
    for site in ["dropped", "kept", "unconfigured"] {
        assert_eq!(of(site)["country"], "US", "{site}: located before the address was dropped");
    }
}
