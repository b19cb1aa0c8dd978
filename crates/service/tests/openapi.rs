//! The checked-in OpenAPI document (`crates/service/openapi.json`) against the running server: every
//! documented operation exists and answers one of its documented statuses, unauthenticated requests
//! get 401 where the document says a token is needed (and only there), and each success body has the
//! fields its schema requires.

use std::sync::Arc;

use serde_json::{Value, json};
use staleguard_service::{Batch, Outcome, Policy, Sent, api};

const TOKEN: &str = "openapi-test-token";

struct Done;

#[async_trait::async_trait]
impl staleguard_service::Sender for Done {
    async fn send(&self, _: &Batch) -> Sent {
        Outcome::Done.into()
    }
}

fn doc() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("openapi.json is JSON")
}

/// Follows a `$ref` (`#/components/...`) once.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut cur = doc;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            assert!(!cur.is_null(), "dangling $ref {r}");
            cur
        }
        None => v,
    }
}

/// A request body that the operation accepts.
fn example_body(path: &str) -> Option<Value> {
    match path {
        "/v1/scopes/{scope}/invalidations" => Some(json!({"paths": ["/a.html"], "tags": ["t1"]})),
        "/v1/invalidations:batch" => {
            Some(json!({"events": [{"scope": "ws:2", "prefixes": ["/ws/2/"]}]}))
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let dir = tempfile::tempdir().unwrap();
    let api = api::open(
        &dir.path().join("e.db"),
        vec!["edge".into()],
        Policy::default(),
        vec![TOKEN.into()],
        64,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(staleguard_service::server::run(
        api,
        Arc::new(Done),
        listener,
        1,
        async move {
            let _ = stopped.await;
        },
    ));
    let c = reqwest::Client::new();
    // Ready, and one event so that `/v1/events/1` exists.
    for _ in 0..200 {
        if c.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = c
        .post(format!("{base}/v1/scopes/ws:1/invalidations"))
        .bearer_auth(TOKEN)
        .json(&json!({"paths": ["/first.html"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let global_security = !doc["security"].as_array().unwrap().is_empty();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let concrete = path
                .replace("{scope}", "ws:1")
                .replace("{seq}", "1")
                .replace("{id}", "999");
            let url = format!("{base}{concrete}");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let documented: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            let secured = match op.get("security") {
                Some(s) => !s.as_array().unwrap().is_empty(),
                None => global_security,
            };
            let body = example_body(path);
            let with = |auth: bool| {
                let mut r = c.request(m.clone(), &url);
                if auth {
                    r = r.bearer_auth(TOKEN);
                }
                if let Some(b) = &body {
                    r = r.json(b);
                }
                r
            };
            // Without a token.
            let status = with(false).send().await.unwrap().status().as_u16();
            if secured {
                assert_eq!(status, 401, "{method} {path} without a token");
                assert!(
                    documented.contains(&401),
                    "{method} {path} documents its 401"
                );
            } else {
                assert_ne!(status, 401, "{method} {path} needs no token");
            }
            // With one.
            let res = with(true).send().await.unwrap();
            let status = res.status().as_u16();
            assert!(
                documented.contains(&status),
                "{method} {path}: {status} is not among the documented {documented:?}"
            );
            let text = res.text().await.unwrap();
            let response = resolve(&doc, &op["responses"][status.to_string()]);
            if let Some(schema) = response["content"]["application/json"].get("schema") {
                let schema = resolve(&doc, schema);
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
                for field in schema["required"].as_array().into_iter().flatten() {
                    let f = field.as_str().unwrap();
                    assert!(
                        v.get(f).is_some(),
                        "{method} {path} {status}: `{f}` is required by the document: {v}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "every operation was probed");
    let _ = stop.send(());
    server.await.unwrap();
}

#[test]
fn the_example_alert_rules_use_only_metrics_the_service_exports() {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/service/alerts.yml"
    ))
    .unwrap();
    // Families with labels show once they have a sample: one of each.
    let m = staleguard_service::metrics::Metrics::default();
    let batch = Batch {
        scope: "ws:1".into(),
        provider: "edge".into(),
        from: 0,
        through: 1,
        items: vec![],
        reference: "r".into(),
        attempt: 1,
        events_at: vec![0],
        follow_up: false,
        soft: false,
        namespaces: vec![],
    };
    m.purged(&batch, "done", 0.1, 1000);
    m.reject(429);
    let exported = m.render(&staleguard_service::model::Stats::default());
    let mut names: Vec<String> = Vec::new();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("staleguard_") && !names.iter().any(|n| n == word) {
            names.push(word.to_string());
        }
    }
    assert!(names.len() >= 5, "{names:?}");
    for n in names {
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .fold(n.as_str(), |s, suffix| s.strip_suffix(suffix).unwrap_or(s));
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "the rules use `{n}`, which the service does not export:\n{exported}"
        );
    }
}
