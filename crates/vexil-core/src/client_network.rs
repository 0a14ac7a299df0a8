//! `client_network`: the network a client address counts as, for every limit and
//! lock keyed by where attempts come from. An IPv4 address is itself; an IPv6
//! address is its /64, since one host is routinely given a whole /64 and would
//! otherwise get a fresh allowance from each of its addresses; an IPv4-mapped IPv6
//! address is the IPv4 address it maps.

use core::net::{IpAddr, Ipv6Addr};

/// The network `address` counts as.
pub fn client_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The network of an address as audit rows record it (`"from"`), or `None` for a
/// text that is not an address (`unknown`, for a request without a socket).
pub fn network_of(recorded: &str) -> Option<IpAddr> {
    recorded.parse().ok().map(client_network)
}

#[cfg(test)]
mod tests {
    use super::{client_network, network_of};

    #[test]
    fn a_v6_address_counts_as_its_64_and_a_v4_one_as_itself() {
        let net = |s: &str| client_network(s.parse().unwrap()).to_string();
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            network_of("2001:db8:1:2::9"),
            network_of("2001:db8:1:2:ffff::1")
        );
        assert_ne!(network_of("2001:db8:1:2::9"), network_of("2001:db8:1:3::9"));
        assert_eq!(network_of("unknown"), None);
    }
}
