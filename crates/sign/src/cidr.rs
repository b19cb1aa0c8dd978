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
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `192.0.2.7` (→ `/32`), `2001:db8::/32`, `2001:db8::7` (→ `/128`). Host
    /// bits past the prefix are allowed and ignored when matching (`192.0.2.7/24` is `192.0.2.0/24`).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("`{text}` is not an IP address or range; write e.g. `192.0.2.0/24` or `2001:db8::/32`")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max && !p.starts_with('+') && (p == "0" || !p.starts_with('0')))
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        let text = match prefix_text {
            Some(_) => text.to_string(),
            None => format!("{text}/{max}"),
        };
        Ok(Cidr { text, addr, prefix })
    }

    /// The range as it goes in the policy (`192.0.2.7/32`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `ip` is in the range (an IPv4 range never holds an IPv6 address, nor the reverse).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
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
