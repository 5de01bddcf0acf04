//! Who a client is, when fraudwall counts clients (connection caps): an IPv4 address, or an
//! IPv6 /64, which is what one customer line usually gets. IPv4-mapped IPv6 addresses count as
//! their IPv4 address.

use std::net::IpAddr;

/// The prefix `ip`'s connections are counted under.
pub fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Connections open at once per client prefix, under a cap. Cloning shares the counts.
#[derive(Clone, Debug)]
pub struct Caps {
    counts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    per_client: usize,
}

/// One connection's place under a [`Caps`]; given back on drop.
#[derive(Debug)]
pub struct Place {
    caps: Caps,
    prefix: IpAddr,
}

impl Caps {
    /// At most `per_client` connections per client prefix.
    pub fn new(per_client: usize) -> Caps {
        Caps {
            counts: Default::default(),
            per_client,
        }
    }

    /// A place for a connection from `ip`, or `None` when its prefix is at the cap.
    pub fn admit(&self, ip: IpAddr) -> Option<Place> {
        let prefix = prefix(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(prefix).or_insert(0);
        if *n >= self.per_client {
            return None;
        }
        *n += 1;
        Some(Place {
            caps: self.clone(),
            prefix,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.caps.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.prefix) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.prefix);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = |s: &str| prefix(s.parse().unwrap()).to_string();
        assert_eq!(p("198.18.0.7"), "198.18.0.7");
        assert_eq!(p("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(p("::ffff:198.18.0.7"), "198.18.0.7");
    }

    #[test]
    fn caps_count_per_prefix_and_give_places_back() {
        let caps = Caps::new(2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap(); // same /64
        let one = caps.admit(a).unwrap();
        let _two = caps.admit(b).unwrap();
        assert!(caps.admit(a).is_none());
        assert!(caps.admit("198.18.0.1".parse().unwrap()).is_some());
        drop(one);
        assert!(caps.admit(a).is_some());
    }
}
