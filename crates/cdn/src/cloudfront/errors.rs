//! SDK errors as [`CdnError`]s: by CloudFront's error code, then HTTP status, then kind; missing
//! credentials said as such.

use std::time::Duration;

use aws_sdk_cloudfront::config::http::HttpResponse;
use aws_sdk_cloudfront::error::{ProvideErrorMetadata, SdkError};

use crate::{CdnError, ErrorKind};

/// Maps an SDK error to a [`CdnError`] by CloudFront's error code, then by HTTP status, then by kind
/// (timeouts and connection errors are transient).
pub(super) fn sdk_error<E>(label: &str, op: &str, err: SdkError<E, HttpResponse>) -> CdnError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use ErrorKind::*;
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default().to_string();
            let message = se.err().message().unwrap_or_default().to_string();
            let status = se.raw().status().as_u16();
            let retry_after = se
                .raw()
                .headers()
                .get("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let what = match (code.is_empty(), message.is_empty()) {
                (true, true) => format!("{op} failed: HTTP {status}"),
                (true, false) => format!("{op} failed: HTTP {status}: {message}"),
                (false, true) => format!("{op} failed: {code}"),
                (false, false) => format!("{op} failed: {code}: {message}"),
            };
            let (kind, hint): (ErrorKind, Option<&str>) = match code.as_str() {
                "TooManyInvalidationsInProgress" => (
                    TooManyInProgress,
                    Some(
                        "CloudFront allows 3,000 paths and 15 wildcard paths in progress per distribution; retry once earlier invalidations complete",
                    ),
                ),
                "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "SlowDown" => (Throttled, None),
                "BatchTooLarge" => (
                    BatchTooLarge,
                    Some("CloudFront takes at most 3,000 paths per invalidation"),
                ),
                "InvalidationBatchAlreadyExists" => (
                    Invalid,
                    Some(
                        "the caller reference was already used for an invalidation with other paths; each batch needs its own reference",
                    ),
                ),
                "NoSuchDistribution" => (
                    NotFound,
                    Some(
                        "check `distribution` in the [[cdn]] entry (`aws cloudfront list-distributions` lists them) and that the credentials are for the account that owns it",
                    ),
                ),
                "NoSuchInvalidation" => (NotFound, None),
                "AccessDenied"
                | "AccessDeniedException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "UnrecognizedClientException"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "MissingAuthenticationToken"
                | "InvalidSignatureException"
                | "IncompleteSignature"
                | "AuthFailure"
                | "RequestExpired" => (
                    Unauthorized,
                    Some(
                        "check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the role) and that they allow cloudfront:CreateInvalidation, GetInvalidation, ListInvalidations, GetDistribution and ListDistributions",
                    ),
                ),
                "InvalidArgument"
                | "InconsistentQuantities"
                | "MissingBody"
                | "MalformedInput"
                | "InvalidInput" => (Invalid, None),
                "ServiceUnavailable"
                | "InternalError"
                | "InternalFailure"
                | "InternalServerError" => (Transient, None),
                _ => match ErrorKind::from_status(status) {
                    Unauthorized => (
                        Unauthorized,
                        Some("check the AWS credentials and their CloudFront permissions"),
                    ),
                    kind => (kind, None),
                },
            };
            let mut e = CdnError::new(kind, label, what).with_retry_after(retry_after);
            if let Some(h) = hint {
                e = e.with_hint(h);
            }
            e
        }
        SdkError::TimeoutError(_) => CdnError::new(Transient, label, format!("{op} timed out")),
        SdkError::DispatchFailure(d) => {
            let chain = chain(&err);
            if credentials_problem(&chain) {
                return unauthorized_no_credentials(label, op, &chain);
            }
            let why = if d.is_timeout() {
                "timed out"
            } else {
                "could not reach CloudFront"
            };
            CdnError::new(Transient, label, format!("{op} {why}: {}", short(&chain))).with_hint(
                "check the network, or `api`/AWS_ENDPOINT_URL when using a local endpoint",
            )
        }
        SdkError::ResponseError(_) => {
            let chain = chain(&err);
            CdnError::new(
                Transient,
                label,
                format!("{op}: unreadable response: {}", short(&chain)),
            )
        }
        _ => {
            let chain = chain(&err);
            if credentials_problem(&chain) {
                return unauthorized_no_credentials(label, op, &chain);
            }
            CdnError::new(Other, label, format!("{op} failed: {}", short(&chain)))
        }
    }
}

fn credentials_problem(chain: &str) -> bool {
    let c = chain.to_ascii_lowercase();
    c.contains("credential") || c.contains("no matching auth scheme") || c.contains("identity")
}

fn unauthorized_no_credentials(label: &str, op: &str, chain: &str) -> CdnError {
    CdnError::new(ErrorKind::Unauthorized, label, format!("{op}: no usable AWS credentials: {}", short(chain)))
        .with_hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role is available")
}

/// An error and its sources on one line (`dispatch failure: io error: … Connection refused`), each
/// text once.
pub(super) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    staleguard_core::cause::cause_chain(err, &[]).join(": ")
}

/// Long error chains cut to one readable line.
fn short(chain: &str) -> String {
    staleguard_core::text::one_line(chain, 300)
}
