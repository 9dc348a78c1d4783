//! The layering of the library, checked: each folder imports only the
//! folders below it ({handlers, ops} -> jobs -> {export, redrive, write,
//! read} -> store -> contract), in its non-test code.

use std::collections::BTreeSet;
use std::path::Path;

/// Each part and the parts it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    ("contract", &[]),
    ("store", &[]),
    ("telemetry", &[]),
    ("export", &["contract", "store"]),
    ("redrive", &["contract", "store"]),
    ("write", &["contract", "store"]),
    ("read", &["contract", "store"]),
    (
        "jobs",
        &["contract", "store", "export", "redrive", "write", "read"],
    ),
    (
        "ops",
        &[
            "contract", "store", "export", "redrive", "write", "read", "jobs",
        ],
    ),
    (
        "handlers",
        &[
            "contract", "store", "export", "redrive", "write", "read", "jobs",
        ],
    ),
];

/// The code of a file without its test module (tests may reach anywhere).
fn non_test_code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

fn imported_parts(code: &str) -> BTreeSet<String> {
    let mut parts = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let name: String = code[at + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        parts.insert(name);
    }
    parts
}

fn visit(dir: &Path, part: &str, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            visit(&path, part, found);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().ends_with("tests"))
        {
            let text = std::fs::read_to_string(&path).expect("readable source file");
            let allowed = ALLOWED
                .iter()
                .find(|(name, _)| *name == part)
                .map(|(_, allowed)| *allowed)
                .unwrap_or_else(|| panic!("{part} is not in ALLOWED: place it in the layering"));
            for imported in imported_parts(non_test_code(&text)) {
                if imported != part && !allowed.contains(&imported.as_str()) {
                    found.push(format!("{} imports crate::{imported}", path.display()));
                }
            }
        }
    }
}

#[test]
fn every_part_imports_only_the_parts_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).expect("readable src") {
        let path = entry.expect("readable entry").path();
        let part = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            visit(&path, &part, &mut found);
        } else if part != "lib" && part != "layers" {
            let text = std::fs::read_to_string(&path).expect("readable source file");
            for imported in imported_parts(non_test_code(&text)) {
                let allowed = ALLOWED.iter().find(|(name, _)| *name == part);
                assert!(allowed.is_some(), "{part} is not in ALLOWED");
                if imported != part && !allowed.unwrap().1.contains(&imported.as_str()) {
                    found.push(format!("{} imports crate::{imported}", path.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports against the layering:\n{}",
        found.join("\n")
    );
}
