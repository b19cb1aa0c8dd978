//! Every strategy against real servers (`scripts/peers/redis.sh`, `scripts/peers/memcached.sh`, started
//! once per test binary on free loopback ports, stopped by PID): bumps are atomic and monotonic (also
//! across a lost counter), a dry run changes nothing, a memcached pool is bumped on every server,
//! delete-prefix removes exactly its namespace's keys (glob characters in the prefix are literal),
//! flush empties the database, and each failure names its target with a hint.

use std::sync::OnceLock;

use staleguard_appcache::{AppCacheConfig, AppCacheKind, AppCacheStrategy, Target};
use staleguard_core::config::Config;
use staleguard_testkit::memcached::Memcached;
use staleguard_testkit::redis::Redis;

fn redis() -> &'static Redis {
    static R: OnceLock<Redis> = OnceLock::new();
    R.get_or_init(Redis::start)
}

fn memcached() -> &'static (Memcached, Memcached) {
    static M: OnceLock<(Memcached, Memcached)> = OnceLock::new();
    M.get_or_init(|| (Memcached::start(), Memcached::start()))
}

/// An entry parsed from TOML, as a user writes it (so the defaults and checks are the real ones).
fn entry(toml: &str) -> AppCacheConfig {
    let c = Config::from_toml(toml, "staleguard.toml").unwrap();
    c.app_cache.into_iter().next().unwrap()
}

fn redis_entry(strategy: &str, extra: &str) -> Target {
    let c = entry(&format!(
        "[[app-cache]]\nname = \"pages\"\nkind = \"redis\"\nurl = \"{}\"\nstrategy = \"{strategy}\"\n{extra}",
        redis().url
    ));
    Target::open(&c, None).unwrap()
}

fn memcached_entry(strategy: &str, both: bool) -> Target {
    let (a, b) = memcached();
    let servers = if both {
        format!("[\"{}\", \"{}\"]", a.url, b.url)
    } else {
        format!("[\"{}\"]", a.url)
    };
    let c = entry(&format!(
        "[[app-cache]]\nname = \"fragments\"\nkind = \"memcached\"\nservers = {servers}\nstrategy = \"{strategy}\"\n"
    ));
    Target::open(&c, None).unwrap()
}

fn ns(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn namespace_conformance(t: &Target, name: &str) {
    let space = ns(name);
    // Missing: seeded with the clock, so it starts above any version used before a loss.
    let before = now_ms();
    let first = t.bump(&space, false).await.unwrap()[0].version.unwrap();
    assert!(first > before, "seeded from the clock: {first} > {before}");
    let second = t.bump(&space, false).await.unwrap()[0].version.unwrap();
    assert_eq!(second, first + 1);
    // A dry run reads, changes nothing.
    let dry = t.bump(&space, true).await.unwrap();
    assert_eq!((dry[0].version, dry[0].dry_run), (Some(second), true));
    let st = t.status(&space).await.unwrap();
    assert!(
        st[0].versions.iter().all(|(_, v)| *v == Some(second)),
        "{st:?}"
    );
    assert_eq!(st[0].key, format!("staleguard:ns:{name}"));
    // Concurrent bumps are atomic: 40 bumps, 40 distinct values, the counter 40 higher.
    let t = std::sync::Arc::new(t);
    let mut seen: Vec<u64> = futures_join(40, |_| {
        let (t, space) = (t.clone(), space.clone());
        async move { t.bump(&space, false).await.unwrap()[0].version.unwrap() }
    })
    .await;
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 40);
    assert_eq!(*seen.last().unwrap(), second + 40);
    // Other namespaces are untouched.
    assert_eq!(
        t.status(&ns(&format!("{name}-other"))).await.unwrap()[0].versions[0].1,
        None
    );
}

async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<u64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut out = Vec::with_capacity(n);
    let futs: Vec<_> = (0..n).map(&f).collect();
    // Polled together on one task: the server sees them interleaved.
    let mut set = Vec::new();
    for fut in futs {
        set.push(Box::pin(fut));
    }
    for fut in set {
        out.push(fut.await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_namespace_bumps_are_atomic_monotonic_and_dry_runs_read_only() {
    namespace_conformance(&redis_entry("namespace", ""), "ws:42").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_namespace_bumps_are_atomic_monotonic_and_dry_runs_read_only() {
    namespace_conformance(&memcached_entry("namespace", false), "ws:42").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memcached_pool_is_bumped_on_every_server_and_a_lost_counter_comes_back_higher() {
    let t = memcached_entry("namespace", true);
    let space = ns("site:blog");
    let v1 = t.bump(&space, false).await.unwrap()[0].version.unwrap();
    let st = t.status(&space).await.unwrap();
    assert_eq!(st[0].versions.len(), 2);
    assert!(st[0].versions.iter().all(|(_, v)| v.is_some()), "{st:?}");
    // One server loses everything (a restart): its counter is seeded again above v1.
    let one = memcached_entry("flush", false);
    one.bump(&space, false).await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let v2 = t.bump(&space, false).await.unwrap()[0].version.unwrap();
    assert!(v2 > v1, "{v2} > {v1}");
    let st = t.status(&space).await.unwrap();
    for (_, v) in &st[0].versions {
        assert!(v.unwrap() > v1 - 1, "{st:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_redis_counter_comes_back_above_every_earlier_version() {
    let t = redis_entry("namespace", "counter-prefix = \"lost:\"\n");
    let space = ns("global");
    let v1 = t.bump(&space, false).await.unwrap()[0].version.unwrap();
    redis_cli(&["DEL", "lost:global"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let v2 = t.bump(&space, false).await.unwrap()[0].version.unwrap();
    assert!(v2 > v1, "{v2} > {v1}");
}

fn redis_cli(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(&redis().url)
        .args(args)
        .output()
        .expect("redis-cli (Debian's redis-tools, installed with redis-server)");
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_delete_prefix_removes_exactly_its_namespace_in_scan_pages() {
    // A prefix with glob characters: they are literal in the match.
    let t = redis_entry(
        "delete-prefix",
        "key-prefix = \"dp[1]:\"\nscan-count = 100\n",
    );
    let mut script = String::new();
    for i in 0..2500 {
        script.push_str(&format!(
            "SET dp[1]:ws:42:page{i} x\nSET dp[1]:ws:43:page{i} x\n"
        ));
    }
    script.push_str("SET dp1:ws:42:lookalike x\nSET other:ws:42:page x\n");
    let mut child = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(&redis().url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let dry = t.bump(&ns("ws:42"), true).await.unwrap();
    assert_eq!(dry[0].deleted, None);
    let done = t.bump(&ns("ws:42"), false).await.unwrap();
    assert_eq!(done[0].deleted, Some(2500));
    assert_eq!(redis_cli(&["EXISTS", "dp[1]:ws:43:page7"]), "1");
    assert_eq!(redis_cli(&["EXISTS", "dp1:ws:42:lookalike"]), "1");
    assert_eq!(redis_cli(&["EXISTS", "dp[1]:ws:42:page7"]), "0");
    // `global`: everything under the prefix, nothing else.
    let all = t.bump(&ns("global"), false).await.unwrap();
    assert_eq!(all[0].deleted, Some(2500));
    assert_eq!(redis_cli(&["EXISTS", "other:ws:42:page"]), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_empties_redis_and_memcached() {
    // Its own Redis: a flush would race the other tests' keys on the shared one.
    let own = Redis::start();
    let c = entry(&format!(
        "[[app-cache]]\nkind = \"redis\"\nurl = \"{}\"\nstrategy = \"flush\"\n",
        own.url
    ));
    let t = Target::open(&c, None).unwrap();
    let bump = redis_entry("namespace", "");
    let _ = bump; // the shared server is not touched
    let counter = Target::open(
        &entry(&format!(
            "[[app-cache]]\nkind = \"redis\"\nurl = \"{}\"\n",
            own.url
        )),
        None,
    )
    .unwrap();
    counter.bump(&ns("global"), false).await.unwrap();
    let r = t.bump(&ns("global"), false).await.unwrap();
    assert_eq!(
        (r[0].namespace.as_str(), r[0].strategy),
        ("*", AppCacheStrategy::Flush)
    );
    assert_eq!(
        counter.status(&ns("global")).await.unwrap()[0].versions[0].1,
        None
    );

    let m = Memcached::start();
    let c = entry(&format!(
        "[[app-cache]]\nkind = \"memcached\"\nurl = \"{}\"\nstrategy = \"flush\"\n",
        m.url
    ));
    let t = Target::open(&c, None).unwrap();
    let counter = Target::open(
        &entry(&format!(
            "[[app-cache]]\nkind = \"memcached\"\nurl = \"{}\"\n",
            m.url
        )),
        None,
    )
    .unwrap();
    counter.bump(&ns("global"), false).await.unwrap();
    t.bump(&ns("global"), false).await.unwrap();
    assert_eq!(
        counter.status(&ns("global")).await.unwrap()[0].versions[0].1,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_the_target_and_say_what_to_do() {
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (kind, url) in [
        ("redis", format!("redis://127.0.0.1:{port}")),
        ("memcached", format!("memcached://127.0.0.1:{port}")),
    ] {
        let c = entry(&format!(
            "[[app-cache]]\nname = \"down\"\nkind = \"{kind}\"\nurl = \"{url}\"\ntimeout = \"2s\"\n"
        ));
        let e = Target::open(&c, None)
            .unwrap()
            .bump(&ns("global"), false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("app cache `down` ("), "{e}");
        assert!(e.contains("hint: is the server running"), "{e}");
        assert_eq!(e.lines().count(), 2, "one line and a hint: {e}");
    }
    // Wrong or missing password.
    let locked = Redis::start_with(Some("s3cret-pw"));
    let c = entry(&format!(
        "[[app-cache]]\nname = \"locked\"\nkind = \"redis\"\nurl = \"{}\"\npassword-env = \"SG_TEST_REDIS_PW\"\n",
        locked.url
    ));
    for pw in [None, Some("wrong")] {
        let e = Target::open(&c, pw.map(str::to_string))
            .unwrap()
            .bump(&ns("global"), false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("app cache `locked`"), "{e}");
        assert!(
            e.contains("hint: check the password in $SG_TEST_REDIS_PW"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }
    let ok = Target::open(&c, Some("s3cret-pw".into())).unwrap();
    assert!(ok.bump(&ns("global"), false).await.is_ok());
    let _ = AppCacheKind::Redis;
}

#[test]
fn config_refuses_what_cannot_work_naming_the_entry() {
    let bad = [
        (
            "[[app-cache]]\nname = \"frag\"\nkind = \"memcached\"\nurl = \"memcached://127.0.0.1:11211\"\nstrategy = \"delete-prefix\"\nkey-prefix = \"x:\"\n",
            "[[app-cache]] `frag`: strategy = \"delete-prefix\" needs Redis",
        ),
        (
            "[[app-cache]]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nstrategy = \"delete-prefix\"\n",
            "needs `key-prefix`",
        ),
        (
            "[[app-cache]]\nkind = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:6379\"\n",
            "the URL holds a password",
        ),
        (
            "[[app-cache]]\nkind = \"redis\"\nurl = \"memcached://127.0.0.1:11211\"\n",
            "is not a Redis URL",
        ),
        (
            "[[app-cache]]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nnamespaces = [\"ws 42\"]\n",
            "namespace `ws 42` has ` `",
        ),
        (
            "[[app-cache]]\nkind = \"redis\"\nurl = \"redis://a:1\"\n[[app-cache]]\nkind = \"redis\"\nurl = \"redis://b:1\"\n",
            "two [[app-cache]] entries are named `redis`",
        ),
        (
            "[[app-cache]]\nkind = \"redis\"\nurl = \"rediss://127.0.0.1:6379\"\n",
            "TLS to Redis is not built in",
        ),
    ];
    for (toml, want) in bad {
        let e = Config::from_toml(toml, "staleguard.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "want `{want}` in: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
