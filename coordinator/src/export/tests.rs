//! Statistics, month bucketing, the chart's SVG and the post-mortem's content on known inputs.

use super::chart::{Chart, Mark, Series};
use super::trends::{Month, Stat, trends};
use super::*;
use crate::store::incidents::{StoredState, TimelineRecord};

/// 2026-01-31 23:59:59.999 UTC.
const JAN_END: i64 = 1_769_903_999_999;

fn incident(id: u64, class: &str, onset_ms: i64, ttd: i64, ttr: Option<i64>) -> IncidentRecord {
    IncidentRecord {
        id,
        class: class.into(),
        state: if ttr.is_some() {
            StoredState::Resolved
        } else {
            StoredState::Confirmed
        },
        severity: "page".into(),
        regions: vec!["me-south".into()],
        targets: vec!["home".into()],
        asns: vec![],
        probe: None,
        edge: None,
        onset_ms,
        detected_ms: onset_ms + ttd,
        ttd_ms: ttd,
        paged_ms: Some(onset_ms + ttd + 1_000),
        resolved_ms: ttr.map(|r| onset_ms + r),
        explanation: "Round trips from the Gulf grew by 180 ms.".into(),
        evidence: vec![],
        timeline: vec![
            TimelineRecord {
                at_ms: onset_ms + ttd,
                what: "confirmed: 4 of 5 probes".into(),
            },
            TimelineRecord {
                at_ms: onset_ms + ttd + 1_000,
                what: "paged".into(),
            },
        ],
        updated_ms: onset_ms,
        maintenance: Default::default(),
    }
}

#[test]
fn medians_and_p90_on_known_inputs() {
    assert_eq!(
        Stat::of(&[]),
        Stat {
            count: 0,
            median_ms: None,
            p90_ms: None
        }
    );
    let one = Stat::of(&[7]);
    assert_eq!((one.median_ms, one.p90_ms), (Some(7.0), Some(7.0)));
    let odd = Stat::of(&[5, 1, 3]);
    assert_eq!((odd.median_ms, odd.p90_ms), (Some(3.0), Some(5.0)));
    let even = Stat::of(&[4, 1, 3, 2]);
    assert_eq!(even.median_ms, Some(2.5));
    // 1..=10: nearest rank ceil(9) = 9th; 1..=20: the 18th; 1..=11: ceil(9.9) = 10th.
    let ten: Vec<i64> = (1..=10).rev().collect();
    assert_eq!(Stat::of(&ten).p90_ms, Some(9.0));
    assert_eq!(Stat::of(&ten).median_ms, Some(5.5));
    assert_eq!(Stat::of(&(1..=20).collect::<Vec<_>>()).p90_ms, Some(18.0));
    assert_eq!(Stat::of(&(1..=11).collect::<Vec<_>>()).p90_ms, Some(10.0));
    assert_eq!(Stat::of(&(1..=11).collect::<Vec<_>>()).count, 11);
}

#[test]
fn months_are_utc_calendar_months() {
    assert_eq!(Month::of_ms(0).to_string(), "1970-01");
    assert_eq!(Month::of_ms(JAN_END).to_string(), "2026-01");
    assert_eq!(Month::of_ms(JAN_END + 1).to_string(), "2026-02");
    assert_eq!(Month::of_ms(-1).to_string(), "1969-12");
    assert_eq!(Month::parse("2026-01"), Some(Month::of_ms(JAN_END)));
    for bad in ["2026-13", "2026-00", "2026-1", "26-01", "2026", "x"] {
        assert_eq!(Month::parse(bad), None, "{bad}");
    }
    assert!(Month::parse("2025-12") < Month::parse("2026-01"));
}

#[test]
fn trends_bucket_by_onset_month_and_split_site_from_operational() {
    let list = vec![
        incident(1, "origin-down", JAN_END - 10_000, 30_000, Some(600_000)),
        incident(2, "origin-down", JAN_END - 20_000, 50_000, None),
        incident(
            3,
            "regional-network",
            JAN_END - 30_000,
            70_000,
            Some(900_000),
        ),
        incident(4, "probe-fault", JAN_END - 40_000, 120_000, Some(60_000)),
        // One ms into February.
        incident(5, "origin-slow", JAN_END + 1, 40_000, Some(300_000)),
        incident(6, "origin-down", JAN_END - 40 * 86_400_000, 10_000, None),
    ];
    let published = BTreeMap::from([(1, JAN_END + 100_000), (3, JAN_END + 20_000)]);
    let t = trends(&list, &published, Month::parse("2026-01"));
    let months: Vec<&str> = t.months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(months, ["2026-01", "2026-02"], "December is before --since");
    let jan = &t.months[0];
    assert_eq!(jan.site.incidents, 3);
    assert_eq!(jan.site.ttd.median_ms, Some(50_000.0));
    assert_eq!(jan.site.ttd.p90_ms, Some(70_000.0));
    assert_eq!(jan.site.ttr.count, 2, "the open one has no time to resolve");
    assert_eq!(jan.site.ttr.median_ms, Some(750_000.0));
    let ttc = jan.site.ttc.as_ref().expect("site incidents have ttc");
    assert_eq!(ttc.count, 2);
    assert_eq!(ttc.median_ms, Some(80_000.0), "110 s and 50 s");
    assert_eq!(jan.operational.incidents, 1);
    assert_eq!(jan.operational.ttd.median_ms, Some(120_000.0));
    assert!(jan.operational.ttc.is_none());
    let classes: Vec<(&str, usize, bool)> = jan
        .classes
        .iter()
        .map(|c| (c.class.as_str(), c.group.incidents, c.operational))
        .collect();
    assert_eq!(
        classes,
        [
            ("origin-down", 2, false),
            ("probe-fault", 1, true),
            ("regional-network", 1, false)
        ]
    );
    assert_eq!(t.months[1].site.incidents, 1);
    let all = trends(&list, &published, None);
    assert_eq!(all.months.len(), 3);
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["months"][0]["site"]["ttd"]["count"], 3);
    assert_eq!(
        json["months"][0]["classes"][0]["ttd"]["median_ms"],
        40_000.0
    );
    assert!(trends::text(&t).contains("2026-01  origin-down"));
}

fn chart() -> Chart {
    let from = 1_769_900_000_000 - 1_769_900_000_000 % 60_000;
    let pts = |base: f64| -> Vec<(i64, f64)> {
        (0..60)
            .filter(|m| !(30..32).contains(m))
            .map(|m| (from + m * 60_000, base + (m as f64).sin() * 5.0))
            .collect()
    };
    Chart {
        from_ms: from,
        to_ms: from + 60 * 60_000,
        phase: "connect".into(),
        series: vec![
            Series {
                region: "me-south".into(),
                name: "the Gulf & Oman".into(),
                affected: true,
                points: pts(220.0),
            },
            Series {
                region: "eu-west".into(),
                name: "Western Europe".into(),
                affected: false,
                points: pts(40.0),
            },
        ],
        marks: vec![
            Mark {
                at_ms: from + 10 * 60_000,
                label: "onset".into(),
            },
            Mark {
                at_ms: from + 12 * 60_000,
                label: "detected".into(),
            },
        ],
    }
}

/// Element names opened and closed in order: a stack check of a well-formed document.
fn balanced(svg: &str) -> Result<usize, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').ok_or("unclosed tag")? + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("stray </{name}>"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
        } else {
            elements += 1;
            let name = tag.split_whitespace().next().ok_or("empty tag")?;
            let name = name.trim_end_matches('/').to_string();
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        if tag.matches('"').count() % 2 == 1 {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
    }
    if stack.is_empty() {
        Ok(elements)
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

#[test]
fn the_chart_is_well_formed_svg_with_every_point_inside_the_view_box() {
    let c = chart();
    let svg = c.svg("Incident 1 <test>");
    assert!(balanced(&svg).expect("balanced") > 10);
    assert!(svg.contains("Incident 1 &lt;test&gt;"));
    assert!(svg.contains("the Gulf &amp; Oman (affected)"));
    assert!(svg.contains("Western Europe (healthy)"));
    assert!(svg.contains("time (UTC)") && svg.contains("round trip (connect) p50, ms"));
    assert_eq!(svg.matches("class=\"mark\"").count(), 2);
    // The missing minutes 30 and 31 split each series in two lines.
    assert_eq!(svg.matches("data-region=\"me-south\"").count(), 2);
    let mut points = 0;
    for line in svg.lines().filter(|l| l.contains("class=\"series\"")) {
        let list = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for p in list.split_whitespace() {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((0.0..=chart::WIDTH).contains(&x), "{p}");
            assert!((0.0..=chart::HEIGHT).contains(&y), "{p}");
            points += 1;
        }
    }
    assert_eq!(points, 2 * 58);
    assert!(balanced("<svg><g></svg></g>").is_err());
    assert!(balanced("<svg><line/>").is_err());
}

#[test]
fn an_empty_chart_says_so_and_stays_well_formed() {
    let mut c = chart();
    c.series.clear();
    let svg = c.svg("empty");
    balanced(&svg).expect("balanced");
    assert!(svg.contains("no round-trip data"));
}

#[test]
fn the_post_mortem_orders_milestones_and_messages_and_computes_the_durations() {
    let onset = JAN_END - 3_600_000;
    let i = incident(9, "regional-network", onset, 45_000, Some(1_800_000));
    let message = MessageRecord {
        id: 3,
        incident: 9,
        stage: crate::drafts::Stage::Investigating,
        title: "Slow pages in the Gulf".into(),
        body: "We are looking into it.".into(),
        regions: vec!["me-south".into()],
        state: crate::store::messages::MessageState::Published,
        drafted_ms: onset + 50_000,
        edited_ms: None,
        edited_by: None,
        approved_ms: Some(onset + 200_000),
        approved_by: Some("dana".into()),
        published_ms: Some(onset + 240_000),
        published_by: Some("dana".into()),
    };
    let regions = vec![RegionName {
        id: "me-south".into(),
        name: "the Gulf".into(),
    }];
    let note = crate::store::notes::NoteRecord {
        id: 1,
        incident: 9,
        at_ms: onset + 600_000,
        author: "sam".into(),
        text: "Opened a ticket with the carrier | #4411".into(),
        created_ms: onset + 900_000,
    };
    let pm = PostMortem::new(i, vec![message], vec![note], regions, chart());
    assert_eq!(pm.ttd_ms, 45_000);
    assert_eq!(pm.ttc_ms, Some(240_000));
    assert_eq!(pm.ttr_ms, Some(1_800_000));
    let times: Vec<i64> = pm.timeline.iter().map(|l| l.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let whats: Vec<&str> = pm.timeline.iter().map(|l| l.what.as_str()).collect();
    let pos = |s: &str| whats.iter().position(|w| w.contains(s)).unwrap();
    assert!(pos("onset") < pos("detected"));
    assert!(pos("detected") < pos("confirmed: 4 of 5"));
    assert!(pos("SRE paged") < pos("message drafted"));
    assert!(pos("message approved by dana") < pos("first member message published"));
    assert!(pos("first member message published") < pos("resolved"));
    let kinds: Vec<&str> = pm.timeline.iter().map(|l| l.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "milestone").count(), 5);
    assert_eq!(kinds.iter().filter(|k| **k == "detection").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "message").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "note").count(), 1);
    assert!(pos("first member message published") < pos("note by sam"));
    assert!(pos("note by sam") < pos("resolved"));
    let md = pm.markdown(Some("chart.svg"));
    assert!(md.starts_with("# Post-mortem: incident 9 (regional-network)"));
    assert!(md.contains("- **Time to detect:** 45.0 s"), "{md}");
    assert!(md.contains("- **Time to communicate:** 4 min 0 s"), "{md}");
    assert!(md.contains("- **Time to resolve:** 30 min 0 s"), "{md}");
    assert!(md.contains("the Gulf (`me-south`)"));
    assert!(md.contains("![Round trip (connect) p50 per minute"));
    assert!(md.contains("(chart.svg)"));
    assert!(md.contains("Round trips from the Gulf grew by 180 ms."));
    // A pipe in a note does not break the table.
    assert!(
        md.contains("| note | note by sam: Opened a ticket with the carrier \\| #4411 |"),
        "{md}"
    );
}

#[test]
fn durations_read_as_people_say_them() {
    assert_eq!(duration(None), "-");
    assert_eq!(duration(Some(42_300)), "42.3 s");
    assert_eq!(duration(Some(192_000)), "3 min 12 s");
    assert_eq!(duration(Some(7_500_000)), "2 h 5 min");
    assert_eq!(utc(JAN_END), "2026-01-31 23:59:59");
}
