//! Stored incidents as a test prints them: [`brief`] puts one in a few lines (class, severity,
//! scope, state, onset and resolution relative to detection, the explanation, each region's
//! evidence and the timeline), for failure messages and the scenarios' log. Reads the
//! coordinator's own `coordinator incidents --json` records; judges nothing.

use meridian_coordinator::store::incidents::IncidentRecord;

/// One incident in a few lines: what, where, when (relative to detection), the explanation,
/// the evidence and the timeline, for logs and failure messages.
pub fn brief(i: &IncidentRecord) -> String {
    let mut out = format!(
        "#{} {} {} [{}] probe={} state={} onset={:+} ms resolved={} ms\n    {}",
        i.id,
        i.class,
        i.severity,
        i.regions.join(","),
        i.probe.as_deref().unwrap_or("-"),
        i.state.as_str(),
        i.onset_ms - i.detected_ms,
        i.resolved_ms
            .map_or("-".to_string(), |r| format!("{:+}", r - i.detected_ms)),
        i.explanation
    );
    for e in &i.evidence {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        out.push_str(&format!(
            "\n    {}: {}/{} affected, connect {}{:+}, tls {}{:+}, server {}{:+}, failures {} {}",
            e.region,
            e.affected,
            e.probes,
            f(e.connect_base_ms),
            e.connect_delta_ms.unwrap_or(f64::NAN),
            f(e.tls_base_ms),
            e.tls_delta_ms.unwrap_or(f64::NAN),
            f(e.server_base_ms),
            e.server_delta_ms.unwrap_or(f64::NAN),
            e.failures,
            e.failure_class.as_deref().unwrap_or("")
        ));
    }
    for t in &i.timeline {
        out.push_str(&format!(
            "\n    {:+} ms {}",
            t.at_ms - i.detected_ms,
            t.what
        ));
    }
    out
}

/// [`brief`] of each, one after the other.
pub fn briefs(incidents: &[IncidentRecord]) -> String {
    incidents.iter().map(brief).collect::<Vec<_>>().join("\n")
}
