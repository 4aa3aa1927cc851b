//! DNS checks: one question to one resolver, timed, with the response code and answers
//! compared against the check's expectations.

use std::net::IpAddr;

use hickory_resolver::proto::rr::{RData, RecordType as HickoryType};
use meridian_shared::check::{DnsCheck, Rcode, RecordType, ResolverSpec};
use meridian_shared::result::{CheckError, DnsDetail, ErrorClass, Phases};
use tokio::time::{Instant, timeout_at};

use crate::resolve::{self, LookupFailure};

/// What a DNS check produced, before the probe wraps it into a result record.
#[derive(Debug, Default)]
pub struct DnsOutcome {
    /// `dns` and `total` are measured; the other phases do not apply and are `Some(0)`.
    pub phases: Phases,
    /// The server asked, when it is a single explicit one.
    pub remote_ip: Option<IpAddr>,
    /// Response code and answers, when a response arrived.
    pub detail: Option<DnsDetail>,
    /// Why it failed, if it did.
    pub error: Option<CheckError>,
}

fn hickory_type(t: RecordType) -> HickoryType {
    match t {
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
        RecordType::Cname => HickoryType::CNAME,
        RecordType::Mx => HickoryType::MX,
        RecordType::Txt => HickoryType::TXT,
        RecordType::Ns => HickoryType::NS,
        RecordType::Soa => HickoryType::SOA,
    }
}

/// Runs one DNS check.
pub async fn run(check: &DnsCheck) -> DnsOutcome {
    let start = Instant::now();
    let deadline = start + check.timeout;
    let mut out = DnsOutcome {
        remote_ip: match check.resolver {
            ResolverSpec::System => None,
            ResolverSpec::Udp(a) | ResolverSpec::Tcp(a) => Some(a.ip()),
        },
        ..DnsOutcome::default()
    };
    let fail = |class, message: String| Some(CheckError { class, message });
    let resolver = match resolve::build(check.resolver, check.timeout) {
        Ok(r) => r,
        Err(m) => {
            out.error = fail(ErrorClass::Dns, m);
            out.phases.total = micros(start);
            return out;
        }
    };
    let fqdn = format!("{}.", check.name.trim_end_matches('.'));
    let wanted = hickory_type(check.record_type);
    // A DNS check has no connection, TLS or HTTP phases: they do not apply (Some(0)).
    out.phases.connect = Some(0);
    out.phases.tls = Some(0);
    out.phases.ttfb = Some(0);
    out.phases.transfer = Some(0);
    let t = Instant::now();
    let lookup = timeout_at(deadline, resolver.lookup(fqdn.as_str(), wanted)).await;
    out.phases.dns = Some(micros(t));
    let what = format!("{} {}", check.name, check.record_type);
    let got = match lookup {
        Err(_) => Err(LookupFailure::Timeout),
        Ok(Ok(lookup)) => {
            let answers = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == wanted)
                .map(|r| presentation(&r.data))
                .collect::<Vec<_>>();
            Ok(answers)
        }
        Ok(Err(e)) => Err(resolve::classify(&e)),
    };
    let (rcode, answers) = match got {
        Ok(answers) => (Rcode::NoError, answers),
        Err(LookupFailure::Rcode(rc)) => (rc, Vec::new()),
        Err(LookupFailure::Timeout) => {
            out.error = fail(
                ErrorClass::DnsTimeout,
                format!(
                    "no answer to {what} from {} before the check's timeout",
                    check.resolver
                ),
            );
            out.phases.total = micros(start);
            return out;
        }
        Err(LookupFailure::Other(m)) => {
            out.error = fail(
                ErrorClass::Dns,
                format!("{what} via {}: {m}", check.resolver),
            );
            out.phases.total = micros(start);
            return out;
        }
    };
    if rcode != check.expect_rcode {
        out.error = fail(
            ErrorClass::DnsRcode,
            format!(
                "{what} via {} answered {rcode}, expected {}",
                check.resolver, check.expect_rcode
            ),
        );
    } else if let Some(expect) = &check.expect_answers
        && !expect.matches(&answers)
    {
        out.error = fail(
            ErrorClass::DnsAnswer,
            format!(
                "{what} answers [{}] do not match the expectation",
                answers.join(", ")
            ),
        );
    }
    out.detail = Some(DnsDetail { rcode, answers });
    out.phases.total = micros(start);
    out
}

/// Zone-file presentation of record data, as `dig` prints it: TXT strings quoted and
/// space-separated (hickory's `Display` drops the quotes and joins the strings).
fn presentation(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| {
                let mut out = String::from("\"");
                for &b in s.iter() {
                    match b {
                        b'"' | b'\\' => {
                            out.push('\\');
                            out.push(char::from(b));
                        }
                        0x20..=0x7e => out.push(char::from(b)),
                        _ => out.push_str(&format!("\\{b:03}")),
                    }
                }
                out.push('"');
                out
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
