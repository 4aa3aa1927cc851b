//! Plain words with the arithmetic: the sentence an SRE reads first on a page, built from the
//! evidence so that it can be checked against the numbers.
//!
//! Example: "4 of 5 probes in me-south: connect +182 ms over a 96 ms baseline, server time
//! unchanged; 0 of 25 probes elsewhere affected".

use super::evaluate::Judged;
use super::incident::{Class, Incident, RegionEvidence};

/// A change smaller than this (ms, or 20 % of the baseline) reads as "unchanged".
fn unchanged(delta: Option<f64>, base: Option<f64>) -> bool {
    match delta {
        None => true,
        Some(d) => d.abs() < 10f64.max(0.2 * base.unwrap_or(0.0)),
    }
}

fn signed_ms(d: f64) -> String {
    format!("{:+.0} ms", d)
}

fn base_ms(b: Option<f64>) -> String {
    b.map_or_else(|| "not yet learnt".into(), |b| format!("{b:.0} ms"))
}

fn failing(e: &RegionEvidence) -> bool {
    e.failures * 2 > e.probes.max(1)
}

/// One region's line for a class.
pub fn region_line(class: Class, e: &RegionEvidence) -> String {
    let who = format!("{} of {} probes in {}", e.affected, e.probes, e.region);
    let fails = || {
        format!(
            "{who} fail ({})",
            e.failure_class.as_deref().unwrap_or("errors")
        )
    };
    match class {
        Class::DnsResolver | Class::DnsAuthoritative => format!(
            "{who} cannot resolve the name ({})",
            e.failure_class.as_deref().unwrap_or("slow answers")
        ),
        Class::OriginDown | Class::CdnEdge | Class::RegionalServer if failing(e) => fails(),
        Class::OriginSlow | Class::CdnEdge | Class::RegionalServer => {
            let (what, delta, base) = if unchanged(e.server_delta_ms, e.server_base_ms) {
                ("TLS handshake", e.tls_delta_ms, e.tls_base_ms)
            } else {
                ("server time", e.server_delta_ms, e.server_base_ms)
            };
            let connect = if unchanged(e.connect_delta_ms, e.connect_base_ms) {
                "connect unchanged".to_string()
            } else {
                format!("connect {}", signed_ms(e.connect_delta_ms.unwrap_or(0.0)))
            };
            format!(
                "{who}: {what} {} over a {} baseline, {connect}",
                signed_ms(delta.unwrap_or(0.0)),
                base_ms(base)
            )
        }
        _ if failing(e) => format!(
            "{who} cannot complete a connection ({})",
            e.failure_class.as_deref().unwrap_or("errors")
        ),
        _ => {
            // A path change also widens the noise of server time (first byte minus one
            // round trip, two samples of a longer, jitterier path): within 15 % of the connect
            // change it is not a server change worth a word.
            let path_noise = 0.15 * e.connect_delta_ms.unwrap_or(0.0).abs();
            let server = if unchanged(e.server_delta_ms, e.server_base_ms)
                || e.server_delta_ms.is_some_and(|d| d.abs() < path_noise)
            {
                "server time unchanged".to_string()
            } else {
                format!(
                    "server time {}",
                    signed_ms(e.server_delta_ms.unwrap_or(0.0))
                )
            };
            match e.connect_delta_ms {
                Some(d) => format!(
                    "{who}: connect {} over a {} baseline, {server}",
                    signed_ms(d),
                    base_ms(e.connect_base_ms)
                ),
                None => format!("{who}: connects retransmitted (packet loss), {server}"),
            }
        }
    }
}

/// The whole explanation of an incident.
pub fn incident(
    inc: &Incident,
    note: Option<&str>,
    elsewhere: Option<(usize, usize)>,
    late: Option<(u64, u64)>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if inc.class.is_operational() || inc.evidence.is_empty() {
        if let Some(n) = note {
            parts.push(n.to_string());
        }
    } else {
        let mut lines: Vec<String> = inc
            .evidence
            .iter()
            .filter(|e| inc.regions.contains(&e.region))
            .map(|e| region_line(inc.class, e))
            .collect();
        lines.sort();
        parts.extend(lines);
        if let Some(n) = note {
            parts.push(n.to_string());
        }
    }
    match inc.class {
        Class::Isp => parts.push(format!(
            "only probes on {} are affected; their region-mates on other networks are fine",
            inc.asns
                .iter()
                .map(|a| format!("AS{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Class::CdnEdge => {
            if let Some(edge) = &inc.edge {
                parts.push(format!("every affected region is served by edge {edge}; regions on other edges are fine"));
            }
        }
        _ => {}
    }
    // With every region in scope there is no "elsewhere" to compare with.
    if let Some((affected, total)) = elsewhere.filter(|(_, total)| *total > 0) {
        parts.push(format!("{affected} of {total} probes elsewhere affected"));
    }
    if let Some((failed, total)) = late {
        parts.push(format!(
            "late data from the silent period: {failed} of {total} checks failed{}",
            if failed * 2 > total {
                ", so the targets were unreachable from inside the region too"
            } else {
                ", so the targets stayed reachable from inside the region; only the link to the coordinator was cut"
            }
        ));
    }
    parts.join("; ")
}

/// A sentence about one probe's latest sample, for probe faults.
pub fn probe_sample(probe: &str, j: &Judged, good_mates: usize) -> String {
    let what = match (j.error, j.delta[0]) {
        (Some(class), _) => format!("its checks fail ({class})"),
        (None, Some(d)) => format!(
            "its connects take {} over its {} baseline",
            signed_ms(d),
            base_ms(j.base[0])
        ),
        (None, None) => "its samples are anomalous".to_string(),
    };
    if good_mates > 0 {
        format!("probe {probe}: {what} while {good_mates} probes of its region see nothing unusual")
    } else {
        format!("probe {probe}: {what}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_change(server_delta: f64) -> RegionEvidence {
        RegionEvidence {
            region: "me-south".into(),
            probes: 5,
            affected: 4,
            connect_base_ms: Some(96.0),
            connect_delta_ms: Some(182.0),
            tls_base_ms: Some(98.0),
            tls_delta_ms: Some(181.0),
            server_base_ms: Some(24.0),
            server_delta_ms: Some(server_delta),
            failures: 0,
            failure_class: None,
        }
    }

    #[test]
    fn a_path_change_reads_with_its_arithmetic_and_path_noise_is_not_a_server_change() {
        assert_eq!(
            region_line(Class::RegionalNetwork, &path_change(21.0)),
            "4 of 5 probes in me-south: connect +182 ms over a 96 ms baseline, server time unchanged"
        );
        // A server change beyond the path's noise is said.
        assert_eq!(
            region_line(Class::RegionalNetwork, &path_change(60.0)),
            "4 of 5 probes in me-south: connect +182 ms over a 96 ms baseline, server time +60 ms"
        );
    }
}
