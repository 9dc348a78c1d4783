//! The SAM template (`template.yaml`) against the workspace: every function
//! crate under `functions/` is deployed by exactly one template function and
//! every template function builds a crate; and the template passes cfn-lint
//! (`scripts/lint-template.sh`). The template is read line by line (the tests
//! crate has no YAML parser, on purpose): the reader below understands just
//! the layout `template.yaml` uses, and fails loudly when it finds nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Functions the template already deploys whose crates have not landed yet.
/// Remove a name when its crate lands under `functions/`: the test fails while
/// a listed crate exists, so this list cannot go stale, and it stays strict
/// about everything else.
const PLANNED_FUNCTIONS: &[&str] = &[];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

/// One `AWS::Serverless::Function` of the template, as the line reader saw it.
#[derive(Debug, Default)]
struct TemplateFunction {
    line: usize,
    code_uri: Option<String>,
    binary: Option<String>,
    build_method: Option<String>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `key: value` on a line, without a trailing comment or quotes.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(key)?.strip_prefix(':')?;
    let rest = match rest.find(" #") {
        Some(comment) => &rest[..comment],
        None => rest,
    };
    Some(rest.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// The serverless functions of the template by logical id: resources are the
/// keys indented by two under the top-level `Resources:`; a function is one
/// whose `Type:` (indented by four) is `AWS::Serverless::Function`.
fn template_functions(template: &str) -> BTreeMap<String, TemplateFunction> {
    let mut functions = BTreeMap::new();
    let mut in_resources = false;
    let mut current: Option<(String, TemplateFunction, bool)> = None;
    let mut finish = |current: &mut Option<(String, TemplateFunction, bool)>| {
        if let Some((id, function, true)) = current.take() {
            functions.insert(id, function);
        }
    };
    for (index, line) in template.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match indent(line) {
            0 => {
                finish(&mut current);
                in_resources = trimmed.trim_end() == "Resources:";
            }
            2 if in_resources => {
                finish(&mut current);
                let id = trimmed.trim_end().trim_end_matches(':').to_string();
                current = Some((
                    id,
                    TemplateFunction {
                        line: index + 1,
                        ..TemplateFunction::default()
                    },
                    false,
                ));
            }
            depth => {
                let Some((_, function, is_function)) = current.as_mut() else {
                    continue;
                };
                if depth == 4 && value_of(line, "Type") == Some("AWS::Serverless::Function") {
                    *is_function = true;
                }
                if let Some(v) = value_of(line, "CodeUri") {
                    function.code_uri = Some(v.to_string());
                }
                if let Some(v) = value_of(line, "Binary") {
                    function.binary = Some(v.to_string());
                }
                if let Some(v) = value_of(line, "BuildMethod") {
                    function.build_method = Some(v.to_string());
                }
            }
        }
    }
    finish(&mut current);
    functions
}

/// The function crates: directories under `functions/` with a `Cargo.toml`,
/// each checked to name its package after its directory (the binary SAM's
/// `Binary` names is the package's default binary).
fn function_crates(root: &Path) -> BTreeSet<String> {
    let dir = root.join("functions");
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&manifest).expect("read the crate's Cargo.toml");
        // The first `name = "..."` is [package]'s: it comes first in every crate here.
        let package = text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("name")?.trim_start();
            Some(rest.strip_prefix('=')?.trim().trim_matches('"'))
        });
        assert_eq!(
            package,
            Some(name.as_str()),
            "{} must name its package after its directory ({name}): template.yaml's Binary is the package's binary",
            manifest.display()
        );
        crates.insert(name);
    }
    crates
}

#[test]
fn every_function_crate_is_in_the_template_and_back() {
    let root = repo_root();
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("read template.yaml");
    let functions = template_functions(&template);
    assert!(
        functions.len() >= 5,
        "the line reader found only {functions:?} in template.yaml: did its layout change?"
    );

    let mut deployed = BTreeSet::new();
    for (id, function) in &functions {
        let at = format!("template.yaml:{} ({id})", function.line);
        assert_eq!(
            function.build_method.as_deref(),
            Some("rust-cargolambda"),
            "{at}: Metadata.BuildMethod must be rust-cargolambda"
        );
        let binary = function
            .binary
            .clone()
            .unwrap_or_else(|| panic!("{at}: Metadata.BuildProperties.Binary is missing"));
        assert_eq!(
            function.code_uri.as_deref(),
            Some(format!("functions/{binary}").as_str()),
            "{at}: CodeUri must be the crate of its Binary"
        );
        assert!(
            deployed.insert(binary.clone()),
            "{at}: {binary} is deployed twice"
        );
    }

    let crates = function_crates(&root);
    let planned: BTreeSet<String> = PLANNED_FUNCTIONS.iter().map(|s| s.to_string()).collect();
    let landed: Vec<&String> = planned.intersection(&crates).collect();
    assert!(
        landed.is_empty(),
        "{landed:?} now have crates under functions/: remove them from PLANNED_FUNCTIONS in tests/tests/it/template.rs"
    );
    let without_function: Vec<&String> = crates.difference(&deployed).collect();
    assert!(
        without_function.is_empty(),
        "function crates with no AWS::Serverless::Function in template.yaml: {without_function:?}"
    );
    let without_crate: BTreeSet<String> = deployed.difference(&crates).cloned().collect();
    assert_eq!(
        without_crate, planned,
        "template functions without a crate under functions/ must be exactly PLANNED_FUNCTIONS"
    );
}

#[test]
fn every_function_runs_rust_on_provided_al2023() {
    let template =
        std::fs::read_to_string(repo_root().join("template.yaml")).expect("read template.yaml");
    let globals: Vec<&str> = template
        .lines()
        .skip_while(|line| line.trim_end() != "Globals:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' ') || line.starts_with('#'))
        .collect();
    for expected in [
        "Runtime: provided.al2023",
        "Handler: bootstrap",
        "Architectures: [!Ref Architecture]",
    ] {
        assert!(
            globals.iter().any(|line| line.trim() == expected),
            "Globals.Function must set {expected}"
        );
    }
    for key in ["Runtime:", "Handler:", "Architectures:"] {
        let count = template
            .lines()
            .filter(|line| line.trim_start().starts_with(key))
            .count();
        assert_eq!(
            count, 1,
            "{key} must be set once, in Globals, for every function alike"
        );
    }
}

#[test]
fn the_template_passes_cfn_lint() {
    let script = repo_root().join("scripts/lint-template.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
