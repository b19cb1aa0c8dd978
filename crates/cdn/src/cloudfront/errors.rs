//! CloudFront's answers and transport failures as [`CdnError`]s: by CloudFront's error code, then HTTP
//! status; missing credentials said as such.

use staleguard_aws::{Reply, SendError, xml_error};

use crate::{CdnError, ErrorKind};

/// An error answer (non-2xx) as a [`CdnError`], by CloudFront's error code (`<ErrorResponse><Error>
/// <Code>`), then by HTTP status.
pub(super) fn reply_error(label: &str, op: &str, reply: &Reply) -> CdnError {
    use ErrorKind::*;
    let (code, message) = xml_error(&reply.body);
    let status = reply.status;
    let retry_after = reply.retry_after();
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
        "ServiceUnavailable" | "InternalError" | "InternalFailure" | "InternalServerError" => {
            (Transient, None)
        }
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

/// A call that got no answer: no credentials (unauthorized, with the chain's own hint), a timeout or
/// an unreachable endpoint (transient), a request that could not be built (config).
pub(super) fn send_error(label: &str, op: &str, err: SendError) -> CdnError {
    match err {
        SendError::Credentials(e) => {
            let hint = e.hint.clone().unwrap_or_else(|| {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role is available".into()
            });
            CdnError::new(
                ErrorKind::Unauthorized,
                label,
                format!("{op}: {}", e.message),
            )
            .with_hint(hint)
        }
        SendError::Transport { message, timeout } => {
            let why = if timeout {
                "timed out"
            } else {
                "could not reach CloudFront"
            };
            CdnError::new(
                ErrorKind::Transient,
                label,
                format!("{op} {why}: {message}"),
            )
            .with_hint("check the network, or `api`/AWS_ENDPOINT_URL when using a local endpoint")
        }
        SendError::Invalid(m) => CdnError::new(ErrorKind::Config, label, format!("{op}: {m}")),
    }
}
