//! Target safety: which addresses a probe refuses to contact.
//!
//! A probe runs on a cloud VM with a metadata service at 169.254.169.254 and usually a private
//! network behind it. A check whose name resolves (or redirects) there must not become a way to
//! read that network, so by default every address that is not globally routable is refused:
//! loopback, private, link-local, CGNAT, multicast, unspecified and reserved ranges, in IPv4
//! and IPv6, including IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4).
//! The check connects to the vetted address itself, never re-resolving the name, so a DNS
//! rebinding between vetting and connecting is impossible. An explicit allow-list lifts it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Which addresses checks may contact.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Lab use: allow everything (`--allow-private`, `allow_private = true`).
    allow_all: bool,
    /// Networks allowed even though they are not globally routable.
    allow: Vec<IpNet>,
}

/// Why an address is refused; the text names the range so the user knows what to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked(pub &'static str);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl TargetPolicy {
    /// The default: only globally routable addresses.
    pub fn strict() -> Self {
        TargetPolicy::default()
    }

    /// Allows every address; for labs and tests on loopback.
    pub fn allow_all() -> Self {
        TargetPolicy {
            allow_all: true,
            allow: Vec::new(),
        }
    }

    /// The strict policy plus these networks.
    pub fn with_allowed(allow: Vec<IpNet>) -> Self {
        TargetPolicy {
            allow_all: false,
            allow,
        }
    }

    /// `Ok` when `ip` may be contacted, otherwise the kind of range that blocks it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.allow_all {
            return Ok(());
        }
        match special_range(ip) {
            None => Ok(()),
            Some(reason) => {
                let canonical = canonical(ip);
                if self
                    .allow
                    .iter()
                    .any(|n| n.contains(&ip) || n.contains(&canonical))
                {
                    Ok(())
                } else {
                    Err(Blocked(reason))
                }
            }
        }
    }
}

/// The IPv4 address an IPv6 address stands for, when it embeds one; otherwise `ip` itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low32 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low32()); // ::a.b.c.d (deprecated IPv4-compatible); not :: or ::1
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low32()); // NAT64 well-known prefix 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 carries a.b.c.d in the second and third groups.
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Names the non-global range `ip` falls in, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => special_v4(v4),
            None => special_v6(v6),
        },
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified",
        [127, ..] => "loopback",
        [10, ..] => "private",
        [172, b, ..] if (16..32).contains(&b) => "private",
        [192, 168, ..] => "private",
        [169, 254, ..] => "link-local",
        [100, b, ..] if (64..128).contains(&b) => "CGNAT",
        [192, 0, 0, _] => "IETF protocol assignments",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking",
        [a, ..] if (224..240).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private" // unique local fc00::/7
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "private" // deprecated site-local fec0::/10
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn strict_policy_refuses_every_documented_range() {
        let p = TargetPolicy::strict();
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fd00::1", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            assert_eq!(p.check(ip(addr)), Err(Blocked(why)), "{addr}");
        }
    }

    #[test]
    fn strict_policy_allows_global_addresses() {
        let p = TargetPolicy::strict();
        for addr in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(p.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allow_list_lifts_only_its_networks_in_either_spelling() {
        let p = TargetPolicy::with_allowed(vec!["10.9.0.0/16".parse().unwrap()]);
        assert_eq!(p.check(ip("10.9.1.1")), Ok(()));
        assert_eq!(p.check(ip("::ffff:10.9.1.1")), Ok(()));
        assert_eq!(p.check(ip("10.8.1.1")), Err(Blocked("private")));
        assert_eq!(
            TargetPolicy::allow_all().check(ip("169.254.169.254")),
            Ok(())
        );
    }

    proptest! {
        #[test]
        fn mapped_forms_are_judged_like_the_ipv4_address(v in any::<u32>()) {
            let v4 = Ipv4Addr::from(v);
            let p = TargetPolicy::strict();
            prop_assert_eq!(p.check(IpAddr::V6(v4.to_ipv6_mapped())), p.check(IpAddr::V4(v4)));
            let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(v));
            prop_assert_eq!(p.check(IpAddr::V6(nat64)), p.check(IpAddr::V4(v4)));
        }
    }
}
