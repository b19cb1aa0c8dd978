//! The stacks as their users run them: the Vite app loaded in headless Chromium (Debian's `chromium`,
//! `scripts/peers/chromium.sh`) from `staleguard serve`, and the Django fixture under gunicorn + WhiteNoise
//! across two rebuilds while a client keeps requesting the first page's assets
//! (`examples/django/check_live.py`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn strip_ansi(s: &str) -> String {
    regex::Regex::new(r"\x1b\[[0-9;]*m")
        .unwrap()
        .replace_all(s, "")
        .into_owned()
}

#[test]
fn the_vite_app_renders_its_lazy_route_in_chromium_with_no_404_and_nothing_fetched_twice() {
    let chromium = repo().join("scripts/peers/chromium.sh");
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "headless Chromium is missing: run `scripts/peers/chromium.sh install` (scripts/test.sh does)"
    );
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/vite/output"), &t.path().join("src"));
    // The strictest setting: no unhashed copies, so any reference to a renamed chunk would 404.
    build(t.path(), "src", "out", &["--no-originals"]);
    let log = t.path().join("serve.log");
    let mut c = staleguard(t.path());
    c.args(["serve", "out", "--port", "0", "-vv"])
        .stderr(std::fs::File::create(&log).unwrap());
    let (child, base) = spawn_listening(c);
    let _served = Killed(child);
    let dom = t.path().join("dom.html");
    let o = Command::new("bash")
        .arg(&chromium)
        .args(["dump", &format!("{base}/#/about"), dom.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dom = std::fs::read_to_string(&dom).unwrap();
    assert!(
        dom.contains("About page loaded"),
        "the lazy route did not render:\n{dom}"
    );
    // Give the server a moment to flush its request log.
    std::thread::sleep(Duration::from_millis(300));
    let text = strip_ansi(&std::fs::read_to_string(&log).unwrap());
    let re = regex::Regex::new(r"path=(\S+) status=(\d+)").unwrap();
    let mut seen: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for c in re.captures_iter(&text) {
        seen.entry(c[1].to_string())
            .or_default()
            .push(c[2].parse().unwrap());
    }
    assert!(
        seen.keys().any(|p| p.contains("/assets/About-")),
        "the lazy chunk was never requested: {seen:?}"
    );
    for (path, statuses) in &seen {
        assert!(
            statuses.iter().all(|s| *s < 400),
            "`{path}` answered {statuses:?}: {seen:?}"
        );
        // Downloaded once: a second 200 is a second download (a 304 is a revalidation without a body:
        // browsers revalidate a `no-cache` icon they use for the tab and for the web manifest).
        let downloads = statuses.iter().filter(|s| **s == 200).count();
        assert!(
            downloads <= 1,
            "`{path}` downloaded {downloads} times: {seen:?}"
        );
    }
}

#[test]
fn django_under_gunicorn_and_whitenoise_keeps_serving_old_pages_across_two_rebuilds() {
    let gunicorn = venv_bin("gunicorn");
    let python = venv_bin("python");
    let example = repo().join("examples/django");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // The recipe: collectstatic (plain storage) into a staging folder, staleguard build into STATIC_ROOT.
    copy_dir(&example.join("output"), &dir.join("collected"));
    write_files(
        dir,
        &[(
            "staleguard.toml",
            "[build]\nsource = 'collected'\nout = 'static_root'\nurl-prefix = '/static/'\n",
        )],
    );
    let rebuild = || {
        let mut c = staleguard(dir);
        c.arg("build");
        let o = run(c);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
    };
    rebuild();
    let port = free_port();
    let pid_file = dir.join("gunicorn.pid");
    let server = Command::new(&gunicorn)
        .args(["--chdir", example.join("project").to_str().unwrap()])
        .args(["--bind", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .args(["--graceful-timeout", "5", "--no-control-socket"])
        .args(["--pid", pid_file.to_str().unwrap()])
        .arg("fixture_site.wsgi:application")
        .env("SG_STATIC_ROOT", dir.join("static_root"))
        .env(
            "SG_STORAGE",
            "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        )
        .env("SG_DB_PATH", dir.join("db.sqlite3"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("gunicorn.log")).unwrap())
        .spawn()
        .unwrap();
    let server = Killed(server);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gunicorn did not start: {}",
            std::fs::read_to_string(dir.join("gunicorn.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = Command::new(&python)
        .arg(example.join("check_live.py"))
        .args([&base, "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let css = dir.join("collected/site_app/css/site.css");
    let original = std::fs::read_to_string(&css).unwrap();
    for (k, colour) in ["#0b7285", "#862e9c"].into_iter().enumerate() {
        std::thread::sleep(Duration::from_secs(3));
        std::fs::write(
            &css,
            format!("{original}\n:root {{ --rebuild-{k}: {colour}; }}\n"),
        )
        .unwrap();
        rebuild();
        // A deploy restarts the app (graceful: HUP re-reads staticfiles.json and WhiteNoise's file list).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            Command::new("kill")
                .args(["-HUP", pid.trim()])
                .status()
                .unwrap()
                .success()
        );
    }
    let o = client.wait_with_output().unwrap();
    drop(server);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(" 0 failed"),
        "requests failed across the rebuilds:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let pages: usize = regex::Regex::new(r"distinct pages: (\d+)")
        .unwrap()
        .captures(&out)
        .map_or(0, |c| c[1].parse().unwrap());
    assert!(pages >= 2, "the page never switched versions:\n{out}");
}
