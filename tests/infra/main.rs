//! Checks the Bicep templates under `infra/` against the Rust code, without Azure: every file
//! parses, the Function App provides every setting `platform::config::Config` reads (secrets as Key
//! Vault references), every function the handler defines is reachable, and the pieces the app
//! relies on (Flex custom runtime, identities, roles, PgBouncer) are declared.

mod alerts;
mod bicep;
mod functions;
mod network;
mod required;
mod resources;
mod settings;

use bicep::{BicepFile, infra_files};

#[test]
fn every_bicep_file_parses_without_syntax_errors() {
    let files = infra_files();
    let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
    assert!(
        paths.contains(&"infra/main.bicep") && paths.len() > 1,
        "expected infra/main.bicep and its modules, found {paths:?}"
    );

    let errors: Vec<String> = files.iter().flat_map(BicepFile::syntax_errors).collect();

    assert!(
        errors.is_empty(),
        "Bicep syntax errors:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_syntax_check_reports_file_and_line_of_broken_bicep() {
    let cases = [
        (
            "unclosed object",
            "param a string\nresource r 'A/b@1' = {\n  name: 'x'\n",
        ),
        ("stray token", "param a string\nvar b = = 1\n"),
    ];
    for (case, source) in cases {
        let errors = BicepFile::parse("broken.bicep", source).syntax_errors();

        assert!(
            errors
                .iter()
                .any(|error| error.starts_with("broken.bicep:")),
            "{case}: expected a located error, got {errors:?}"
        );
    }
}
