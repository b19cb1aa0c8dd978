//! The `AWS:SourceIp` of a custom policy: one IPv4 or IPv6 address range in CIDR notation.
//!
//! The text is kept as written, so the policy is byte for byte what botocore writes from the same
//! argument: an address without a prefix gets `/32` appended, as botocore does, when it is IPv4. For
//! IPv6, botocore appends `/32` too, which would allow a whole /32 network (2⁹⁶ addresses) where one
//! address was meant; this crate appends `/128` there (the one place it departs from botocore).

use std::fmt;
use std::net::IpAddr;

/// An address range: the text that goes in the policy, and the parsed network for checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    text: String,
    net: staleguard_core::net::Cidr,
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `192.0.2.7` (→ `/32`), `2001:db8::/32`, `2001:db8::7` (→ `/128`). Host
    /// bits past the prefix are allowed and ignored when matching (`192.0.2.7/24` is `192.0.2.0/24`).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let net = staleguard_core::net::Cidr::parse(text)?;
        let text = if text.contains('/') {
            text.to_string()
        } else {
            format!("{text}/{}", net.prefix)
        };
        Ok(Cidr { text, net })
    }

    /// The range as it goes in the policy (`192.0.2.7/32`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `ip` is in the range (an IPv4 range never holds an IPv6 address, nor the reverse,
    /// except an IPv4-mapped one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(ip)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_keeps_the_text() {
        let cases: &[(&str, Option<&str>)] = &[
            ("192.0.2.7", Some("192.0.2.7/32")),
            ("192.0.2.0/24", Some("192.0.2.0/24")),
            ("192.0.2.7/24", Some("192.0.2.7/24")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("2001:db8::7", Some("2001:db8::7/128")),
            ("2001:db8::/32", Some("2001:db8::/32")),
            ("192.0.2.7/33", None),
            ("192.0.2.7/", None),
            ("192.0.2.7/024", None),
            ("192.0.2.7/+8", None),
            ("2001:db8::/129", None),
            ("192.0.2", None),
            ("example.com", None),
            (" 192.0.2.7", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                Cidr::parse(text).ok().as_ref().map(Cidr::as_str),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn contains_checks_the_network_bits_only() {
        let cases: &[(&str, &str, bool)] = &[
            ("192.0.2.0/24", "192.0.2.255", true),
            ("192.0.2.0/24", "192.0.3.0", false),
            ("192.0.2.7/24", "192.0.2.1", true),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8::7", "2001:db8::7", true),
            ("2001:db8::7", "2001:db8::8", false),
            ("::/0", "::1", true),
            ("::/0", "127.0.0.1", false),
        ];
        for (cidr, ip, want) in cases {
            let c = Cidr::parse(cidr).unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), *want, "{cidr} ∋ {ip}");
        }
    }
}
