//! `handler package <dir>` assembles the deployable function app folder.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn package_into(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_handler"))
        .arg("package")
        .arg(dir)
        .output()
        .expect("run the handler binary")
}

#[test]
fn the_package_has_host_json_an_executable_handler_and_a_folder_per_function() {
    let dir = std::env::temp_dir().join(format!("codeconnect-package-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);

    let output = package_into(&dir);

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let host: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("host.json")).unwrap()).unwrap();
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "handler"
    );
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(host["extensions"]["http"]["routePrefix"], "api");
    let mode = fs::metadata(dir.join("handler"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "handler must keep its run bit");
    assert_eq!(
        fs::read(dir.join("handler")).unwrap(),
        fs::read(env!("CARGO_BIN_EXE_handler")).unwrap(),
        "the packaged handler is the built binary"
    );

    let mut folders: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut expected: Vec<String> = handler::functions().map(|f| f.name.to_owned()).collect();
    expected.sort();
    assert_eq!(folders, expected);
    for function in handler::functions() {
        let written = fs::read_to_string(dir.join(function.name).join("function.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&written).unwrap();
        let binding = &json["bindings"][0];
        match binding["type"].as_str() {
            Some("httpTrigger") => {
                assert_eq!(binding["authLevel"], "anonymous", "{}", function.name);
                let route = binding["route"].as_str().unwrap().to_lowercase();
                // The host disables functions whose route text starts with these.
                assert!(
                    !route.starts_with("admin") && !route.starts_with("runtime"),
                    "{route}"
                );
            }
            Some("timerTrigger") => {
                assert!(
                    handler::timer_functions().any(|timer| timer.name == function.name),
                    "{}",
                    function.name
                );
                assert_eq!(binding["runOnStartup"], false);
            }
            other => panic!("{}: unexpected trigger {other:?}", function.name),
        }
    }

    // Packaging again over an earlier package replaces it.
    assert!(package_into(&dir).status.success());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn packaging_refuses_to_clear_an_unrelated_folder() {
    let dir = std::env::temp_dir().join(format!("codeconnect-unrelated-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("precious.txt"), "keep me").unwrap();

    let output = package_into(&dir);

    assert!(!output.status.success());
    assert_eq!(
        fs::read_to_string(dir.join("precious.txt")).unwrap(),
        "keep me"
    );
    fs::remove_dir_all(&dir).unwrap();
}
