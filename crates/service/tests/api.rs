//! The API against a real socket: tokens, 400/413 with the field, 202 only after commit with the seq
//! and due time, the batch endpoint, a scope's pending counts, flush, and a restart that keeps what was
//! acknowledged.

use serde_json::{Value, json};
use staleguard_service::Policy;
use staleguard_service::api;

const TOKEN: &str = "t0ken-for-tests-only";

async fn start(path: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    let api = api::open(
        path,
        vec!["cf".into(), "varnish".into()],
        Policy::default(),
        vec![TOKEN.into()],
        64,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let h = tokio::spawn(async move {
        axum::serve(listener, api::router(api)).await.unwrap();
    });
    (url, h)
}

async fn post(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The body of a GET with the token.
async fn get(url: &str) -> String {
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.text().await.unwrap()
}

#[tokio::test]
async fn events_are_acknowledged_after_commit_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let (url, server) = start(&db).await;
    let ev = format!("{url}/v1/scopes/ws:42/invalidations");

    // No token, a wrong one: 401. Health needs none.
    assert_eq!(post(&ev, None, json!({"paths": ["/a"]})).await.0, 401);
    assert_eq!(
        post(&ev, Some("wrong"), json!({"paths": ["/a"]})).await.0,
        401
    );
    assert_eq!(
        reqwest::get(format!("{url}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );

    // Bad and too large events name the field.
    let (s, b) = post(&ev, Some(TOKEN), json!({"paths": ["a"]})).await;
    assert_eq!((s, b["field"].as_str()), (400, Some("paths[0]")), "{b}");
    let many: Vec<String> = (0..1001).map(|i| format!("/p{i}")).collect();
    let (s, b) = post(&ev, Some(TOKEN), json!({"paths": many})).await;
    assert_eq!(s, 413, "{b}");
    let (s, b) = post(&ev, Some(TOKEN), json!({"pathz": ["/a"]})).await;
    assert!(
        s == 400 && b["error"].as_str().unwrap().contains("pathz"),
        "{b}"
    );
    let (s, _) = post(
        &format!("{url}/v1/scopes/a%20b/invalidations"),
        Some(TOKEN),
        json!({"paths": ["/a"]}),
    )
    .await;
    assert_eq!(s, 400);

    // Accepted: the seq, and due within the debounce.
    let before = api::now_ms();
    let (s, b) = post(
        &ev,
        Some(TOKEN),
        json!({"paths": ["/ws/42/a.html"], "key": "save-1"}),
    )
    .await;
    assert_eq!((s, b["seq"].as_u64()), (202, Some(1)), "{b}");
    let due = b["due_at_ms"].as_u64().unwrap();
    assert!(due >= before + 5_000 && due <= api::now_ms() + 5_000, "{b}");

    // A batch: all or nothing, naming the event.
    let batch = format!("{url}/v1/invalidations:batch");
    let (s, b) = post(
        &batch,
        Some(TOKEN),
        json!({"events": [{"scope": "ws:1", "tags": ["x"]}, {"scope": "ws:2", "paths": ["bad"]}]}),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("events[1].paths[0]")),
        "{b}"
    );
    let (s, b) = post(&batch, Some(TOKEN), json!({"events": [{"scope": "ws:1", "tags": ["x"]}, {"scope": "ws:42", "prefixes": ["/ws/42/*"]}]})).await;
    assert_eq!((s, &b["seqs"]), (202, &json!([2, 3])), "{b}");

    // The scope: two events pending for each provider; flush makes it due now.
    let scope: Value = serde_json::from_str(&get(&format!("{url}/v1/scopes/ws:42")).await).unwrap();
    assert_eq!(scope["pending"], json!({"cf": 2, "varnish": 2}), "{scope}");
    let (s, b) = post(
        &format!("{url}/v1/scopes/ws:42:flush"),
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!((s, &b["flushed"]), (200, &json!(true)), "{b}");
    let scope: Value = serde_json::from_str(&get(&format!("{url}/v1/scopes/ws:42")).await).unwrap();
    assert!(
        scope["due_at_ms"].as_u64().unwrap() <= api::now_ms(),
        "{scope}"
    );

    // The metrics: counted as answered; the gauges from the model; a token needed here too.
    assert_eq!(
        reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .status(),
        401
    );
    let text = get(&format!("{url}/metrics")).await;
    for want in [
        "staleguard_events_accepted_total 3",
        "staleguard_events_rejected_total{status=\"400\"} 4",
        "staleguard_events_rejected_total{status=\"413\"} 1",
        "staleguard_scopes_pending 2",
        "staleguard_events_pending 3",
        "staleguard_dead_letters 0",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    assert!(
        text.contains("staleguard_oldest_pending_event_age_seconds "),
        "{text}"
    );
    assert!(!text.contains("ws:42"), "no scope labels: {text}");

    // A restart: what was acknowledged is pending again, and seqs go on.
    server.abort();
    let _ = server.await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (url, _server) = start(&db).await;
    let scope: Value = serde_json::from_str(&get(&format!("{url}/v1/scopes/ws:42")).await).unwrap();
    assert_eq!(scope["pending"], json!({"cf": 2, "varnish": 2}), "{scope}");
    let (s, b) = post(
        &format!("{url}/v1/scopes/ws:1/invalidations"),
        Some(TOKEN),
        json!({"everything": true}),
    )
    .await;
    assert_eq!((s, b["seq"].as_u64()), (202, Some(4)), "{b}");
}
