//! Edge checks for staleguard: prove what CDN edges serve after a deploy ([`verify`]), fetch URLs so
//! edges cache them ([`warm`]), wait until the origin reports the deployed version ([`probe`]) and post
//! the outcome to a webhook ([`notify`]). Built on the shared HTTP client ([`client`], which the CDN
//! providers in `staleguard-cdn` use too) and a streaming content decoder.
//!
//! Nothing here knows about CDN providers or their SDKs: checks speak plain HTTP to the URLs users
//! fetch.

pub mod client;
mod decode;
pub mod error;
pub mod notify;
pub mod probe;
pub mod verify;
pub mod warm;

pub use error::CheckError;
