//! `handler package <dir>`: assembles the deployable function app folder: `host.json`, this
//! executable as `handler` (mode 755, which zip deploys must keep), and one folder per function
//! holding its `function.json`.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, bail, ensure};

const HOST_JSON: &str = include_str!("../../../../host.json");

pub fn package(out_dir: &Path) -> anyhow::Result<()> {
    prepare_empty(out_dir)?;
    fs::write(out_dir.join("host.json"), HOST_JSON).context("write host.json")?;

    let executable = std::env::current_exe().context("locate the running executable")?;
    let target = out_dir.join("handler");
    fs::copy(&executable, &target).context("copy the handler executable")?;
    set_executable(&target)?;

    let mut seen = HashSet::new();
    for function in crate::functions() {
        ensure!(
            is_valid_function_name(function.name),
            "{} is not a valid Azure function name",
            function.name
        );
        ensure!(
            seen.insert(function.name),
            "function {} is defined twice",
            function.name
        );
        serde_json::from_str::<serde_json::Value>(function.function_json)
            .with_context(|| format!("{}/function.json is not JSON", function.name))?;
        let folder = out_dir.join(function.name);
        fs::create_dir(&folder).with_context(|| format!("create {}", folder.display()))?;
        fs::write(folder.join("function.json"), function.function_json)
            .with_context(|| format!("write {}/function.json", function.name))?;
    }
    Ok(())
}

/// The host's rule: `^[a-z][a-z0-9_-]{0,127}$`, and never `host`.
fn is_valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name != "host"
}

/// Creates `dir`, or empties it when it holds an earlier package; refuses anything else, so a
/// typo can't wipe an unrelated folder.
fn prepare_empty(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_empty = fs::read_dir(dir)?.next().is_none();
        if !is_empty {
            if !dir.join("host.json").exists() {
                bail!(
                    "{} is not empty and is not an earlier package",
                    dir.display()
                );
            }
            fs::remove_dir_all(dir).with_context(|| format!("clear {}", dir.display()))?;
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).context("chmod 755 handler")
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> anyhow::Result<()> {
    bail!("package on Linux: the deployed handler needs its executable bit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_follow_the_hosts_rule() {
        for good in ["auth", "auth-cleanup", "a_1"] {
            assert!(is_valid_function_name(good), "{good}");
        }
        for bad in ["", "Auth", "1auth", "host", "a.b", &"a".repeat(129)] {
            assert!(!is_valid_function_name(bad), "{bad}");
        }
    }

    /// Every `functions/<group>/azure/<name>/function.json` on disk is registered, and nothing
    /// registered is missing on disk.
    #[test]
    fn registered_functions_match_the_folders_on_disk() {
        let functions_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut on_disk: Vec<String> = fs::read_dir(&functions_dir)
            .unwrap()
            .flatten()
            .map(|group| group.path().join("azure"))
            .filter(|azure| azure.is_dir())
            .flat_map(|azure| fs::read_dir(azure).unwrap().flatten())
            .filter(|function| function.path().join("function.json").is_file())
            .map(|function| function.file_name().to_string_lossy().into_owned())
            .collect();
        let mut registered: Vec<String> = crate::functions().map(|f| f.name.to_owned()).collect();
        on_disk.sort();
        registered.sort();
        assert_eq!(on_disk, registered);
    }
}
