//! `staleguard service` (the API and the workers, until SIGTERM or ctrl-c), its client commands
//! (`status`, `dead`, `retry`, `flush`) and `staleguard invalidate --scope` (an event sent to it).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use staleguard_core::config::ServiceConfig;
use staleguard_service::client::Client;
use staleguard_service::model::{Policy, Routing, Rule};
use staleguard_service::purge::{PurgeSender, Warm};

use crate::cli::{
    Global, InvalidateArgs, PurgeArgs, ServiceArgs, ServiceClientArgs, ServiceCommand, StoreArgs,
};
use crate::cmd::runtime;
use crate::exit::ExitStatus;
use crate::settings::{self, Loaded};

pub fn run(global: &Global, args: &ServiceArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    match &args.action {
        None => serve(global, &loaded, args),
        Some(action) => ask(global, &loaded, &args.client, action),
    }
}

/// The routing of scopes: `[[service.scope]]` rules in order, then `[service]` itself.
fn routing(c: &ServiceConfig, all_cdns: &[String]) -> Routing {
    let rule = |pattern: &str, s: staleguard_core::config::ScopeSettings| Rule {
        pattern: pattern.to_string(),
        policy: Policy {
            debounce: s.debounce.get(),
            max_wait: s.max_wait.get(),
            max_items: s.max_items,
            max_attempts: s.max_attempts,
            backoff: staleguard_core::backoff::Backoff::new(
                c.retry_base.get(),
                2.0,
                c.retry_max.get(),
            )
            .with_jitter(staleguard_core::backoff::Jitter::Full),
        },
        providers: if s.cdns.is_empty() {
            all_cdns.to_vec()
        } else {
            s.cdns
        },
    };
    Routing {
        rules: c
            .scopes
            .iter()
            .map(|r| rule(&r.pattern, c.settings(Some(r))))
            .collect(),
        default: rule("*", c.settings(None)),
    }
}

/// The API's tokens: the `token-env` variable (comma-separated), else the `token-file` lines.
fn tokens(loaded: &Loaded) -> Result<Vec<String>> {
    let c = &loaded.config.service;
    let split = |s: &str, sep: char| -> Vec<String> {
        s.split(sep)
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    if let Ok(v) = std::env::var(&c.token_env) {
        let t = split(&v, ',');
        if !t.is_empty() {
            return Ok(t);
        }
    }
    if !c.token_file.is_empty() {
        let path = loaded.base.join(&c.token_file);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the service's token file `{}` ([service] token-file)",
                path.display()
            )
        })?;
        let t = split(&text, '\n');
        if !t.is_empty() {
            return Ok(t);
        }
        bail!(
            "the token file `{}` holds no token\nhint: write one token per line (e.g. `openssl rand -hex 32`)",
            path.display()
        );
    }
    bail!(
        "the service needs a bearer token: none in ${} and no [service] token-file\nhint: export {}=$(openssl rand -hex 32), and give the same token to the apps that send events",
        c.token_env,
        c.token_env
    )
}

fn serve(global: &Global, loaded: &Loaded, args: &ServiceArgs) -> Result<ExitCode> {
    let c = &loaded.config;
    if c.cdn.is_empty() {
        bail!(
            "the service has no CDN to purge: the config has no [[cdn]] entry\nhint: add one, e.g.\n  [[cdn]]\n  provider = \"varnish\"\n  nodes = [\"http://127.0.0.1:6081\"]"
        );
    }
    let svc = &c.service;
    let tokens = tokens(loaded)?;
    let all: Vec<String> = if svc.cdns.is_empty() {
        c.cdn.iter().map(|x| x.label().to_string()).collect()
    } else {
        svc.cdns.clone()
    };
    let routing = routing(svc, &all);
    // `--db`, else $STALEGUARD_SERVICE_DB, else `[service] db`: a PostgreSQL URL or a SQLite file.
    let given = args.db.clone().or_else(|| {
        std::env::var("STALEGUARD_SERVICE_DB")
            .ok()
            .filter(|v| !v.is_empty())
    });
    let db = match given {
        Some(d) if staleguard_service::pg::is_url(&d) => Db::Pg(d),
        Some(d) => Db::File(
            std::env::current_dir()
                .context("cannot read the current folder")?
                .join(d),
        ),
        None if staleguard_service::pg::is_url(&svc.db) => Db::Pg(svc.db.clone()),
        None => Db::File(loaded.base.join(&svc.db)),
    };
    if let Db::File(db) = &db
        && let Some(dir) = db.parent()
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the folder of the event log `{}`",
                db.display()
            )
        })?;
    }
    let store = settings::store_config(loaded, &StoreArgs { store: None })?;
    let mut purge =
        settings::purge_settings(loaded, &store, &PurgeArgs::default(), false, false, None)?;
    purge
        .cdns
        .retain(|x| routing.providers().iter().any(|p| p == x.label()));
    // Opened once for the process: one rate limiter and one connection pool per CDN across scopes.
    purge.opened = Some(staleguard_invalidate::purge::Opened::default());
    // The service bumps the namespaces its events name (the sender does), not the deploy's.
    purge.app_caches = None;
    let app_caches = if c.app_cache.is_empty() {
        None
    } else {
        Some(Arc::new(staleguard_appcache::open_all(&c.app_cache)?))
    };
    let warm = svc.warm.then(|| {
        let v = &c.verify;
        Warm {
            bases: staleguard_invalidate::prove::bases(v, &[]),
            concurrency: v.warm_concurrency.max(1),
            encodings: v.warm_encodings.clone(),
            host: (!v.host.is_empty()).then(|| v.host.clone()),
        }
    });
    if svc.warm && warm.as_ref().is_some_and(|w| w.bases.is_empty()) {
        bail!("[service] warm = true needs [verify] cdn-url: the site as users reach it");
    }
    let prove = (svc.verify_sample > 0).then(|| {
        let v = &c.verify;
        staleguard_service::purge::Prove {
            bases: staleguard_invalidate::prove::bases(v, &[]),
            origin: v.origin_url.clone(),
            sample: svc.verify_sample,
            timeout: v.timeout.get(),
            host: (!v.host.is_empty()).then(|| v.host.clone()),
        }
    });
    if prove
        .as_ref()
        .is_some_and(|p| p.bases.is_empty() || p.origin.is_empty())
    {
        bail!(
            "[service] verify-sample needs [verify] cdn-url (the site as users reach it) and [verify] origin-url (what the CDN pulls from)"
        );
    }
    let sender = PurgeSender {
        prove,
        settings: purge,
        store: store.clone(),
        base: loaded.base.clone(),
        rebound: svc
            .rebound
            .iter()
            .map(|(k, v)| (k.clone(), v.get()))
            .collect::<BTreeMap<_, _>>(),
        warm,
        app_caches,
    };
    // `[service] watch`: the drift monitor in the same process, its metrics on the same endpoint.
    let watch = if svc.watch {
        let prove = settings::prove_settings(loaded, &store, &[], None)?;
        if prove.bases.is_empty() {
            bail!("[service] watch = true needs [verify] cdn-url: the site as users reach it");
        }
        let w = &c.watch;
        let watcher = staleguard_watch::Watcher::new(staleguard_watch::WatchOptions {
            prove,
            sample: w.sample,
            stale_rounds: w.stale_rounds,
            request_timeout: w.request_timeout.get(),
        });
        Some((watcher, w.interval.get(), settings::webhook(loaded)))
    } else {
        None
    };
    let watch_store = store.clone();
    let watch_base = loaded.base.clone();
    let listen = args.listen.clone().unwrap_or_else(|| svc.listen.clone());
    let concurrency = svc.concurrency;
    let (json, quiet) = (global.json, global.quiet);
    let (queue, lease) = (svc.queue, svc.lease.get());
    let rt = runtime()?;
    rt.block_on(async move {
        let (api, shown) = match &db {
            Db::File(path) => (
                staleguard_service::api::open_routed(path, routing, tokens, queue)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("cannot open the event log `{}`", path.display()))?,
                path.display().to_string(),
            ),
            Db::Pg(url) => (
                staleguard_service::api::open_pg(url, routing, tokens, queue, &instance(), lease)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                staleguard_core::secret::redact_url(url).into_owned(),
            ),
        };
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen}\nhint: pick another address with --listen or [service] listen (port 0 picks a free one)")
            })?;
        let addr = listener.local_addr().context("cannot read the listening address")?;
        let shutdown = crate::cmd::serve::shutdown_signal().context("cannot install signal handlers")?;
        if json {
            println!(
                "{}",
                serde_json::json!({"listening": format!("http://{addr}"), "db": shown})
            );
        } else if !quiet {
            println!("service listening on http://{addr} (event log {shown})");
        }
        let _ = std::io::stdout().flush();
        let watching = watch.map(|(mut watcher, interval, hook)| {
            api.metrics.attach(watcher.metrics.registry());
            tokio::spawn(async move {
                let load = || staleguard_store::PurgeState::load(&watch_store.store, &watch_store, &watch_base);
                staleguard_watch::run(
                    &mut watcher,
                    load,
                    hook.as_ref(),
                    interval,
                    None,
                    |e| match e {
                        staleguard_watch::Event::Round(r) if !r.fresh => tracing::warn!(
                            round = r.round,
                            deploy = %r.deploy,
                            stale = r.edges.iter().map(|e| e.stale.len()).sum::<usize>(),
                            "watch: users may get stale content"
                        ),
                        staleguard_watch::Event::Round(r) => {
                            tracing::debug!(round = r.round, "watch: fresh")
                        }
                        staleguard_watch::Event::Failed(e) => tracing::warn!("watch round: {e}"),
                        staleguard_watch::Event::Warning(w) => tracing::warn!("watch: {w}"),
                    },
                    std::future::pending::<()>(),
                )
                .await
            })
        });
        staleguard_service::server::run(api, Arc::new(sender), listener, concurrency, shutdown).await;
        if let Some(w) = watching {
            w.abort();
        }
        if !quiet && !json {
            eprintln!("stopped");
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where the events are kept.
enum Db {
    File(std::path::PathBuf),
    Pg(String),
}

/// This instance's name in PostgreSQL leases: host, process and start time (unique per start).
fn instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}-{}-{nanos:x}", std::process::id())
}

/// A client of the running service: its URL (`--service-url`, else `[service] listen`) and token.
fn client(loaded: &Loaded, args: &ServiceClientArgs) -> Result<Client> {
    let svc = &loaded.config.service;
    let base = match &args.service_url {
        Some(u) => u.clone(),
        None => format!("http://{}", svc.listen),
    };
    let token = std::env::var(&svc.token_env).unwrap_or_default();
    let token = token.split(',').map(str::trim).find(|t| !t.is_empty());
    let Some(token) = token else {
        bail!(
            "no token for the service: ${} is unset\nhint: export {} with one of the service's tokens",
            svc.token_env,
            svc.token_env
        );
    };
    Client::new(&base, token).map_err(|e| anyhow::anyhow!("{e}"))
}

fn print(global: &Global, v: &Value, human: impl FnOnce(&Value)) {
    if global.json {
        println!("{v}");
    } else if !global.quiet {
        human(v);
    }
}

fn ask(
    global: &Global,
    loaded: &Loaded,
    args: &ServiceClientArgs,
    action: &ServiceCommand,
) -> Result<ExitCode> {
    let client = client(loaded, args)?;
    let rt = runtime()?;
    let err = |e: staleguard_service::client::ClientError| anyhow::anyhow!("{e}");
    match action {
        ServiceCommand::Status { scope, seq } => {
            if let Some(seq) = seq {
                let v = rt
                    .block_on(client.event(*seq, Duration::ZERO))
                    .map_err(err)?;
                print(global, &v, print_event);
                return Ok(ExitCode::SUCCESS);
            }
            let Some(scope) = scope else {
                bail!("which scope? pass --scope ws:42 (or --seq N for one event)");
            };
            let v = rt.block_on(client.scope(scope)).map_err(err)?;
            print(global, &v, |v| {
                println!("scope {}", v["scope"].as_str().unwrap_or(scope));
                if let Some(p) = v["pending"].as_object() {
                    for (cdn, n) in p {
                        println!("  {cdn:<20} {n} pending");
                    }
                }
                match v["due_at_ms"].as_u64() {
                    Some(ms) => println!("  due at {}", rfc3339_ms(ms)),
                    None => println!("  nothing due"),
                }
            });
        }
        ServiceCommand::Dead => {
            let v = rt.block_on(client.dead_letters()).map_err(err)?;
            print(global, &v, |v| {
                let list = v["dead_letters"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no dead letters");
                }
                for d in list {
                    println!(
                        "#{} {} via {}: events {}..={} ({} items): {}",
                        d["id"],
                        d["scope"].as_str().unwrap_or(""),
                        d["provider"].as_str().unwrap_or(""),
                        d["from"].as_u64().unwrap_or(0) + 1,
                        d["through"],
                        d["items"].as_array().map_or(0, Vec::len),
                        d["reason"]
                            .as_str()
                            .unwrap_or("")
                            .lines()
                            .next()
                            .unwrap_or("")
                    );
                }
            });
        }
        ServiceCommand::Retry { id } => {
            let v = rt.block_on(client.retry(*id)).map_err(err)?;
            print(global, &v, |v| {
                println!(
                    "dead letter #{id} sent again as event {} of {}",
                    v["seq"],
                    v["scope"].as_str().unwrap_or("")
                );
            });
        }
        ServiceCommand::Flush { scope } => {
            let v = rt.block_on(client.flush(scope)).map_err(err)?;
            print(global, &v, |v| {
                if v["flushed"].as_bool() == Some(true) {
                    println!("{scope}: due now");
                } else {
                    println!("{scope}: nothing pending");
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_event(v: &Value) {
    println!(
        "event {} ({}): {}",
        v["seq"],
        v["scope"].as_str().unwrap_or("scope no longer kept"),
        v["state"].as_str().unwrap_or("")
    );
    for p in v["providers"].as_array().cloned().unwrap_or_default() {
        let ids: Vec<&str> = p["ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "  {:<20} {}{}",
            p["provider"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            if ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", ids.join(", "))
            }
        );
    }
}

fn rfc3339_ms(ms: u64) -> String {
    staleguard_core::manifest::format_rfc3339((ms / 1000) as i64)
}

/// `staleguard invalidate --scope S`: the items as one event to the running service; with `--wait`,
/// waits until every CDN of the scope purged it (exit 3 when the wait ends first, 1 when dead).
pub fn send_event(global: &Global, args: &InvalidateArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let scope = args.scope.as_deref().unwrap_or_default();
    if args.deploy.is_some() || args.static_ || args.dry_run {
        bail!(
            "--scope sends paths, prefixes, tags or --all to the service; --deploy, --static and --dry-run are for purging now"
        );
    }
    let mut event = staleguard_service::EventBody::default();
    event.paths = args.paths.clone();
    event.prefixes = args.prefixes.clone();
    event.tags = args.tags.clone();
    event.everything = args.all;
    event.namespaces = args.purge.namespaces.clone();
    // Without a key of the caller's, one of this invocation's: a request retried after a lost answer
    // (the client retries a restarting service) is still one event.
    event.key = Some(args.key.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("cli-{}-{nanos:x}", std::process::id())
    }));
    // The service's own checks, here first: the error names the flag's value before any request.
    staleguard_service::check_scope(scope)
        .map_err(|r| anyhow::anyhow!("--scope `{scope}`: {}", r.reason))?;
    staleguard_service::validate(&event, &staleguard_service::Limits::default())
        .map_err(|r| anyhow::anyhow!("{}: {}", r.field, r.reason))?;
    let client = client(&loaded, &args.service)?;
    let rt = runtime()?;
    let err = |e: staleguard_service::client::ClientError| anyhow::anyhow!("{e}");
    let accepted = rt.block_on(client.send(scope, &event)).map_err(err)?;
    let seq = accepted["seq"].as_u64().unwrap_or(0);
    if !args.purge.wait {
        print(global, &accepted, |v| {
            println!(
                "event {seq} of {scope} acknowledged{}",
                v["due_at_ms"]
                    .as_u64()
                    .map(|ms| format!("; due at {}", rfc3339_ms(ms)))
                    .unwrap_or_default()
            );
        });
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + args.wait_timeout.get();
    let status = rt.block_on(async {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = client.event(seq, left.min(Duration::from_secs(30))).await?;
            let state = v["state"].as_str().unwrap_or("").to_string();
            if state == "purged" || state == "dead" || Instant::now() >= deadline {
                return Ok::<_, staleguard_service::client::ClientError>(v);
            }
        }
    });
    let v = status.map_err(err)?;
    print(global, &v, print_event);
    Ok(match v["state"].as_str() {
        Some("purged") => ExitCode::SUCCESS,
        Some("dead") => ExitCode::from(ExitStatus::Failed),
        _ => {
            if !global.quiet {
                eprintln!(
                    "warning: event {seq} is acknowledged (it will be purged) but was not purged within {}",
                    args.wait_timeout
                );
            }
            ExitCode::from(ExitStatus::Stale)
        }
    })
}
