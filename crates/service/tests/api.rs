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

/// A sender that records batches and fails every send to `fails`.
struct Recording {
    sent: std::sync::Mutex<Vec<staleguard_service::Batch>>,
    fails: &'static str,
}

#[async_trait::async_trait]
impl staleguard_service::Sender for Recording {
    async fn send(&self, b: &staleguard_service::Batch) -> staleguard_service::Sent {
        self.sent.lock().unwrap().push(b.clone());
        if b.provider == self.fails {
            return staleguard_service::Outcome::Failed {
                reason: "HTTP 503 from the node".into(),
                retry_after: None,
            }
            .into();
        }
        staleguard_service::Sent {
            outcome: staleguard_service::Outcome::Done,
            ids: vec![format!("{}-{}", b.provider, b.through)],
        }
    }
}

async fn get_json(url: &str) -> Value {
    serde_json::from_str(&get(url).await).unwrap()
}

#[tokio::test]
async fn event_status_long_polls_dead_letters_retry_keys_soft_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        debounce: std::time::Duration::from_millis(50),
        max_wait: std::time::Duration::from_millis(200),
        max_attempts: 2,
        backoff: staleguard_core::backoff::Backoff::new(
            std::time::Duration::from_millis(20),
            2.0,
            std::time::Duration::from_millis(50),
        ),
        ..Policy::default()
    };
    let api = api::open(
        &dir.path().join("events.db"),
        vec!["cf".into(), "varnish".into()],
        policy,
        vec![TOKEN.into()],
        64,
    )
    .unwrap();
    let sender = std::sync::Arc::new(Recording {
        sent: Default::default(),
        fails: "varnish",
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Not ready before the workers run (503 from the router alone).
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe_url = format!("http://{}", probe.local_addr().unwrap());
    let router_only = tokio::spawn(axum::serve(probe, api::router(api.clone())).into_future());
    let r = reqwest::get(format!("{probe_url}/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    router_only.abort();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(staleguard_service::server::run(
        api.clone(),
        sender.clone(),
        listener,
        2,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut ok = false;
    for _ in 0..100 {
        if reqwest::get(format!("{url}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ok, "/readyz never answered 200");

    // The same idempotency key in a scope is one event; in another scope, another.
    let ev = |s: &str| format!("{url}/v1/scopes/{s}/invalidations");
    let body = json!({"paths": ["/p.html"], "key": "save-77", "mode": "soft"});
    let (st, a) = post(&ev("ws:1"), Some(TOKEN), body.clone()).await;
    assert_eq!(st, 202);
    let (_, b) = post(&ev("ws:1"), Some(TOKEN), body.clone()).await;
    let (_, c) = post(&ev("ws:2"), Some(TOKEN), body).await;
    assert_eq!(a["seq"], b["seq"], "one event for one key");
    assert_ne!(a["seq"], c["seq"]);
    let seq = a["seq"].as_u64().unwrap();

    // A long poll answers once the event is settled on every provider: purged on cf (with its id),
    // dead on varnish (two failed attempts).
    let st = get_json(&format!("{url}/v1/events/{seq}?wait=20s")).await;
    assert_eq!(st["state"], "dead", "{st}");
    assert_eq!(st["scope"], "ws:1");
    let by = |p: &str| {
        st["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["provider"] == p)
            .cloned()
            .unwrap()
    };
    assert_eq!(by("cf")["state"], "purged", "{st}");
    assert_eq!(by("cf")["ids"], json!([format!("cf-{seq}")]), "{st}");
    assert_eq!(by("varnish")["state"], "dead", "{st}");
    // The soft mode reached the batch; one event was sent once, not twice.
    {
        let sent = sender.sent.lock().unwrap();
        let first = sent.iter().find(|b| b.scope == "ws:1").unwrap();
        assert!(first.soft);
        assert_eq!(first.events_at.len(), 1);
    }

    // Dead letters: listed with the reason; a retry is a new event; an unknown id is 404.
    let other = c["seq"].as_u64().unwrap();
    let st2 = get_json(&format!("{url}/v1/events/{other}?wait=20s")).await;
    assert_eq!(st2["state"], "dead", "{st2}");
    let dead = get_json(&format!("{url}/v1/dead-letters")).await;
    let letters = dead["dead_letters"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 2, "ws:1 and ws:2 on varnish: {dead}");
    assert!(letters[0]["reason"].as_str().unwrap().contains("503"));
    let id = letters[0]["id"].as_u64().unwrap();
    let (st, r) = post(
        &format!("{url}/v1/dead-letters/{id}:retry"),
        Some(TOKEN),
        json!(null),
    )
    .await;
    assert_eq!(st, 202, "{r}");
    assert!(r["seq"].as_u64().unwrap() > seq);
    let (st, _) = post(
        &format!("{url}/v1/dead-letters/999:retry"),
        Some(TOKEN),
        json!(null),
    )
    .await;
    assert_eq!(st, 404);
    let dead = get_json(&format!("{url}/v1/dead-letters")).await;
    assert!(
        dead["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != id),
        "{dead}"
    );
    // Status of an event never acknowledged: 404; a bad wait: 400 naming it.
    let res = reqwest::Client::new()
        .get(format!("{url}/v1/events/99999"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = reqwest::Client::new()
        .get(format!("{url}/v1/events/1?wait=soon"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["field"], "wait");

    // The purge metrics, by provider and outcome.
    let m = get(&format!("{url}/metrics")).await;
    for line in [
        "staleguard_purges_total{provider=\"varnish\",outcome=\"dead\"}",
        "staleguard_purges_total{provider=\"cf\",outcome=\"done\"}",
        "staleguard_invalidation_lag_seconds_count",
        "staleguard_accept_latency_seconds_count",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }

    let _ = stop.send(());
    server.await.unwrap();
    // The dead letters survive a restart (the one not retried).
    drop(api);
    let api = api::open(
        &dir.path().join("events.db"),
        vec!["cf".into(), "varnish".into()],
        Policy::default(),
        vec![TOKEN.into()],
        64,
    )
    .unwrap();
    let m = api.local().unwrap().model();
    assert!(m.dead().iter().all(|d| d.id != id));
    assert!(!m.dead().is_empty(), "the other dead letter is still there");
}
