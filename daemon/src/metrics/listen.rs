//! The `--metrics-listen` value: loopback unless an address is given.

use std::net::{Ipv4Addr, SocketAddr};

/// Parses `PORT`, `:PORT`, `localhost:PORT` (all on 127.0.0.1), `IPV4:PORT` or
/// `[IPV6]:PORT`. A robot's metrics are private unless someone names an outside address
/// (`0.0.0.0:9101` for every interface); host names other than `localhost` are refused,
/// since resolving them at start-up would depend on the network being up.
pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    let value = value.trim();
    let port_only = value
        .strip_prefix(':')
        .or_else(|| value.strip_prefix("localhost:"))
        .unwrap_or(value);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    value.parse::<SocketAddr>().map_err(|_| {
        "expected PORT, ADDRESS:PORT or [IPV6]:PORT, e.g. 9101, 127.0.0.1:9101 or 0.0.0.0:9101"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_unless_told_otherwise() {
        let lo = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
        assert_eq!(parse_listen("9101"), Ok(lo(9101)));
        assert_eq!(parse_listen(":9101"), Ok(lo(9101)));
        assert_eq!(parse_listen("localhost:0"), Ok(lo(0)));
        assert_eq!(
            parse_listen("0.0.0.0:9101"),
            Ok("0.0.0.0:9101".parse().unwrap())
        );
        assert_eq!(parse_listen("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        for bad in [
            "",
            "x",
            "65536",
            "1.2.3.4",
            "robot.local:9101",
            "1.2.3.4:x",
            "::1:80",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}
