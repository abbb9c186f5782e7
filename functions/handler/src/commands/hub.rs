//! `handler hub`: the local Web PubSub hub and its OpenID issuer as a process of their own, so
//! several handler instances share one hub as they share one Web PubSub in Azure (the scaled-out
//! local run). Each handler then runs exactly as in Azure: `WEBPUBSUB_ENDPOINT` and the Entra
//! settings name the hub and its issuer, and `azure_identity`'s App Service credential
//! (`AZURE_CREDENTIAL_KIND=appservice`, `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`) fetches the
//! app's tokens from the issuer's identity endpoint.

use std::path::Path;

use anyhow::Context;
use azure_clients::entra::ManagedIdentity;
use platform::config::ExposeSecret;
use webpubsub_hub::LocalRealtime;

/// Starts the hub on `port` (0: any free port), sending events to `event_handler` (one handler's
/// `…/api/realtime/events`, or the balancer in front of several), writes the handlers' settings
/// to `env_file` as `export` lines, and serves until SIGTERM or Ctrl-C.
pub async fn hub(port: u16, hub: &str, event_handler: &str, env_file: &Path) -> anyhow::Result<()> {
    let local = webpubsub_hub::spawn_local(port, hub, event_handler.to_owned())
        .await
        .context("start the Web PubSub hub")?;
    write_settings(env_file, &handler_settings(&local, hub))
        .with_context(|| format!("write the handlers' settings to {}", env_file.display()))?;
    tracing::info!(
        endpoint = %local.service.endpoint,
        settings = %env_file.display(),
        "local Web PubSub hub listening"
    );
    crate::shutdown_signal().await;
    Ok(())
}

/// What a handler needs to use this hub, under the names Azure uses.
fn handler_settings(local: &LocalRealtime, hub: &str) -> Vec<(&'static str, String)> {
    let events = &local.service.events;
    let mut settings = vec![
        ("WEBPUBSUB_ENDPOINT", local.service.endpoint.clone()),
        ("WEBPUBSUB_HUB", hub.to_owned()),
        ("ENTRA_AUTHORITY", events.authority.clone()),
        ("ENTRA_TENANT_ID", events.tenant_id.clone()),
        ("WEBPUBSUB_EVENT_AUDIENCES", events.audiences.join(",")),
        ("WEBPUBSUB_PRINCIPAL_ID", events.principal_ids.join(",")),
    ];
    if let ManagedIdentity::Endpoint { url, secret } = &local.service.identity {
        settings.extend([
            ("AZURE_CREDENTIAL_KIND", "appservice".to_owned()),
            ("IDENTITY_ENDPOINT", url.clone()),
            ("IDENTITY_HEADER", secret.expose_secret().to_owned()),
        ]);
    }
    settings
}

/// Writes the settings readable by the owner only, and whole: a reader never sees half a file.
fn write_settings(path: &Path, settings: &[(&str, String)]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&partial)?;
    for (name, value) in settings {
        writeln!(file, "export {name}={value}")?;
    }
    file.sync_all()?;
    std::fs::rename(partial, path)
}
