//! The WAN emulator's rules as data: what happens to a packet from one site (or address) to
//! another. Pure: no clock, no randomness; the emulator draws loss and jitter itself.
//!
//! A [`Rule`] is a delay, a jitter, a loss probability and a blackhole switch. Rules are set
//! per direction between sites (`from` → `to`, either side may be any site) and per host
//! address (every packet from or to that address). All rules that match a packet stack:
//! delays and jitters add up, losses combine as independent draws (`1 − Π(1 − pᵢ)`), and any
//! blackhole drops it. So a region's +50 ms and one of its probes' +400 ms give that probe
//! +450 ms, as two real faults on one path would.
//!
//! A link rule between a named site and `*` covers the site's traffic with every *other*
//! site: packets inside one site (a region's probes and its resolver, one data centre's LAN)
//! meet only rules naming that site on both sides, `(* → *)` and host rules. So a region's
//! base delay to the world does not delay its probes' queries to their own resolver.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What happens to the packets a rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rule {
    /// Added one-way delay.
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter` (never below zero); the
    /// packets of one flow (addresses, protocol, ports) still leave in order.
    pub jitter: Duration,
    /// Probability of dropping a packet, 0 to 1.
    pub loss: f64,
    /// Drop every packet (an unreachable path; counted apart from loss).
    pub blackhole: bool,
}

impl Rule {
    /// Just a one-way delay.
    pub fn delay(delay: Duration) -> Rule {
        Rule {
            delay,
            ..Rule::default()
        }
    }

    /// Just a loss probability.
    pub fn loss(loss: f64) -> Rule {
        Rule {
            loss,
            ..Rule::default()
        }
    }

    /// Drops everything.
    pub fn blackhole() -> Rule {
        Rule {
            blackhole: true,
            ..Rule::default()
        }
    }

    /// This rule with a jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Rule {
        self.jitter = jitter;
        self
    }

    /// This rule with a loss probability.
    pub fn with_loss(mut self, loss: f64) -> Rule {
        self.loss = loss;
        self
    }

    /// Whether it changes nothing.
    pub fn is_noop(&self) -> bool {
        *self == Rule::default()
    }

    /// Both rules applied to one packet.
    pub fn stack(self, other: Rule) -> Rule {
        Rule {
            delay: self.delay + other.delay,
            jitter: self.jitter + other.jitter,
            loss: 1.0 - (1.0 - self.loss) * (1.0 - other.loss),
            blackhole: self.blackhole || other.blackhole,
        }
    }

    /// Checks the loss is a probability.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.loss),
            "loss must be between 0 and 1, not {}",
            self.loss
        );
        Ok(())
    }
}

/// Which sites a link rule applies to, by site index; `None` is every site.
pub type Link = (Option<usize>, Option<usize>);

/// Every rule in force.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Per direction between sites.
    links: HashMap<Link, Rule>,
    /// Per host address, both directions.
    hosts: HashMap<Ipv4Addr, Rule>,
}

impl Rules {
    /// Sets (or with a no-op rule, clears) the rule for `link`.
    pub fn set_link(&mut self, link: Link, rule: Rule) {
        if rule.is_noop() {
            self.links.remove(&link);
        } else {
            self.links.insert(link, rule);
        }
    }

    /// Sets (or with a no-op rule, clears) the rule for every packet from or to `addr`.
    pub fn set_host(&mut self, addr: Ipv4Addr, rule: Rule) {
        if rule.is_noop() {
            self.hosts.remove(&addr);
        } else {
            self.hosts.insert(addr, rule);
        }
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.links.clear();
        self.hosts.clear();
    }

    /// What applies to a packet from `src` (site `from`) to `dst` (site `to`).
    pub fn effective(&self, from: usize, to: usize, src: Ipv4Addr, dst: Ipv4Addr) -> Rule {
        let links = [
            (Some(from), Some(to)),
            (Some(from), None),
            (None, Some(to)),
            (None, None),
        ];
        let within = from == to;
        let mut rule = links
            .iter()
            .filter(|l| !(within && l.0.is_some() != l.1.is_some()))
            .filter_map(|l| self.links.get(l))
            .fold(Rule::default(), |acc, r| acc.stack(*r));
        for addr in [src, dst] {
            if let Some(r) = self.hosts.get(&addr) {
                rule = rule.stack(*r);
            }
        }
        rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
    const O: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);

    #[test]
    fn rules_match_by_direction_and_stack() {
        let mut rules = Rules::default();
        rules.set_link((Some(0), Some(1)), Rule::delay(Duration::from_millis(50)));
        assert_eq!(rules.effective(0, 1, A, O).delay, Duration::from_millis(50));
        assert!(rules.effective(1, 0, O, A).is_noop(), "one direction only");

        rules.set_link((Some(0), None), Rule::loss(0.5));
        rules.set_host(A, Rule::delay(Duration::from_millis(400)).with_loss(0.5));
        let r = rules.effective(0, 1, A, O);
        assert_eq!(r.delay, Duration::from_millis(450));
        assert!((r.loss - 0.75).abs() < 1e-12);
        assert!(!r.blackhole);
        // The host rule applies on the way back too; the region's link rules do not.
        assert_eq!(
            rules.effective(1, 0, O, A).delay,
            Duration::from_millis(400)
        );

        rules.set_link((None, None), Rule::blackhole());
        assert!(rules.effective(2, 3, O, O).blackhole);
        rules.set_link((None, None), Rule::default());
        assert!(rules.effective(2, 3, O, O).is_noop(), "a no-op rule clears");
        rules.clear();
        assert!(rules.effective(0, 1, A, O).is_noop());
    }

    #[test]
    fn a_sites_rules_to_everywhere_else_leave_its_own_traffic_alone() {
        const R: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 200);
        let mut rules = Rules::default();
        rules.set_link((Some(0), None), Rule::delay(Duration::from_millis(50)));
        rules.set_link((None, Some(0)), Rule::delay(Duration::from_millis(50)));
        assert!(rules.effective(0, 0, A, R).is_noop(), "inside the site");
        assert_eq!(rules.effective(0, 1, R, O).delay, Duration::from_millis(50));
        rules.set_link((Some(0), Some(0)), Rule::loss(1.0));
        rules.set_host(R, Rule::delay(Duration::from_millis(7)));
        let r = rules.effective(0, 0, A, R);
        assert_eq!((r.loss, r.delay), (1.0, Duration::from_millis(7)));
        rules.set_link((None, None), Rule::blackhole());
        assert!(rules.effective(0, 0, A, R).blackhole);
    }

    #[test]
    fn loss_must_be_a_probability() {
        assert!(Rule::loss(1.0).validate().is_ok());
        assert!(Rule::loss(1.5).validate().is_err());
        assert!(Rule::loss(-0.1).validate().is_err());
        assert!(Rule::loss(f64::NAN).validate().is_err());
    }
}
