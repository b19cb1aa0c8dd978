//! The PostgreSQL peer comes up on loopback, takes a durable write, and is gone once dropped.

use std::process::Command;

use staleguard_testkit::postgres::Postgres;

fn psql(url: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args([url, "-XAtqc", sql])
        .output()
        .expect("psql (Debian's postgresql-client) runs");
    assert!(
        o.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_server_starts_on_loopback_commits_durably_and_stops() {
    let pg = Postgres::start();
    assert!(
        pg.url.starts_with("postgres://staleguard@127.0.0.1:"),
        "{}",
        pg.url
    );
    assert_eq!(psql(&pg.url, "show fsync"), "on");
    assert_eq!(psql(&pg.url, "show synchronous_commit"), "on");
    psql(
        &pg.url,
        "create table t (x int); insert into t values (1), (2)",
    );
    assert_eq!(psql(&pg.url, "select sum(x) from t"), "3");
    let url = pg.url.clone();
    drop(pg);
    let o = Command::new("psql")
        .args([url.as_str(), "-XAtqc", "select 1"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the server was stopped");
}
