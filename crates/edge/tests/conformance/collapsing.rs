//! Request collapsing: concurrent misses on one cacheable URL make one origin fetch, and every
//! client gets its answer.

use std::time::Duration;

use crate::origin::Reply;
use crate::{Kind, Rig};

const CLIENTS: usize = 1000;

/// Fails up front, saying what to do, when this process may not open a socket per client (plus
/// what the other cases running in parallel hold); a node started from here inherits the limit.
fn check_fd_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft {
        assert!(
            soft >= 2 * CLIENTS + 500,
            "the open-files limit is {soft}: {CLIENTS} concurrent clients need more\n\
             hint: raise it, e.g. `ulimit -n 8192`, before `cargo test`"
        );
    }
}

/// 1,000 concurrent misses on a URL whose origin takes 500 ms: exactly one origin request, 1,000
/// answers 200 with the body.
pub fn thousand_misses(kind: &Kind) {
    check_fd_limit();
    let rig = Rig::start(kind);
    rig.origin.set(
        "/c",
        Reply::ok("collapsed")
            .cc("max-age=60")
            .with_delay(Duration::from_millis(500)),
    );
    let url = format!("{}/c", rig.node.url());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let answers = rt.block_on(async move {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (http, url) = (http.clone(), url.clone());
            set.spawn(async move {
                let res = http.get(&url).send().await?;
                let status = res.status().as_u16();
                Ok::<_, reqwest::Error>((status, res.text().await?))
            });
        }
        let mut answers = Vec::with_capacity(CLIENTS);
        while let Some(joined) = set.join_next().await {
            answers.push(joined.expect("a client task"));
        }
        answers
    });
    drop(rt);

    let mut bad: Vec<String> = Vec::new();
    for answer in &answers {
        match answer {
            Ok((200, body)) if body == "collapsed" => {}
            other => bad.push(format!("{other:?}")),
        }
    }
    bad.truncate(5);
    assert!(
        bad.is_empty(),
        "wrong answers (first five): {bad:#?}\nof {} answers",
        answers.len()
    );
    assert_eq!(answers.len(), CLIENTS);
    assert_eq!(
        rig.origin.count("/c"),
        1,
        "{CLIENTS} concurrent misses were not collapsed"
    );
}
