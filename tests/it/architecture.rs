//! ARCHITECTURE.md stays true: it names every workspace member's directory and every
//! top-level module of the library crates, in backticks, so a new crate or module cannot
//! land without its line in the codemap.

use meridian_tests::cli::workspace_root;

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The quoted entries of the root manifest's `members = [...]`.
fn members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let start = manifest.find("members").expect("a members list");
    let list = &manifest[start..];
    let list = &list[list.find('[').expect("[") + 1..list.find(']').expect("]")];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The `NAME` of every `pub mod NAME;` line of a crate root.
fn top_level_modules(lib_rs: &str) -> Vec<String> {
    read(lib_rs)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

#[test]
fn architecture_names_every_workspace_crate() {
    let doc = read("ARCHITECTURE.md");
    let members = members();
    for expected in ["shared", "probe", "coordinator", "tests"] {
        assert!(
            members.iter().any(|m| m == expected),
            "{expected} is a member: {members:?}"
        );
    }
    for m in &members {
        let named = format!("`{m}/`");
        assert!(
            doc.contains(&named),
            "ARCHITECTURE.md does not name {named}"
        );
    }
}

#[test]
fn architecture_names_every_top_level_module() {
    let doc = read("ARCHITECTURE.md");
    let mut checked = 0;
    // The harness crate (`tests`) is not part of the product's codemap.
    for member in members().into_iter().filter(|m| m != "tests") {
        let lib = format!("{member}/src/lib.rs");
        if !workspace_root().join(&lib).is_file() {
            continue;
        }
        let modules = top_level_modules(&lib);
        assert!(
            !modules.is_empty(),
            "{lib} declares its modules with `pub mod NAME;`"
        );
        for m in modules {
            assert!(
                doc.contains(&format!("`{m}`")),
                "ARCHITECTURE.md does not name `{m}` ({lib})"
            );
            checked += 1;
        }
    }
    // shared has 4 modules and probe 10: a parser that found nothing must not pass.
    assert!(checked >= 14, "only {checked} modules found");
}
