//! Settings resolved once, from the command line over the environment over the config file over the
//! defaults, into plain types the library crates take.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use staleguard_core::config::{Codec, Config, normalize_prefix};
use staleguard_core::{HumanDuration, secret};

use crate::cli::{
    BuildArgs, DeployArgs, Global, InvalidateArgs, PurgeArgs, RollbackArgs, ServeArgs, StoreArgs,
};

/// The config file name looked for upward from the current folder.
pub const CONFIG_NAME: &str = "staleguard.toml";

/// A loaded config and the folder its relative paths are relative to.
pub struct Loaded {
    pub config: Config,
    /// The config file, when there is one.
    pub path: Option<PathBuf>,
    /// The config file's folder, or the current folder without one.
    pub base: PathBuf,
}

/// Finds and parses the config: `--config` (must exist), else the nearest `staleguard.toml` upward.
pub fn load(global: &Global) -> Result<Loaded> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let path = match &global.config {
        Some(p) => {
            let p = cwd.join(p);
            if !p.is_file() {
                bail!(
                    "config file `{}` does not exist\nhint: create it, or drop --config to use `{CONFIG_NAME}` from this folder or a parent",
                    p.display()
                );
            }
            Some(p)
        }
        None => find_upward(&cwd),
    };
    let Some(path) = path else {
        return Ok(Loaded {
            config: Config::default(),
            path: None,
            base: cwd,
        });
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config `{}`", path.display()))?;
    // Any URL of the file with a password (a node, `cdn-url`, `origin-url`, an endpoint), even one a
    // parse error quotes.
    secret::register_urls_in(&text);
    let config = Config::from_toml(&text, &path.display().to_string())?;
    register_config_secrets(&config);
    let base = path.parent().map(Path::to_path_buf).unwrap_or(cwd);
    Ok(Loaded {
        config,
        path: Some(path),
        base,
    })
}

/// Environment variables that hold credentials the libraries read themselves (object_store, the AWS
/// SDK), registered as secrets whether or not the config uses them.
const SECRET_ENV: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// Registers what is secret in the process itself, before anything is printed: the credentials of
/// every URL on the command line or in the environment (`--cdn-url http://user:password@…`,
/// `STALEGUARD_STORE`, `AWS_ENDPOINT_URL`, `HTTPS_PROXY`), the cloud credentials of [`SECRET_ENV`], and
/// the default API token and webhook variables (the config may name others: [`load`] adds them).
pub fn register_process_secrets() {
    for arg in std::env::args_os() {
        secret::register_urls_in(&arg.to_string_lossy());
    }
    for (_, value) in std::env::vars_os() {
        secret::register_urls_in(&value.to_string_lossy());
    }
    for var in SECRET_ENV {
        register_env(var);
    }
    for var in ["CLOUDFLARE_API_TOKEN", "FASTLY_API_TOKEN"] {
        register_env(var);
    }
    if let Ok(url) = std::env::var("STALEGUARD_WEBHOOK_URL") {
        secret::register_secret_url(&url);
    }
}

/// Registers the secrets a config names: each `[[cdn]]`'s `token-env` variable and the webhook URL in
/// `[verify] webhook-env`.
fn register_config_secrets(config: &Config) {
    for cdn in &config.cdn {
        register_env(cdn.token_var());
    }
    if !config.verify.webhook_env.is_empty()
        && let Ok(url) = std::env::var(&config.verify.webhook_env)
    {
        secret::register_secret_url(&url);
    }
}

fn register_env(var: &str) {
    if var.is_empty() || var.contains(['=', '\0']) {
        return;
    }
    if let Some(v) = std::env::var_os(var) {
        secret::register(&v.to_string_lossy());
    }
}

fn find_upward(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(CONFIG_NAME))
        .find(|p| p.is_file())
}

/// Resolves `build` settings into the library's options.
pub fn build_options(loaded: &Loaded, args: &BuildArgs) -> Result<staleguard_assets::BuildOptions> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let mut cfg = loaded.config.build.clone();
    let source = match &args.source {
        Some(s) => cwd.join(s),
        None => loaded.base.join(&cfg.source),
    };
    let out = match &args.out {
        Some(o) => cwd.join(o),
        None => loaded.base.join(&cfg.out),
    };
    let cache_dir = match &args.cache_dir {
        Some(c) => cwd.join(c),
        None => loaded.base.join(&cfg.cache_dir),
    };
    if args.strict {
        cfg.strict = true;
    }
    if args.no_strict {
        cfg.strict = false;
    }
    if let Some(list) = &args.compress {
        cfg.compress = parse_codecs(list)?;
    }
    if let Some(p) = &args.url_prefix {
        cfg.url_prefix = normalize_prefix(p).map_err(anyhow::Error::msg)?;
    }
    if args.no_originals {
        cfg.keep_originals = false;
    }
    if args.no_js_imports {
        cfg.js_imports = false;
    }
    if let Some(j) = args.jobs {
        cfg.jobs = j;
    }
    let now_unix = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<i64>()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds"))?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    Ok(staleguard_assets::BuildOptions {
        git: git_info(&source),
        source,
        out,
        cache_dir,
        config: cfg,
        now_unix,
        clock_unix: deploy_now()?,
        builder: format!("staleguard {}", env!("CARGO_PKG_VERSION")),
    })
}

/// Where a build reuses sidecars from: a store URL and the deploy settings to open it with.
#[derive(Debug, Clone)]
pub struct ReuseFrom {
    pub url: String,
    pub config: staleguard_core::DeployConfig,
}

/// `build`: `--reuse-from`, else `[build] reuse-from`, else none.
pub fn build_reuse(loaded: &Loaded, args: &BuildArgs) -> Result<Option<ReuseFrom>> {
    let url = match &args.reuse_from {
        Some(u) => u.clone(),
        None => loaded.config.build.reuse_from.clone(),
    };
    if url.is_empty() {
        return Ok(None);
    }
    staleguard_core::config::check_store_url(&url)
        .map_err(|e| anyhow::anyhow!("--reuse-from: {e}"))?;
    let mut config = loaded.config.deploy.clone();
    // The deploy state lives elsewhere only for the deploy's own store.
    if url != config.store {
        config.state.clear();
    }
    config.store = url.clone();
    Ok(Some(ReuseFrom { url, config }))
}

/// `deploy`'s build reuses from the store it deploys to (`--store`, else `[deploy] store`) unless
/// `--no-reuse` or `[deploy] reuse = false`: the deploy trusts that store's record for what it does not
/// upload anyway, and only there are the sidecars the build leaves out.
pub fn deploy_reuse(loaded: &Loaded, args: &DeployArgs) -> Result<Option<ReuseFrom>> {
    if args.no_reuse || !loaded.config.deploy.reuse {
        return Ok(None);
    }
    let config = deploy_config(loaded, &args.store)?;
    Ok(Some(ReuseFrom {
        url: config.store.clone(),
        config,
    }))
}

fn parse_codecs(list: &[String]) -> Result<Vec<Codec>> {
    if list.len() == 1 && list[0].trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    list.iter()
        .map(|s| {
            Codec::parse(s)
                .with_context(|| format!("unknown compression `{s}`; use br, gzip, zstd or none"))
        })
        .collect()
}

/// The commit and cleanliness of the work tree holding `dir`, when git is installed and it is one.
fn git_info(dir: &Path) -> Option<staleguard_assets::GitInfo> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(staleguard_assets::GitInfo { commit, dirty })
}

/// Resolves `serve` settings into the server's options.
pub fn serve_options(loaded: &Loaded, args: &ServeArgs) -> Result<staleguard_serve::ServeOptions> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let mut config = loaded.config.serve.clone();
    let dir = match &args.dir {
        Some(d) => cwd.join(d),
        None if !config.dir.is_empty() => loaded.base.join(&config.dir),
        None => loaded.base.join(&loaded.config.build.out),
    };
    if let Some(b) = &args.bind {
        config.bind = b.clone();
    }
    if let Some(p) = args.port {
        config.port = p;
    }
    Ok(staleguard_serve::ServeOptions {
        dir,
        config,
        routes: loaded.config.routes.clone(),
        manifest_name: loaded.config.build.manifest.clone(),
        build_info_name: loaded.config.build.build_info.clone(),
    })
}

/// The deploy section with `--store`/`STALEGUARD_STORE` applied.
fn deploy_config(loaded: &Loaded, store: &StoreArgs) -> Result<staleguard_core::DeployConfig> {
    let mut config = loaded.config.deploy.clone();
    if let Some(s) = &store.store {
        staleguard_core::config::check_store_url(s).map_err(anyhow::Error::msg)?;
        config.store = s.clone();
    }
    Ok(config)
}

/// The deploy's clock: `STALEGUARD_NOW` (Unix seconds; reproducible runs and tests of GC ages), else now.
pub fn deploy_now() -> Result<i64> {
    match std::env::var("STALEGUARD_NOW") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("STALEGUARD_NOW=`{v}` is not a Unix time in seconds")),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)),
    }
}

/// Resolves `deploy` settings into the library's options.
pub fn deploy_options(
    loaded: &Loaded,
    args: &DeployArgs,
) -> Result<staleguard_store::DeployOptions> {
    let mut config = deploy_config(loaded, &args.store)?;
    if let Some(n) = args.max_deletes {
        config.max_deletes = n;
    }
    if let Some(n) = args.keep_deploys {
        if n == 0 {
            bail!("--keep-deploys must be at least 1");
        }
        config.keep_deploys = n;
    }
    if let Some(a) = &args.keep_age {
        config.keep_age = a.clone();
    }
    if let Some(j) = args.concurrency {
        config.concurrency = j.clamp(1, 256);
    }
    lock_timeout(&mut config, args.lock_timeout.as_ref());
    store_options(
        loaded,
        config,
        deploy_dir(loaded, args)?,
        args.dry_run,
        args.verify_remote,
        !args.no_gc,
    )
}

/// The folder `deploy` uploads: DIR, else `[deploy] dir`, else `build.out`.
fn deploy_dir(loaded: &Loaded, args: &DeployArgs) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let dir = &loaded.config.deploy.dir;
    Ok(match &args.dir {
        Some(d) => cwd.join(d),
        None if !dir.is_empty() => loaded.base.join(dir),
        None => loaded.base.join(&loaded.config.build.out),
    })
}

/// The build `deploy` runs first: the same as `staleguard build` with the config's settings, unless
/// `--no-build`, or the deploy's folder is not the build's output, or there is no build source (a folder
/// made by another tool).
pub fn deploy_build(
    loaded: &Loaded,
    args: &DeployArgs,
) -> Result<Option<staleguard_assets::BuildOptions>> {
    if args.no_build {
        return Ok(None);
    }
    let dir = deploy_dir(loaded, args)?;
    let opts = build_options(loaded, &BuildArgs::default())?;
    if !same_dir(&dir, &opts.out) {
        tracing::info!(dir = %dir.display(), out = %opts.out.display(), "not building: the deploy's folder is not the build output");
        return Ok(None);
    }
    if !opts.source.is_dir() {
        tracing::info!(source = %opts.source.display(), "not building: no build source");
        return Ok(None);
    }
    Ok(Some(opts))
}

/// Whether two paths name the same folder: compared as real paths when both exist, else lexically
/// (`a/./b/../c` is `a/c`).
fn same_dir(a: &Path, b: &Path) -> bool {
    if let (Ok(a), Ok(b)) = (a.canonicalize(), b.canonicalize()) {
        return a == b;
    }
    fn lexical(p: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    }
    lexical(a) == lexical(b)
}

/// Options for `rollback` and `deploys` (no folder is read).
pub fn rollback_options(
    loaded: &Loaded,
    args: &RollbackArgs,
) -> Result<staleguard_store::DeployOptions> {
    let mut config = deploy_config(loaded, &args.store)?;
    if let Some(j) = args.concurrency {
        config.concurrency = j.clamp(1, 256);
    }
    lock_timeout(&mut config, args.lock_timeout.as_ref());
    let dir = loaded.base.join(&loaded.config.build.out);
    store_options(loaded, config, dir, args.dry_run, false, false)
}

fn lock_timeout(config: &mut staleguard_core::DeployConfig, arg: Option<&HumanDuration>) {
    if let Some(a) = arg {
        config.lock_timeout = a.clone();
    }
}

pub fn store_config(loaded: &Loaded, args: &StoreArgs) -> Result<staleguard_core::DeployConfig> {
    deploy_config(loaded, args)
}

fn store_options(
    loaded: &Loaded,
    config: staleguard_core::DeployConfig,
    dir: PathBuf,
    dry_run: bool,
    verify_remote: bool,
    gc: bool,
) -> Result<staleguard_store::DeployOptions> {
    let b = &loaded.config.build;
    let pointers = [&b.manifest, &b.django_manifest, &b.build_info]
        .into_iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect();
    // The manifests are for the origin and the framework; the build info is public only where it is the
    // version endpoint (`[verify] version-path`).
    let version_path = loaded.config.verify.version_path(&loaded.config.serve);
    let build_info_public = !b.build_info.is_empty()
        && version_path.trim_start_matches('/')
            == format!("{}{}", b.url_prefix.trim_start_matches('/'), b.build_info);
    let mut private: Vec<String> = Vec::new();
    if !config.publish_manifests {
        private.extend([&b.manifest, &b.django_manifest].into_iter().cloned());
    }
    if !build_info_public && !config.publish_manifests {
        private.push(b.build_info.clone());
    }
    private.retain(|n| !n.is_empty());
    Ok(staleguard_store::DeployOptions {
        private,
        git_commit: std::fs::read(dir.join(&b.build_info))
            .ok()
            .and_then(|v| serde_json::from_slice::<staleguard_core::BuildInfo>(&v).ok())
            .and_then(|i| i.git_commit)
            .or_else(|| git_info(&loaded.base).map(|g| g.commit)),
        dir,
        base: loaded.base.clone(),
        config,
        routes: loaded.config.routes.clone(),
        default_headers: loaded.config.serve.effective_headers(),
        cors_fonts: loaded.config.serve.cors_fonts,
        tag_header: loaded.config.serve.tag_header.clone(),
        manifest_name: b.manifest.clone(),
        pointers,
        dry_run,
        verify_remote,
        gc,
        now: deploy_now()?,
    })
}

/// `STALEGUARD_NOW` as a fixed clock (Unix seconds), for reproducible marks and references; `None`:
/// the real clock.
pub fn fixed_now() -> Result<Option<i64>> {
    match std::env::var("STALEGUARD_NOW") {
        Ok(_) => deploy_now().map(Some),
        Err(_) => Ok(None),
    }
}

/// The app caches a purge run bumps first: none with `--no-app-cache`; `--namespace`s, else each
/// target's own.
pub fn app_cache_step(
    loaded: &Loaded,
    args: &PurgeArgs,
) -> Result<Option<staleguard_invalidate::purge::AppCacheStep>> {
    if args.no_app_cache {
        return Ok(None);
    }
    for ns in &args.namespaces {
        staleguard_core::config::check_namespace(ns)
            .map_err(|e| anyhow::anyhow!("--namespace: {e}"))?;
    }
    let namespaces = (!args.namespaces.is_empty()).then(|| args.namespaces.clone());
    staleguard_invalidate::purge::AppCacheStep::open(&loaded.config.app_cache, namespaces)
        .map_err(anyhow::Error::from)
}

/// Resolves a purge run's settings: the CDNs `--cdn` selects (an unknown name is refused before anything
/// changes), whether to wait, and, when `origin` (a deploy or rollback), the origin's version endpoint to
/// wait for first.
pub fn purge_settings(
    loaded: &Loaded,
    store: &staleguard_core::DeployConfig,
    args: &PurgeArgs,
    dry_run: bool,
    origin: bool,
    observer: Option<staleguard_cdn::wrap::Observer>,
) -> Result<staleguard_invalidate::PurgeSettings> {
    use staleguard_invalidate::purge::{self, OriginCheck, Wait};
    let c = &loaded.config;
    let cdns = purge::select(&c.cdn, &args.cdns)?
        .into_iter()
        .cloned()
        .collect();
    let v = &c.verify;
    let origin = if origin && !v.origin_url.is_empty() {
        Some(OriginCheck {
            url: format!("{}{}", v.origin_url, v.version_path(&c.serve)),
            timeout: v.origin_timeout.get(),
        })
    } else {
        None
    };
    Ok(staleguard_invalidate::PurgeSettings {
        cdns,
        store_url: store.store.clone(),
        build_url_prefix: c.build.url_prefix.clone(),
        clean_urls: c.serve.clean_urls,
        dry_run,
        wait: match (args.wait, args.no_wait) {
            (_, true) => Wait::Never,
            (true, false) => Wait::Always,
            (false, false) => Wait::AsConfigured,
        },
        origin,
        now: fixed_now()?,
        observer,
        opened: None,
        app_caches: app_cache_step(loaded, args)?,
    })
}

/// Resolves a proof run's settings: the bases (`--cdn-url` over `[verify] cdn-url`), the deadline
/// (`--timeout` over `[verify] timeout`), where keys are served.
pub fn prove_settings(
    loaded: &Loaded,
    store: &staleguard_core::DeployConfig,
    bases: &[String],
    timeout: Option<&staleguard_core::HumanDuration>,
) -> Result<staleguard_invalidate::ProveSettings> {
    let c = &loaded.config;
    let v = &c.verify;
    // `[verify] url-prefix`, else a `[[cdn]]` `url-prefix`.
    let url_prefix = if v.url_prefix.is_empty() {
        c.cdn
            .iter()
            .map(|c| c.url_prefix.as_str())
            .find(|p| !p.is_empty())
            .unwrap_or_default()
    } else {
        v.url_prefix.as_str()
    };
    Ok(staleguard_invalidate::ProveSettings {
        bases: staleguard_invalidate::prove::bases(v, bases),
        timeout: timeout.unwrap_or(&v.timeout).get(),
        version_path: v.version_path(&c.serve).to_string(),
        clean_urls: c.serve.clean_urls,
        metadata_key: store.metadata.clone(),
        url_prefix: url_prefix.to_string(),
        build_url_prefix: c.build.url_prefix.clone(),
        verify: v.clone(),
    })
}

/// The webhook `[verify] webhook-env` names, when that variable holds a URL.
pub fn webhook(loaded: &Loaded) -> Option<staleguard_invalidate::notify::Webhook> {
    staleguard_invalidate::notify::Webhook::from_env(&loaded.config.verify.webhook_env)
}

/// What `invalidate` purges: `--deploy`'s changes, the paths, prefixes, tags, `--all` and `--static`
/// given (checked here, before anything is sent), or what is pending.
pub fn invalidate_source(
    loaded: &Loaded,
    args: &InvalidateArgs,
) -> Result<staleguard_invalidate::Source> {
    use staleguard_core::purge::Item;
    use staleguard_invalidate::{Source, paths};
    let (mut paths, mut items) = paths::parse_paths(&args.paths)?;
    for p in &args.prefixes {
        paths::check_url_path("--prefix", p)?;
        if p.contains('*') {
            bail!(
                "--prefix `{p}`: a prefix is a URL path starting with `/`, without `*` (`/docs/`)"
            );
        }
        items.push(Item::prefix(p));
    }
    for t in &args.tags {
        staleguard_core::routes::check_tag(t).map_err(|e| anyhow::anyhow!("--tags: {e}"))?;
        items.push(Item::tag(t));
    }
    if args.all {
        items.push(Item::all());
    }
    if args.static_ {
        paths.extend(static_paths(loaded, args)?);
    }
    let explicit = !paths.is_empty() || !items.is_empty();
    let source = match (&args.deploy, explicit) {
        (Some(_), true) => {
            bail!("--deploy cannot be combined with --paths, --prefix, --tags, --all or --static")
        }
        (Some(id), false) => Source::Deploy(Some(id.clone())),
        (None, true) => Source::Explicit {
            paths,
            items,
            reference: None,
        },
        (None, false) => Source::Pending,
    };
    Ok(source)
}

/// Every mutable URL key of the build's manifest: mutable files, originals kept under their logical
/// names, and the manifests themselves.
fn static_paths(loaded: &Loaded, args: &InvalidateArgs) -> Result<Vec<String>> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let b = &loaded.config.build;
    let dir = match &args.dir {
        Some(d) => cwd.join(d),
        None => loaded.base.join(&b.out),
    };
    let m = read_manifest(&dir, &b.manifest, "--static")?;
    let mut keys = std::collections::BTreeSet::new();
    for (logical, e) in &m.files {
        if e.mutable {
            keys.insert(e.path.clone());
        } else if e.original && e.path != *logical {
            keys.insert(logical.clone());
        }
    }
    for name in [&b.manifest, &b.django_manifest, &b.build_info] {
        if !name.is_empty() && dir.join(name).is_file() {
            keys.insert(name.clone());
        }
    }
    // Keys become URLs under the CDN's url-prefix when planned; here they are root-relative.
    let clean_urls = loaded.config.serve.clean_urls;
    Ok(keys
        .into_iter()
        .flat_map(|k| staleguard_core::purge::key_urls(&k, "/", false, clean_urls))
        .collect())
}

/// The build's manifest in `dir` (named `name`), for `what` (the option or command that needs it).
pub fn read_manifest(dir: &Path, name: &str, what: &str) -> Result<staleguard_core::Manifest> {
    let path = dir.join(name);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "{what} needs the build's manifest `{}`\nhint: run `staleguard build` first, or pass --dir",
            path.display()
        )
    })?;
    serde_json::from_slice(&text)
        .with_context(|| format!("`{}` is not a staleguard manifest", path.display()))
}
