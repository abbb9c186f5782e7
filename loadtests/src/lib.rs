//! What the load-test binaries share.

/// Thousands of sockets need more than the default 1024 descriptors; child processes (the
/// handler) inherit the raised limit.
pub fn raise_file_limit() {
    // `prlimit` (util-linux) raises this process's soft limit to the machine's hard limit.
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=20000:20000"])
        .status();
}
