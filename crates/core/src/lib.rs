//! staleguard's pure domain: configuration types, fingerprinted naming, URL resolution and manifests.
//!
//! Nothing here does I/O beyond parsing strings handed to it; every other crate builds on these types.

pub mod backoff;
pub mod cause;
pub mod changes;
pub mod config;
pub mod deploy;
pub mod duration;
pub mod event;
pub mod hint;
pub mod keys;
pub mod manifest;
pub mod mime;
pub mod naming;
pub mod net;
pub mod purge;
pub mod routes;
pub mod secret;
pub mod stack;
pub mod text;
pub mod url;
pub mod verify;

pub use config::{
    BuildConfig, CdnConfig, CdnProvider, Codec, Config, ConfigError, DeployConfig, ServeConfig,
};
pub use duration::HumanDuration;
pub use manifest::{BuildInfo, DjangoManifest, Manifest, ManifestEntry, Variant};
