//! What the recursor knows about each authoritative server: its smoothed round-trip time, how
//! many times in a row it did not answer, whether it speaks EDNS (Unbound's "infrastructure
//! cache"). It orders a zone's servers (fastest first, with a little jitter so that equal
//! servers share the load), sets each query's timeout from the RTT (RFC 6298's estimator), and
//! keeps servers that stopped answering out of the way for a while, so that a flood of names
//! under a dead zone fails fast instead of waiting for timeouts again and again.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// RTT assumed for a server never asked before (Unbound's 376 ms "unknown server niceness" is
/// about the same idea: try known-fast servers first, but do try the others).
const UNKNOWN_RTT: Duration = Duration::from_millis(300);
/// Shortest timeout for one query.
const MIN_TIMEOUT: Duration = Duration::from_millis(120);
/// Timeouts in a row after which a server is held back.
const HOLD_AFTER: u32 = 3;
/// How long a server that stopped answering is held back at first; doubled while it stays
/// silent, up to [`MAX_HOLD`].
const FIRST_HOLD: Duration = Duration::from_secs(5);
const MAX_HOLD: Duration = Duration::from_secs(300);
/// Each time a zone's query goes to a measured server while another of its servers was never
/// asked, the RTT assumed for that one shrinks by this factor (BIND's decay of servers not
/// chosen): a server never asked is tried within a few queries even when a measured one is below
/// [`UNKNOWN_RTT`] (150 ms, say), and so found if it is the fastest. Without it the measured
/// one was asked forever.
const PASSED_OVER: f64 = 0.9;
/// Servers remembered; beyond it the oldest entries go (a memory bound against floods of
/// names under ever new delegations).
const MAX_SERVERS: usize = 50_000;

#[derive(Clone, Copy, Debug)]
struct State {
    srtt: Duration,
    rttvar: Duration,
    timeouts: u32,
    held_until: Option<Instant>,
    /// The server answered FORMERR to a query with EDNS: ask it without.
    no_edns: bool,
    /// The server answers REFUSED/SERVFAIL/NOTAUTH for zones it should serve.
    lame_until: Option<Instant>,
    touched: Instant,
}

/// The infrastructure cache.
#[derive(Debug)]
pub struct Servers {
    states: Mutex<HashMap<IpAddr, State>>,
    /// How many times each server never asked was passed over for a measured one.
    passed_over: Mutex<HashMap<IpAddr, i32>>,
    /// Upper bound of one query's timeout (`resolver.server_timeout_ms`).
    max_timeout: Duration,
}

impl Servers {
    /// An empty cache; no query waits longer than `max_timeout`.
    pub fn new(max_timeout: Duration) -> Servers {
        Servers {
            states: Mutex::new(HashMap::new()),
            passed_over: Mutex::new(HashMap::new()),
            max_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, State>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `addrs` in the order to try them: servers that answer first, fastest first (a random
    /// 0–20 ms jitter spreads load over equals); servers held back or lame last, or left out
    /// while held back unless all are.
    pub fn order(&self, addrs: &[IpAddr]) -> Vec<IpAddr> {
        let now = Instant::now();
        let states = self.lock();
        let mut passed = self.passed_over.lock().unwrap_or_else(|e| e.into_inner());
        let mut ranked: Vec<(u8, Duration, IpAddr)> = addrs
            .iter()
            .map(|&ip| {
                let (class, rtt) = match states.get(&ip) {
                    None => {
                        let n = passed.get(&ip).copied().unwrap_or(0);
                        (0, UNKNOWN_RTT.mul_f64(PASSED_OVER.powi(n)))
                    }
                    Some(s) => {
                        let held = s.held_until.is_some_and(|t| t > now);
                        let lame = s.lame_until.is_some_and(|t| t > now);
                        (u8::from(lame) + 2 * u8::from(held), s.srtt)
                    }
                };
                let jitter = Duration::from_millis(rand::random_range(0..20));
                (class, rtt + jitter, ip)
            })
            .collect();
        ranked.sort_by_key(|&(class, rtt, _)| (class, rtt));
        if ranked.first().is_some_and(|f| states.contains_key(&f.2)) {
            if passed.len() >= MAX_SERVERS {
                passed.clear();
            }
            for (_, _, ip) in &ranked {
                if !states.contains_key(ip) {
                    *passed.entry(*ip).or_insert(0) += 1;
                }
            }
        }
        ranked.into_iter().map(|(_, _, ip)| ip).collect()
    }

    /// Whether `ip` is held back now (it stopped answering); a held server still gets one
    /// probe when its hold ends.
    pub fn is_held(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.lock()
            .get(&ip)
            .is_some_and(|s| s.held_until.is_some_and(|t| t > now))
    }

    /// The timeout for a query to `ip`: its RTT estimate plus four deviations, within bounds.
    pub fn timeout(&self, ip: IpAddr) -> Duration {
        let est = match self.lock().get(&ip) {
            Some(s) => s.srtt + 4 * s.rttvar,
            None => self.max_timeout,
        };
        est.clamp(MIN_TIMEOUT, self.max_timeout)
    }

    /// Whether `ip` is asked with EDNS.
    pub fn edns(&self, ip: IpAddr) -> bool {
        !self.lock().get(&ip).is_some_and(|s| s.no_edns)
    }

    fn entry(states: &mut HashMap<IpAddr, State>, ip: IpAddr) -> &mut State {
        if states.len() >= MAX_SERVERS && !states.contains_key(&ip) {
            // Drop the least recently used tenth.
            let mut ages: Vec<(Instant, IpAddr)> =
                states.iter().map(|(ip, s)| (s.touched, *ip)).collect();
            ages.sort_unstable();
            for (_, old) in ages.into_iter().take(MAX_SERVERS / 10) {
                states.remove(&old);
            }
        }
        states.entry(ip).or_insert(State {
            srtt: UNKNOWN_RTT,
            rttvar: UNKNOWN_RTT / 2,
            timeouts: 0,
            held_until: None,
            no_edns: false,
            lame_until: None,
            touched: Instant::now(),
        })
    }

    /// `ip` answered after `rtt`.
    pub fn answered(&self, ip: IpAddr, rtt: Duration) {
        let mut states = self.lock();
        let first = !states.contains_key(&ip);
        let s = Self::entry(&mut states, ip);
        if first || s.timeouts > 0 {
            s.srtt = rtt;
            s.rttvar = rtt / 2;
        } else {
            // RFC 6298: rttvar = 3/4 rttvar + 1/4 |srtt - rtt|, srtt = 7/8 srtt + 1/8 rtt.
            let diff = s.srtt.abs_diff(rtt);
            s.rttvar = s.rttvar * 3 / 4 + diff / 4;
            s.srtt = s.srtt * 7 / 8 + rtt / 8;
        }
        s.timeouts = 0;
        s.held_until = None;
        s.touched = Instant::now();
    }

    /// `ip` did not answer in time.
    pub fn timed_out(&self, ip: IpAddr) {
        let mut states = self.lock();
        let max = self.max_timeout;
        let s = Self::entry(&mut states, ip);
        s.timeouts = s.timeouts.saturating_add(1);
        // Back off: the next query to it waits longer, and it sorts behind servers that answer.
        s.srtt = (s.srtt * 2).min(max);
        s.touched = Instant::now();
        if s.timeouts >= HOLD_AFTER {
            let doublings = (s.timeouts - HOLD_AFTER).min(6);
            let hold = (FIRST_HOLD * 2u32.pow(doublings)).min(MAX_HOLD);
            s.held_until = Some(Instant::now() + hold);
        }
    }

    /// `ip` answered a zone's question as if it did not serve the zone.
    pub fn lame(&self, ip: IpAddr) {
        let mut states = self.lock();
        let s = Self::entry(&mut states, ip);
        s.lame_until = Some(Instant::now() + Duration::from_secs(60));
        s.touched = Instant::now();
    }

    /// `ip` answered FORMERR to a query with EDNS.
    pub fn no_edns(&self, ip: IpAddr) {
        let mut states = self.lock();
        Self::entry(&mut states, ip).no_edns = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_servers_first_silent_ones_held_back() {
        let s = Servers::new(Duration::from_millis(1500));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.55.0.1".parse().unwrap(),
            "127.55.0.2".parse().unwrap(),
            "127.55.0.3".parse().unwrap(),
        );
        s.answered(a, Duration::from_millis(200));
        s.answered(b, Duration::from_millis(2));
        assert_eq!(s.order(&[a, b]), [b, a]);
        for _ in 0..HOLD_AFTER {
            s.timed_out(b);
        }
        assert!(s.is_held(b));
        assert_eq!(s.order(&[a, b, c])[2], b, "held servers go last");
        s.answered(b, Duration::from_millis(2));
        assert!(!s.is_held(b));
    }

    #[test]
    fn a_server_never_asked_is_probed_after_a_few_queries() {
        let s = Servers::new(Duration::from_millis(1500));
        let (slow, unknown): (IpAddr, IpAddr) =
            ("127.55.0.1".parse().unwrap(), "127.55.0.2".parse().unwrap());
        s.answered(slow, Duration::from_millis(150));
        let first = (0..30).position(|_| s.order(&[slow, unknown])[0] == unknown);
        assert!(first.is_some_and(|n| n >= 3), "{first:?}");
    }

    #[test]
    fn timeouts_follow_the_rtt_within_bounds() {
        let s = Servers::new(Duration::from_millis(1500));
        let a: IpAddr = "127.55.0.1".parse().unwrap();
        assert_eq!(
            s.timeout(a),
            Duration::from_millis(1500),
            "unknown: the most"
        );
        s.answered(a, Duration::from_millis(1));
        assert_eq!(s.timeout(a), MIN_TIMEOUT);
        s.answered(a, Duration::from_millis(900));
        assert!(s.timeout(a) > MIN_TIMEOUT);
    }
}
