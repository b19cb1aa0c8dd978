//! Raw command-line arguments (clap types stay in this module and `settings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use staleguard_core::HumanDuration;

#[derive(Debug, Parser)]
#[command(
    name = "staleguard",
    version,
    about = "Make stale web content impossible after a deploy: fingerprint, serve, deploy, invalidate, verify",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file (default: `staleguard.toml` in the current folder or the nearest parent)
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "STALEGUARD_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Print a machine-readable JSON report on stdout instead of the human summary
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// More log output (-v: info, -vv: debug, -vvv: trace); RUST_LOG also works
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect the project in a folder (Django, Vite, Hugo, MkDocs, …) and write a commented staleguard.toml
    Init(InitArgs),
    /// Fingerprint assets, rewrite references, write manifests and precompressed sidecars
    Build(BuildArgs),
    /// Serve a build output as the origin a CDN pulls from, with headers that never let a cache go stale
    Serve(ServeArgs),
    /// Run a local CDN edge: a caching proxy (RFC 9111, SWR, stale-if-error, Vary, collapsing) in front
    /// of an origin, purged with the Varnish wire protocol
    Edge(EdgeArgs),
    /// Write the CDN's configuration from the route table (`--target varnish`), so the CDN and the
    /// origin's headers cannot drift
    CdnConfig(CdnConfigArgs),
    /// Sign a CloudFront URL (or signed cookies) for private content served through the CDN
    SignUrl(crate::cmd::sign::SignArgs),
    /// Upload a build output to the object store: only what changed, immutable files first, history, GC
    Deploy(DeployArgs),
    /// List the deploys recorded in the store (newest last; `*` marks the current one)
    Deploys(DeploysArgs),
    /// Make an earlier deploy current again (default: the one before the current deploy)
    Rollback(RollbackArgs),
    /// Purge URLs from the configured CDNs (default: what changed since each CDN's last purge)
    Invalidate(InvalidateArgs),
    /// Look up purges: `status ID`, `list`
    #[command(subcommand)]
    Invalidations(InvalidationsCommand),
    /// Prove through the CDN that users get what was deployed (exit 3 when a URL is still stale)
    Verify(VerifyArgs),
    /// Keep proving it: check the version endpoint and a rotating sample of mutable URLs through
    /// every edge each round, serve Prometheus metrics, notify on drift (`--once` for cron: exit 3
    /// when stale)
    Watch(WatchArgs),
    /// Request URLs through the CDN so the first visitor hits a warm edge
    Warm(WarmArgs),
    /// Read CDN and proxy logs (CloudFront, Varnish, nginx, Cloudflare, Fastly; plain or gzip): hit
    /// ratios, origin load, errors, top misses and stale-content signals per route class and over
    /// time, against the `[stats]` thresholds (exit 3 when one is crossed)
    Stats(StatsArgs),
    /// Run the invalidation service for content edits (API + workers); `status`, `dead`, `retry ID`
    /// ask a running one
    Service(ServiceArgs),
    /// Bump the app caches (`[[app-cache]]`: Redis, memcached) or show their namespace versions
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Make the app forget: bump the namespaces' versions (or delete their keys, or flush, per the
    /// target's strategy)
    Bump(CacheArgs),
    /// Each namespace's version on each target (and server)
    Status(CacheArgs),
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The namespaces (`global`, `ws:42`; repeatable; default: each target's `namespaces`)
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Only these `[[app-cache]]` entries, by name (repeatable; default: all)
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Show what would be bumped (and the versions now); change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Listen here (default: `[service] listen`, `127.0.0.1:7070`; port 0 picks a free one)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The event log: a SQLite file, or a PostgreSQL URL (`postgres://user@host/db`, password from
    /// $PGPASSWORD) shared by several instances (default: `[service] db`)
    #[arg(long, value_name = "FILE|URL")]
    pub db: Option<String>,
    #[command(flatten)]
    pub client: ServiceClientArgs,
    #[command(subcommand)]
    pub action: Option<ServiceCommand>,
}

/// Where a running service is (for the commands that ask it).
#[derive(Debug, Args, Default, Clone)]
pub struct ServiceClientArgs {
    /// The running service (default: `http://` + `[service] listen`); its token comes from
    /// `STALEGUARD_SERVICE_TOKEN` (or the `[service] token-env` variable)
    #[arg(
        long,
        value_name = "URL",
        env = "STALEGUARD_SERVICE_URL",
        global = true
    )]
    pub service_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// A scope's pending events per CDN and when its batch is due; or one event's status (--seq)
    Status {
        /// The scope (`ws:42`)
        #[arg(long)]
        scope: Option<String>,
        /// An event's sequence number (the `seq` `invalidate --scope` printed)
        #[arg(long)]
        seq: Option<u64>,
    },
    /// The dead letters: batches that used up their attempts
    Dead,
    /// Send a dead letter's items again, as a new event of its scope
    Retry { id: u64 },
    /// Make a scope's pending events due now, whatever the debounce
    Flush { scope: String },
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Log files, plain or gzipped (`-`: standard input)
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// The log format instead of detecting it from each file: cloudfront, cloudfront-realtime,
    /// varnish, nginx, combined, cloudflare, fastly
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// CloudFront real-time logs: the configuration's fields in its order, comma-separated (default:
    /// the documentation's full list)
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub fields: Option<Vec<String>>,
    /// Also write the report as one self-contained HTML page with charts
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The build output whose manifest tells fingerprinted and mutable URLs apart (default:
    /// `build.out`; without a manifest, names alone are used)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Do not read the deploy history (fingerprinted names are then not checked against kept deploys)
    #[arg(long)]
    pub no_store: bool,
    /// URLs per top list (default: `[stats] top`, 20)
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Time bucket width, e.g. 5m, 1h (default: `[stats] bucket`, else from the logs' time span)
    #[arg(long, value_name = "AGE", value_parser = HumanDuration::parse)]
    pub bucket: Option<HumanDuration>,
    /// Parsing threads (default: every core)
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project folder (default: the current folder)
    pub dir: Option<PathBuf>,
    /// Print the config on stdout; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite an existing staleguard.toml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The deploy to check (an id or a unique prefix; default: the current one)
    #[arg(long, value_name = "ID")]
    pub deploy: Option<String>,
    /// Every live mutable URL (up to `max-checks`), not only what the deploy changed
    #[arg(long)]
    pub all: bool,
    /// The site through the CDN, repeatable (default: `[verify] cdn-url`)
    #[arg(long = "cdn-url", value_name = "URL")]
    pub cdn_urls: Vec<String>,
    /// How long edges may take to converge, e.g. 30s (default: `[verify] timeout`, 2m)
    #[arg(long, value_name = "AGE", value_parser = HumanDuration::parse)]
    pub timeout: Option<HumanDuration>,
    /// Warm the configured URLs first
    #[arg(long)]
    pub warm: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between rounds (default: `[watch] interval`, 60s)
    #[arg(long, value_name = "AGE", value_parser = HumanDuration::parse)]
    pub interval: Option<HumanDuration>,
    /// One round, print it, exit 0 when fresh and 3 when stale (for cron; no notifications)
    #[arg(long)]
    pub once: bool,
    /// Rounds to run before exiting (default: until SIGTERM or ctrl-c)
    #[arg(long, value_name = "N", conflicts_with = "once")]
    pub rounds: Option<u64>,
    /// Serve `/metrics` here (default: `[watch] listen`, 127.0.0.1:9466; port 0 picks one)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The site through the CDN, repeatable (default: `[verify] cdn-url`)
    #[arg(long = "cdn-url", value_name = "URL")]
    pub cdn_urls: Vec<String>,
    /// Mutable URLs per round besides the deploy's changed ones (default: `[watch] sample`, 20)
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Rounds a URL must be stale before a notification (default: `[watch] stale-rounds`, 2)
    #[arg(long, value_name = "N")]
    pub stale_rounds: Option<u32>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// URL paths to warm, besides `[verify] warm`
    pub paths: Vec<String>,
    /// Also every URL the current deploy changed
    #[arg(long)]
    pub changed: bool,
    /// The site through the CDN, repeatable (default: `[verify] cdn-url`)
    #[arg(long = "cdn-url", value_name = "URL")]
    pub cdn_urls: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Default)]
pub struct PurgeArgs {
    /// Only these CDNs (their `name`, or the provider name); repeatable (default: every `[[cdn]]`)
    #[arg(long = "cdn", value_name = "NAME")]
    pub cdns: Vec<String>,
    /// Print each purge item and which changed URLs it covers (`deploy`, `rollback`: also each object
    /// uploaded, and why, and each deleted by GC)
    #[arg(long)]
    pub explain: bool,
    /// Do not wait for asynchronous purges (CloudFront) to complete (default: `wait` of each CDN)
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,
    /// Wait for asynchronous purges to complete even where the config says `wait = false`
    #[arg(long)]
    pub wait: bool,
    /// App-cache namespaces to bump before the CDNs are purged (`ws:42`; repeatable). Default: each
    /// `[[app-cache]]`'s `namespaces` after a deploy, a rollback or for what is pending; none when
    /// purging given paths, prefixes or tags
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Do not bump the app caches (`[[app-cache]]`)
    #[arg(long, conflicts_with = "namespaces")]
    pub no_app_cache: bool,
}

/// The steps after a deploy's or rollback's commit: purge, warm, verify.
#[derive(Debug, Args, Default)]
pub struct FinishArgs {
    /// Do not purge the CDNs (the next `deploy` or `invalidate` purges what is pending)
    #[arg(long)]
    pub no_purge: bool,
    /// Skip the warm-up and the verification through the CDN
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub purge: PurgeArgs,
}

#[derive(Debug, Args)]
pub struct InvalidateArgs {
    /// URL paths to purge (`/a.html`; a trailing `*` purges every URL under a prefix: `/docs/*`)
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub paths: Vec<String>,
    /// URL prefixes to purge (`/docs/`)
    #[arg(long = "prefix", num_args = 1.., value_name = "PREFIX")]
    pub prefixes: Vec<String>,
    /// Surrogate keys / cache tags to purge (providers with tags)
    #[arg(long, num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
    /// Purge everything the CDN holds for the site
    #[arg(long)]
    pub all: bool,
    /// Every mutable URL of the build's manifest (pages and originals kept under their own names)
    #[arg(long = "static")]
    pub static_: bool,
    /// What a deploy changed, compared with the deploy before it (an id or a unique prefix; without a
    /// value: the current deploy)
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub deploy: Option<String>,
    /// Build output holding the manifest for --static (default: `build.out`, else `dist`)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Show the plan; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Send the paths, prefixes, tags or --all as an event of this scope to a running `staleguard
    /// service` (debounced and coalesced there) instead of purging now; with --wait, wait until it
    /// is purged
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// With --scope: the event's idempotency key (the same key in a scope is one event)
    #[arg(long, requires = "scope", value_name = "KEY")]
    pub key: Option<String>,
    /// With --scope --wait: give up waiting after this long (exit 3: acknowledged, not yet purged)
    #[arg(
        long,
        requires = "scope",
        value_name = "DURATION",
        default_value = "5m"
    )]
    pub wait_timeout: HumanDuration,
    #[command(flatten)]
    pub service: ServiceClientArgs,
    #[command(flatten)]
    pub purge: PurgeArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum InvalidationsCommand {
    /// The status of one purge (CloudFront invalidation id), on every CDN that knows it
    Status {
        id: String,
        /// Only these CDNs; repeatable
        #[arg(long = "cdn", value_name = "NAME")]
        cdns: Vec<String>,
    },
    /// Recent purges, newest first, of the CDNs that keep a history (CloudFront)
    List {
        /// At most this many per CDN
        #[arg(long, default_value_t = 20)]
        max: usize,
        /// Only these CDNs; repeatable
        #[arg(long = "cdn", value_name = "NAME")]
        cdns: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Object store URL: file://PATH, s3://BUCKET/PREFIX, gs://…, az://… (default: `deploy.store`,
    /// else file://./.staleguard/public)
    #[arg(long, env = "STALEGUARD_STORE", value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeploysArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Remove the store's deploy lease by hand (after a deploy whose machine is gone; a folder's lock
    /// is freed by the OS when its process ends and needs none)
    #[arg(long)]
    pub unlock: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Folder to deploy (default: `deploy.dir`, else `build.out` from the config, else `dist`)
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Show what would be uploaded, kept and deleted, and what each CDN would purge; change nothing in
    /// the store (the build still runs: the plan is of what would be deployed)
    #[arg(long)]
    pub dry_run: bool,
    /// Do not run the incremental build first (by default `deploy` builds when its folder is the build
    /// output and the build source exists)
    #[arg(long)]
    pub no_build: bool,
    /// Also HEAD every object and repair those missing or changed by hand (costs a request per object)
    #[arg(long)]
    pub verify_remote: bool,
    /// Compress every sidecar the local cache lacks, instead of reusing those the store's current deploy
    /// holds (default: reuse, `deploy.reuse`)
    #[arg(long)]
    pub no_reuse: bool,
    /// Skip garbage collection of old objects
    #[arg(long)]
    pub no_gc: bool,
    /// Fail instead of deleting more than N objects (default: `deploy.max-deletes`, 1000)
    #[arg(long, value_name = "N")]
    pub max_deletes: Option<u64>,
    /// Keep every object referenced by the last N deploys (default: `deploy.keep-deploys`, 3)
    #[arg(long, value_name = "N")]
    pub keep_deploys: Option<u32>,
    /// …and every object that left the site less than AGE ago, e.g. 12h, 1d (default: `deploy.keep-age`)
    #[arg(long, value_name = "AGE", value_parser = HumanDuration::parse)]
    pub keep_age: Option<HumanDuration>,
    /// Uploads in flight (default: `deploy.concurrency`, 16)
    #[arg(long, short = 'j', value_name = "N")]
    pub concurrency: Option<u32>,
    /// Wait up to AGE for another deploy's lease on the store, e.g. 0s, 90s, 10m (default:
    /// `deploy.lock-timeout`, 10m)
    #[arg(long, value_name = "AGE", value_parser = HumanDuration::parse)]
    pub lock_timeout: Option<HumanDuration>,
    #[command(flatten)]
    pub finish: FinishArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Deploy id, or a unique prefix of one (see `staleguard deploys`)
    pub id: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Show what would be restored; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Uploads in flight (default: `deploy.concurrency`, 16)
    #[arg(long, short = 'j', value_name = "N")]
    pub concurrency: Option<u32>,
    /// Wait up to AGE for another deploy's lease on the store, e.g. 0s, 90s, 10m (default:
    /// `deploy.lock-timeout`, 10m)
    #[arg(long, value_name = "AGE", value_parser = HumanDuration::parse)]
    pub lock_timeout: Option<HumanDuration>,
    #[command(flatten)]
    pub finish: FinishArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder to serve (default: `serve.dir`, else `build.out` from the config, else `dist`)
    pub dir: Option<PathBuf>,
    /// Address to listen on (default: `serve.bind`, 127.0.0.1)
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Port (default: `serve.port`, 8080; 0 picks a free one)
    #[arg(long, short = 'p', value_name = "PORT")]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct CdnConfigArgs {
    /// What to write: `varnish` (a VCL 4.1 file), `nginx` (maps and a server block serving the
    /// build), `cloudfront` (a distribution config with its cache and response-headers policies, JSON),
    /// `terraform` (the same as HCL for the hashicorp/aws provider), `cloudflare` (cache rules,
    /// Rulesets API JSON)
    #[arg(long, value_name = "TARGET")]
    pub target: String,
    /// Write to this file (default: stdout)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The origin the CDN fetches from, `http://HOST:PORT` (default: `[verify] origin-url`, else
    /// `[serve]` bind and port)
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// Addresses allowed to purge (IP or CIDR, repeatable; default: loopback)
    #[arg(long = "purge-from", value_name = "CIDR")]
    pub purge_from: Vec<String>,
    /// The build output whose manifest says which paths are fingerprinted (default: `build.out`);
    /// nginx serves it
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// nginx: the `listen` address (default: `[serve]` bind and port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// nginx: the folder to serve, as the server sees it (default: the build output's absolute path)
    #[arg(long, value_name = "DIR")]
    pub root: Option<String>,
    /// nginx: leave `brotli_static` out (without libnginx-mod-http-brotli-static)
    #[arg(long)]
    pub no_brotli: bool,
    /// Compare the live configuration with what the route table implies now: a VCL or nginx FILE
    /// line by line (comments ignored); for cloudfront the distribution through the API (its id, or
    /// `[[cdn]] distribution` when left out). Exit 0 when equal, 3 when a difference can serve stale
    /// content, 1 for other drift
    #[arg(long, value_name = "FILE|ID", conflicts_with = "output", num_args = 0..=1, default_missing_value = "")]
    pub check: Option<String>,
    /// cloudfront: create or update the policies by name and the distribution (`--distribution`,
    /// else `[[cdn]] distribution`, else a new one) through the API
    #[arg(long, conflicts_with_all = ["output", "check"])]
    pub apply: bool,
    /// cloudfront: the distribution to update or check (default: `[[cdn]] distribution`)
    #[arg(long, value_name = "ID")]
    pub distribution: Option<String>,
    /// cloudfront, terraform: an ACM certificate ARN (us-east-1) for the `[[cdn]] domain` aliases
    #[arg(long, value_name = "ARN")]
    pub certificate: Option<String>,
    /// cloudfront, terraform: the prefix of the policies' names
    #[arg(long, value_name = "NAME", default_value = "staleguard")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// The origin to cache, `http://HOST:PORT` (default: `[serve]` bind and port, http://127.0.0.1:8080)
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// Listen here (repeatable: each address is a node with its own cache, like several CDN edges;
    /// port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6081")]
    pub listen: Vec<String>,
    /// Memory for cached responses, per node (`256MiB`, `1GiB`, `64MB`, bytes)
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = staleguard_edge::parse_size)]
    pub memory: u64,
    /// Largest response cached; larger ones are streamed through uncached
    #[arg(long, value_name = "SIZE", default_value = "32MiB", value_parser = staleguard_edge::parse_size)]
    pub max_object: u64,
    /// Addresses allowed to PURGE and BAN (IP or CIDR, repeatable; default: loopback only)
    #[arg(long = "allow-purge", value_name = "CIDR", value_parser = staleguard_edge::Net::parse)]
    pub allow_purge: Vec<staleguard_edge::Net>,
    /// How long a request waits for another request's fetch of the same object
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub collapse_wait: HumanDuration,
    /// How long to wait for the origin's response head
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub origin_timeout: HumanDuration,
    /// Close a client connection idle this long
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub idle_timeout: HumanDuration,
    /// Cache responses without Cache-Control or Expires for 10 % of their age since Last-Modified (at
    /// most a day), as RFC 9111 allows; off by default (a heuristic keeps pages stale nobody asked for)
    #[arg(long)]
    pub heuristic_freshness: bool,
}

#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// Source folder (default: `build.source` from the config, else `static`)
    pub source: Option<PathBuf>,
    /// Output folder (default: `build.out` from the config, else `dist`)
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// A missing referenced file is an error (every missing one is listed)
    #[arg(long, overrides_with = "no_strict")]
    pub strict: bool,
    /// A missing referenced file is a warning (the reference is kept as written)
    #[arg(long)]
    pub no_strict: bool,
    /// Incremental cache folder (default: `build.cache-dir`, else `.staleguard/cache`)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Precompression formats, comma-separated: br, gzip, zstd, or `none`
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub compress: Option<Vec<String>>,
    /// URL path the output is served under (absolute references resolve against it)
    #[arg(long, value_name = "PATH")]
    pub url_prefix: Option<String>,
    /// Do not also write fingerprinted files under their original names
    #[arg(long)]
    pub no_originals: bool,
    /// Do not rewrite ES module imports in JavaScript
    #[arg(long)]
    pub no_js_imports: bool,
    /// Worker threads (0 = every core)
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Take the sidecars this store's current deploy already holds instead of compressing them (a
    /// fresh CI runner); they are listed in the manifest, not written (default: `build.reuse-from`)
    #[arg(long, value_name = "URL")]
    pub reuse_from: Option<String>,
}
