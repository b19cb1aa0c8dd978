//! Kills at exact points of a deploy, GC and rollback (`STALEGUARD_FAULT`, an abort as `kill -9`
//! would), on a local store and on S3 (moto). After every kill: no page in the store references a missing
//! object, the re-run completes, history has one entry per deployed version, rollback goes to the
//! previous different version, and `serve` never switches to half a deploy.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use staleguard_testkit::moto::Moto;

use crate::deploy::{T0, dangling, ok_json, project, sg, sg_s3};
use crate::support::*;

/// A gallery of pages that share a stylesheet only they use, and an image each.
fn write_gallery(dir: &Path, pages: usize, tag: &str) {
    let mut files = vec![(
        "site/gallery/gallery.css".to_string(),
        format!(".g {{ content: \"{tag}\" }}\n"),
    )];
    for i in 0..pages {
        files.push((
            format!("site/gallery/p{i}.html"),
            format!(
                "<!doctype html><link rel=stylesheet href=\"gallery.css\"><img src=\"img{i}.svg\"><p>{tag} {i}</p>\n"
            ),
        ));
        files.push((
            format!("site/gallery/img{i}.svg"),
            format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{tag} {i}</text></svg>\n"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write_files(dir, &refs);
}

fn with_fault(mut c: Command, fault: &str) -> Command {
    c.env("STALEGUARD_FAULT", fault);
    c
}

/// The run was killed by the fault point (not finished, not a clean error).
fn assert_killed(o: &Output, fault: &str) {
    assert!(!o.status.success(), "{fault}: the run was not killed");
    assert!(
        stderr(o).contains("STALEGUARD_FAULT: killed at"),
        "{fault}: not killed at the point: {}",
        stderr(o)
    );
}

/// GC of dropped pages, killed after each number of deletes: the dropped pages go before the stylesheet
/// and images they reference, so the store never holds a page whose CSS is gone.
#[test]
fn gc_killed_between_deletes_never_leaves_a_page_without_its_css() {
    let t = project("concurrency = 1\n");
    let dir = t.path();
    write_gallery(dir, 12, "v1");
    ok_json(sg(dir, T0, &["deploy", "--json"]));
    // v2 drops the gallery: pages, stylesheet and images stay in the store until GC.
    std::fs::remove_dir_all(dir.join("site/gallery")).unwrap();
    ok_json(sg(dir, T0 + 10, &["deploy", "--json"]));
    assert!(dir.join("store/gallery/p0.html").is_file());
    let gc = ["deploy", "--keep-deploys", "1", "--keep-age", "0s"];
    for (n, k) in [1, 6, 12, 13, 20].into_iter().enumerate() {
        let fault = format!("gc-delete@{k}");
        let o = run(with_fault(sg(dir, T0 + 20 + n as i64, &gc), &fault));
        assert_killed(&o, &fault);
        let bad = dangling(&dir.join("store"));
        assert!(bad.is_empty(), "killed at {fault}: {bad:?}");
    }
    let r = ok_json(sg(dir, T0 + 40, &[&gc[..], &["--json"]].concat()));
    assert!(
        !dir.join("store/gallery").exists()
            || crate::support::walk(&dir.join("store/gallery")).is_empty(),
        "GC finished: {r}"
    );
    assert!(dangling(&dir.join("store")).is_empty());
}

/// The same on S3: the bucket, synced down after each kill, has no page without its stylesheet.
#[test]
fn gc_killed_between_deletes_on_s3_keeps_every_reference() {
    let moto = Moto::start();
    moto.create_bucket("site");
    // A killed deploy's lease on S3 is waited out (`lock-ttl`) by the next one: 3 s, not the default 2 min.
    let t = project("concurrency = 1\nlock-ttl = \"3s\"\n");
    let dir = t.path();
    let store = ["--store", "s3://site/www"];
    let deploy = |now: i64, extra: &[&str], fault: Option<&str>| -> Output {
        let args = [&["deploy"][..], &store, extra].concat();
        match fault {
            None => sg_s3(&moto, dir, now, &args),
            Some(f) => {
                let mut c = with_fault(sg(dir, now, &args), f);
                moto.apply(&mut c);
                run(c)
            }
        }
    };
    write_gallery(dir, 6, "v1");
    assert!(deploy(T0, &[], None).status.success());
    std::fs::remove_dir_all(dir.join("site/gallery")).unwrap();
    assert!(deploy(T0 + 10, &[], None).status.success());
    let gc = ["--keep-deploys", "1", "--keep-age", "0s"];
    let bucket = dir.join("bucket");
    let snapshot = || {
        let _ = std::fs::remove_dir_all(&bucket);
        let o = moto.aws(&["s3", "sync", "s3://site/www", bucket.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    snapshot();
    assert!(bucket.join("gallery/p0.html").is_file());
    for (n, k) in [1, 4, 7].into_iter().enumerate() {
        let fault = format!("gc-delete@{k}");
        let o = deploy(T0 + 20 + n as i64, &gc, Some(&fault));
        assert_killed(&o, &fault);
        snapshot();
        let bad = dangling(&bucket);
        assert!(bad.is_empty(), "killed at {fault}: {bad:?}");
    }
    assert!(deploy(T0 + 40, &gc, None).status.success());
    snapshot();
    assert!(!bucket.join("gallery/gallery.css").exists() && dangling(&bucket).is_empty());
}

/// `deploys --json` on the project's store (or the one `extra` names, on moto).
fn deploys_json(dir: &Path, extra: &[&str], moto: Option<&Moto>) -> Value {
    let args = [&["deploys", "--json"][..], extra].concat();
    let mut c = sg(dir, T0, &args);
    if let Some(m) = moto {
        m.apply(&mut c);
    }
    ok_json(c)
}

fn deploys(dir: &Path, extra: &[&str], moto: Option<&Moto>) -> Vec<Value> {
    deploys_json(dir, extra, moto)["deploys"]
        .as_array()
        .unwrap()
        .clone()
}

/// Kills a deploy at each write of its commit (record, history, current pointer), re-runs it, then rolls
/// back: one history entry per version, and the rollback restores the first version.
fn commit_kills(store: Option<(&Moto, &str)>) {
    for point in ["commit-record", "commit-history", "commit-current"] {
        // On S3 the next deploy waits out the killed one's lease (`lock-ttl`): 3 s, not the default 2 min.
        let t = project(if store.is_some() {
            "lock-ttl = \"3s\"\n"
        } else {
            ""
        });
        let dir = t.path();
        let extra: Vec<String> = store
            .map(|(_, url)| vec!["--store".to_string(), format!("{url}/{point}")])
            .unwrap_or_default();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let moto = store.map(|(m, _)| m);
        let go = |now: i64, verb: &[&str], fault: Option<&str>| -> Output {
            let mut c = sg(dir, now, &[verb, &extra[..]].concat());
            if let Some(f) = fault {
                c.env("STALEGUARD_FAULT", f);
            }
            if let Some(m) = moto {
                m.apply(&mut c);
            }
            run(c)
        };
        let json = |o: Output| -> Value {
            assert!(o.status.success(), "{point}: {}", stderr(&o));
            serde_json::from_slice(&o.stdout).unwrap()
        };
        let v1 = json(go(T0, &["deploy", "--json"], None));
        write_gallery(dir, 3, "v2");
        let o = go(T0 + 10, &["deploy"], Some(point));
        assert_killed(&o, point);
        if store.is_none() {
            assert!(dangling(&dir.join("store")).is_empty(), "{point}");
        }
        let v2 = json(go(T0 + 20, &["deploy", "--json"], None));
        let list = deploys(dir, &extra, moto);
        let versions: Vec<&str> = list
            .iter()
            .map(|e| e["version"].as_str().unwrap())
            .collect();
        assert_eq!(
            versions,
            [
                v1["version"].as_str().unwrap(),
                v2["version"].as_str().unwrap()
            ],
            "{point}: one history entry per deployed version: {list:?}"
        );
        assert_ne!(v1["version"], v2["version"]);
        let rb = json(go(T0 + 40, &["rollback", "--json"], None));
        assert_eq!(rb["restores"], v1["id"], "{point}: {rb}");
        assert_eq!(rb["version"], v1["version"], "{point}");
        let list = deploys(dir, &extra, moto);
        assert_eq!(list.len(), 3, "{point}: {list:?}");
        assert_eq!(list[2]["version"], v1["version"], "{point}");
        if store.is_none() {
            assert!(!dir.join("store/.staleguard/journal.json.gz").exists());
        }
    }
}

#[test]
fn a_deploy_killed_at_its_commit_is_recorded_once_and_rollback_restores_the_previous_version() {
    commit_kills(None);
}

#[test]
fn a_deploy_killed_at_its_commit_on_s3_is_recorded_once_and_rollback_restores_the_previous_version()
{
    let moto = Moto::start();
    moto.create_bucket("site");
    commit_kills(Some((&moto, "s3://site")));
}

/// The same build deployed twice (a header change in between) is skipped by a rollback without an id,
/// which says so, and goes to the previous different version.
#[test]
fn rollback_goes_to_the_previous_different_version_and_names_what_it_skipped() {
    let t = project("");
    let dir = t.path();
    let v1 = ok_json(sg(dir, T0, &["deploy", "--json"]));
    write_gallery(dir, 2, "v2");
    let v2 = ok_json(sg(dir, T0 + 10, &["deploy", "--json"]));
    // Same build, other headers: a new deploy of the same version.
    let cfg = dir.join("staleguard.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{text}\n[[routes]]\nmatch = \"gallery/**\"\nheaders = {{ x-gallery = \"1\" }}\n"),
    )
    .unwrap();
    let v2b = ok_json(sg(dir, T0 + 20, &["deploy", "--json"]));
    assert_eq!(v2b["version"], v2["version"]);
    assert_ne!(v2b["id"], v2["id"]);
    let o = run(sg(dir, T0 + 30, &["rollback"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let v1id = v1["id"].as_str().unwrap();
    let v2id = v2["id"].as_str().unwrap();
    assert!(out.contains(&format!("rolled back to {v1id}")), "{out}");
    assert!(
        out.contains("skipped 1 deploy(s) serving the current version") && out.contains(v2id),
        "{out}"
    );
}

/// What a local store's writer leaves when killed (`name#N`: object_store's staging names, renamed into
/// place when complete) is removed by the next deploy, state folder included.
#[test]
fn the_next_deploy_removes_the_staging_files_a_killed_one_left() {
    let t = project("");
    let dir = t.path();
    ok_json(sg(dir, T0, &["deploy", "--json"]));
    let litter = [
        "store/index.html#1",
        "store/img/photo.png#12",
        "store/.staleguard/journal.json.gz#3",
    ];
    std::fs::create_dir_all(dir.join("store/img")).unwrap();
    for l in litter {
        std::fs::write(dir.join(l), b"partial").unwrap();
    }
    // (`serve` never answers them: `conventions::serve_never_serves_a_staging_file_a_killed_deploy_left`.)
    write_gallery(dir, 2, "v2");
    let r = ok_json(sg(dir, T0 + 10, &["deploy", "--json"]));
    let staging: Vec<&str> = r["tidied"]["staging"]
        .as_array()
        .unwrap_or_else(|| panic!("no tidied.staging in {r}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        staging,
        [
            ".staleguard/journal.json.gz#3",
            "img/photo.png#12",
            "index.html#1"
        ]
    );
    for l in litter {
        assert!(!dir.join(l).exists(), "{l} is still there");
    }
}

/// `serve` on a store switches on the deploy's commit (the `current` pointer), never on a manifest
/// written before the rest: a deploy killed after its manifests but before its pointer leaves the old
/// version served whole (pages and version endpoint); the re-run switches to the new one whole.
#[test]
fn serve_on_a_store_switches_at_the_commit_point_never_half_way() {
    let t = project("");
    let dir = t.path();
    std::fs::write(
        dir.join("staleguard.toml"),
        "[build]\nsource = \"site\"\nout = \"out\"\n\n[deploy]\nstore = \"file://store\"\n\n[serve]\nreload-ms = 50\n",
    )
    .unwrap();
    write_gallery(dir, 2, "v1");
    let v1 = ok_json(sg(dir, T0, &["deploy", "--json"]));
    let served = crate::serve::serve(dir, &["store"]);
    let c = reqwest::blocking::Client::new();
    let get = |p: &str| {
        c.get(format!("{}{p}", served.base))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let version = || {
        let v: Value = serde_json::from_str(&get("/health/static-version")).unwrap();
        v["version"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(version(), v1["version"].as_str().unwrap());
    assert!(get("/gallery/p0.html").contains("v1 0"));
    write_gallery(dir, 2, "v2");
    let o = run(with_fault(sg(dir, T0 + 10, &["deploy"]), "commit-history"));
    assert_killed(&o, "commit-history");
    // Every object of v2 (pages, manifests, build info) is in the store; its pointer is not. Give the
    // server many reload periods to (wrongly) switch.
    assert!(
        std::fs::read_to_string(dir.join("store/gallery/p0.html"))
            .unwrap()
            .contains("v2 0")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(version(), v1["version"].as_str().unwrap());
    assert!(
        get("/gallery/p0.html").contains("v1 0"),
        "half a deploy served"
    );
    let v2 = ok_json(sg(dir, T0 + 20, &["deploy", "--json"]));
    let start = Instant::now();
    while version() != v2["version"].as_str().unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never switched to v2"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(get("/gallery/p0.html").contains("v2 0"));
}

/// Builds the gallery at `tag` into its own output folder (deployed with `--no-build`).
fn build_version(dir: &Path, tag: &str) -> String {
    write_gallery(dir, 3, tag);
    let out = format!("out-{tag}");
    build(dir, "site", &out, &[]);
    out
}

/// Waits until `deploys --json` shows the store locked (by a deploy held at a pause point).
fn wait_locked(dir: &Path, extra: &[&str], moto: Option<&Moto>) -> Value {
    let start = Instant::now();
    loop {
        let v = deploys_json(dir, extra, moto);
        if !v["lock"].is_null() {
            return v["lock"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the paused deploy never took the lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two deploys at once on one store: the second fails at once naming the holder (`--lock-timeout 0s`)
/// or waits and deploys after it; the history has both, in order, never a mix; a holder killed with
/// `kill -9` blocks nobody (a folder's lock is the OS's) or, on S3, until its lease expires, and the next
/// deploy takes over and finishes.
fn concurrent_deploys(moto: Option<&Moto>) {
    let t = project("lock-ttl = \"3s\"\n");
    let dir = t.path();
    let extra: Vec<&str> = if moto.is_some() {
        vec!["--store", "s3://site/www"]
    } else {
        vec![]
    };
    let cmd = |now: i64, args: &[&str]| -> Command {
        let mut c = sg(dir, now, &[args, &extra[..]].concat());
        if let Some(m) = moto {
            m.apply(&mut c);
        }
        c
    };
    let json = |o: Output| -> Value {
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v1 = json(run(cmd(T0, &["deploy", "--json"])));
    let out2 = build_version(dir, "v2");
    let out3 = build_version(dir, "v3");
    // A holds the lease, paused before its first upload.
    let mut a = cmd(T0 + 10, &["deploy", &out2, "--no-build", "--json"]);
    a.env("STALEGUARD_PAUSE", "put@1=4000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let a = a.spawn().unwrap();
    let lock = wait_locked(dir, &extra, moto);
    assert_eq!(lock["pid"], a.id(), "{lock}");
    assert_eq!(lock["op"], "deploy");
    // B gives up at once and says who holds the store.
    let o = run(cmd(
        T0 + 11,
        &["deploy", &out3, "--no-build", "--lock-timeout", "0s"],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("is locked by `deploy` by")
            && err.contains(&format!("(pid {})", a.id()))
            && err.contains("--lock-timeout"),
        "{err}"
    );
    // C waits for A, then deploys.
    let c = json(run(cmd(
        T0 + 12,
        &[
            "deploy",
            &out3,
            "--no-build",
            "--json",
            "--lock-timeout",
            "2m",
        ],
    )));
    let a = a.wait_with_output().unwrap();
    let a = json(a);
    let list = deploys(dir, &extra, moto);
    let ids: Vec<&str> = list.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            v1["id"].as_str().unwrap(),
            a["id"].as_str().unwrap(),
            c["id"].as_str().unwrap()
        ]
    );
    assert_eq!(
        c["previous"], a["id"],
        "C deployed on top of A, not beside it"
    );
    if moto.is_none() {
        assert!(dangling(&dir.join("store")).is_empty());
    }
    // A holder killed while it holds the lease.
    let out4 = build_version(dir, "v4");
    let mut d = cmd(T0 + 30, &["deploy", &out4, "--no-build"]);
    d.env("STALEGUARD_FAULT", "put@2");
    let o = run(d);
    assert_killed(&o, "put@2");
    let e = run(cmd(
        T0 + 40,
        &[
            "deploy",
            &out4,
            "--no-build",
            "--json",
            "--lock-timeout",
            if moto.is_some() { "1m" } else { "0s" },
        ],
    ));
    let err = stderr(&e);
    let e = json(e);
    assert_eq!(e["previous"], c["id"]);
    if moto.is_some() {
        assert!(err.contains("took over an expired deploy lease"), "{err}");
    }
    let after = deploys_json(dir, &extra, moto);
    assert!(after["lock"].is_null(), "{after}");
    assert_eq!(after["current"], e["id"]);
}

#[test]
fn concurrent_deploys_to_a_folder_take_turns_and_a_killed_holder_frees_the_lock() {
    concurrent_deploys(None);
}

#[test]
fn concurrent_deploys_to_s3_take_turns_and_a_killed_holders_lease_expires() {
    let moto = Moto::start();
    moto.create_bucket("site");
    concurrent_deploys(Some(&moto));
}

/// Several `invalidate` runs at once, one CDN each, on a store in S3 (moto, CloudFront on moto too): each
/// marks `purged.json` with a conditional write, so no run loses another's mark.
#[test]
fn concurrent_invalidates_on_s3_lose_no_purge_mark() {
    let moto = Moto::start();
    moto.create_bucket("web");
    let names = ["a", "b", "c", "d"];
    let mut config = String::from(
        "[build]\nsource = \"site\"\nout = \"out\"\n\n[deploy]\nstore = \"s3://web/site\"\n",
    );
    for n in names {
        moto.create_distribution("web", "/site", &format!("{n}.example.test"));
        config.push_str(&format!(
            "\n[[cdn]]\nname = \"{n}\"\nprovider = \"cloudfront\"\ndistribution = \"auto\"\ndomain = \"{n}.example.test\"\n"
        ));
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("staleguard.toml", config.as_str()),
            ("site/index.html", "<!doctype html><p>v1</p>\n"),
        ],
    );
    let sg_moto = |args: &[&str]| -> Command {
        let mut c = staleguard(dir);
        moto.apply(&mut c).args(args);
        c
    };
    let o = run(sg_moto(&["deploy", "--no-purge", "--no-verify"]));
    assert!(o.status.success(), "{}", stderr(&o));
    for round in 0..3 {
        write_files(
            dir,
            &[(
                "site/index.html",
                &format!("<!doctype html><p>v{}</p>\n", round + 2),
            )],
        );
        let o = run(sg_moto(&["deploy", "--no-purge", "--no-verify"]));
        assert!(o.status.success(), "{}", stderr(&o));
        let children: Vec<_> = names
            .iter()
            .map(|n| {
                let mut c = sg_moto(&["invalidate", "--cdn", n]);
                c.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let get = moto.aws(&["s3", "cp", "s3://web/site/.staleguard/purged.json", "-"]);
        assert!(get.status.success(), "{}", stderr(&get));
        let purged: Value = serde_json::from_slice(&get.stdout).unwrap();
        let current = {
            let o = run(sg_moto(&["deploys", "--json"]));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            v["current"].clone()
        };
        for n in names {
            assert_eq!(
                purged["cdns"][n]["deploy"], current,
                "round {round}: the mark of `{n}` was lost: {purged}"
            );
        }
    }
}
