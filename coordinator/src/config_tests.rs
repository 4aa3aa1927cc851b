//! Tests of `coordinator.toml` parsing: the example, defaults, and every invalid fixture paired
//! with its exact message.

use super::*;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_example_is_valid_and_assigns_checks_by_region() {
    let c = CoordinatorConfig::load(&manifest_dir().join("coordinator.example.toml")).unwrap();
    assert_eq!(c.quic.port(), 4433);
    assert_eq!(c.raw_retention, Duration::from_secs(14 * DAY));
    assert_eq!(c.targets.len(), 2);
    let gulf = RegionId::parse("me-south").unwrap();
    let europe = RegionId::parse("eu-central").unwrap();
    let ids = |r: &RegionId| {
        c.checks_for(r)
            .iter()
            .map(|k| k.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&gulf), ["shop-home", "shop-dns", "api-health"]);
    assert_eq!(ids(&europe), ["shop-home", "shop-dns"]);
}

#[test]
fn defaults_fill_what_is_left_out() {
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/meridian/d"));
    assert_eq!(c.http, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(c.rollup_retention, Duration::from_secs(400 * DAY));
    assert_eq!(c.cert_validity, Duration::from_secs(90 * DAY));
    assert_eq!(c.server_names, ["localhost"]);
    assert!(c.targets.is_empty());
}

#[test]
fn every_invalid_file_produces_exactly_its_expected_message() {
    let dir = manifest_dir().join("testdata");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("invalid-") && name.ends_with(".toml")) {
            continue;
        }
        let src = SourceFile::new(
            format!("testdata/{name}"),
            std::fs::read_to_string(&path).unwrap(),
        );
        let err = CoordinatorConfig::from_source(&src, manifest_dir()).expect_err(&name);
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        assert_eq!(err.to_string(), expected.trim_end(), "{name}");
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} fixtures");
}
