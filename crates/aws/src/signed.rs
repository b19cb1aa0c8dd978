//! One SigV4-signed REST call: the request is built as object_store's `HttpRequest`, signed by its
//! [`AwsAuthorizer`], and sent with reqwest. No retries here.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use object_store::aws::AwsAuthorizer;
use object_store::client::{HttpRequest, HttpRequestBody};

use crate::{Credentials, Error};

/// A client for one AWS service at one endpoint.
#[derive(Debug, Clone)]
pub struct Signed {
    http: reqwest::Client,
    credentials: Credentials,
    service: &'static str,
    region: String,
    endpoint: String,
}

/// An answer of any status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After` in seconds, when the service sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// Why a call got no answer.
#[derive(Debug)]
pub enum SendError {
    /// No credentials to sign with.
    Credentials(Error),
    /// The request never got an answer: connection, TLS, timeout, a body cut short.
    Transport { message: String, timeout: bool },
    /// The request could not be built (a bad endpoint).
    Invalid(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Credentials(e) => write!(f, "{e}"),
            SendError::Transport { message, .. } => f.write_str(message),
            SendError::Invalid(m) => f.write_str(m),
        }
    }
}

impl Signed {
    /// A client for `service` signed for `region` at `endpoint` (`https://cloudfront.amazonaws.com`),
    /// each call limited to `timeout`.
    pub fn new(
        credentials: Credentials,
        service: &'static str,
        region: &str,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Signed, Error> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint.len() <= "https://".len()
        {
            return Err(Error::new(format!(
                "`{endpoint}` is not an http(s) endpoint URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("staleguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(format!("cannot set up the HTTPS client: {e}")))?;
        Ok(Signed {
            http,
            credentials,
            service,
            region: region.to_string(),
            endpoint,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Sends `method path_and_query` with an optional `(content type, body)`, signed.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, String)>,
    ) -> Result<Reply, SendError> {
        self.send_with_headers(method, path_and_query, body, &[])
            .await
    }

    /// [`Signed::send`] with extra request headers (`If-Match`), signed with the rest.
    pub async fn send_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, String)>,
        extra: &[(&str, &str)],
    ) -> Result<Reply, SendError> {
        let cred = self
            .credentials
            .get()
            .await
            .map_err(SendError::Credentials)?;
        let mut headers = Vec::with_capacity(extra.len());
        for (k, v) in extra {
            let name = http::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| SendError::Invalid(format!("bad header name `{k}`: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| SendError::Invalid(format!("bad value for header `{k}`: {e}")))?;
            headers.push((name, value));
        }
        self.send_with(method, path_and_query, body, |req| {
            for (k, v) in headers {
                req.headers_mut().insert(k, v);
            }
            AwsAuthorizer::new(&cred, self.service, &self.region).authorize(req, None)
        })
        .await
    }

    /// Sends without a signature (STS `AssumeRoleWithWebIdentity` is authorised by its token).
    pub async fn send_unsigned(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, String)>,
    ) -> Result<Reply, SendError> {
        self.send_with(method, path_and_query, body, |_| {}).await
    }

    async fn send_with(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, String)>,
        sign: impl FnOnce(&mut HttpRequest),
    ) -> Result<Reply, SendError> {
        let url = format!("{}{}", self.endpoint, path_and_query);
        let (content_type, bytes) = match body {
            Some((t, b)) => (Some(t), b.into_bytes()),
            None => (None, Vec::new()),
        };
        let mut req: HttpRequest = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .body(HttpRequestBody::from(bytes.clone()))
            .map_err(|e| SendError::Invalid(format!("cannot build a request for `{url}`: {e}")))?;
        if let Some(t) = content_type {
            let v = HeaderValue::from_str(t)
                .map_err(|e| SendError::Invalid(format!("bad content type `{t}`: {e}")))?;
            req.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        sign(&mut req);
        let mut headers = req.headers().clone();
        // reqwest sets Host from the URL itself; the signed value is the same.
        headers.remove(http::header::HOST);
        let res = self
            .http
            .request(method, &url)
            .headers(headers)
            .body(bytes)
            .send()
            .await
            .map_err(transport)?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.map_err(transport)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

fn transport(e: reqwest::Error) -> SendError {
    let timeout = e.is_timeout();
    let chain = staleguard_core::cause::cause_chain(&e, &[]).join(": ");
    SendError::Transport {
        message: staleguard_core::text::one_line(&chain, 300),
        timeout,
    }
}

/// The `(Code, Message)` of an AWS XML error: the text of the first `<Code>` and `<Message>` elements,
/// wherever they are (`<ErrorResponse><Error>…` from CloudFront and STS, `<Error>…` from S3,
/// `<ErrorResponse><Errors><Error>…` from some stand-ins); empty strings when the body has none.
pub fn xml_error(body: &str) -> (String, String) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let (mut code, mut message) = (None::<String>, None::<String>);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let slot = match e.local_name().as_ref() {
                    b"Code" if code.is_none() => &mut code,
                    b"Message" if message.is_none() => &mut message,
                    _ => continue,
                };
                let Ok(raw) = reader.read_text(e.name()) else {
                    break;
                };
                let text = quick_xml::escape::unescape(&raw)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| raw.into_owned());
                *slot = Some(text.trim().to_string());
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        if code.is_some() && message.is_some() {
            break;
        }
    }
    (code.unwrap_or_default(), message.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aws_xml_errors() {
        let cf = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>NoSuchDistribution</Code><Message>The specified distribution does not exist.</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        assert_eq!(
            xml_error(cf),
            (
                "NoSuchDistribution".to_string(),
                "The specified distribution does not exist.".to_string()
            )
        );
        assert_eq!(
            xml_error("<Error><Code>AccessDenied</Code><Message>no</Message></Error>").0,
            "AccessDenied"
        );
        assert_eq!(
            xml_error(
                "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>a &amp; b</Message></Error></Errors></ErrorResponse>"
            ),
            ("InvalidClientTokenId".to_string(), "a & b".to_string())
        );
        assert_eq!(
            xml_error("<html>bad gateway</html>"),
            (String::new(), String::new())
        );
        assert_eq!(xml_error(""), (String::new(), String::new()));
    }
}
