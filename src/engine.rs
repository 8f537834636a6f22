//! The configured machinery, built together from the files people edit: the
//! settings, the planner (playbooks, lifecycle rules) and the delivery
//! worker (templates, signing key, transport). One-shot commands build it
//! once; the daemon builds a new one on reload and swaps it in whole, so a
//! broken edit never half-applies.

use std::path::Path;
use std::sync::Arc;

use crate::config::Loaded;
use crate::deliver::Deliverer;
use crate::notify::Notifier;
use crate::notify::rules::Routes;
use crate::planner::Planner;
use crate::token::Signer;

/// Everything a plan or delivery pass needs that comes from configuration.
pub struct Engine {
    pub loaded: Loaded,
    pub planner: Arc<Planner>,
    pub deliverer: Arc<Deliverer>,
    /// Signs the links delivery puts in mail and checks them when they come
    /// back.
    pub signer: Signer,
    /// Routes and sends alerts and webhooks.
    pub notifier: Arc<Notifier>,
}

impl Engine {
    /// Builds both halves for the daemon, whose delivery claims under its
    /// stable `instance` name, refusing (with every problem listed) when a
    /// playbook or a template is broken.
    pub fn build(loaded: Loaded, instance: &str) -> anyhow::Result<Self> {
        let planner = planner(&loaded)?;
        let signer = signer(&loaded)?;
        let deliverer =
            Arc::new(deliverer_with(&loaded, &planner, signer.clone())?.claiming_as(instance));
        let notifier = Arc::new(notifier(&loaded, instance)?);
        Ok(Self {
            loaded,
            planner,
            deliverer,
            signer,
            notifier,
        })
    }
}

/// Alerts and webhooks as configured, claiming as `instance`.
pub fn notifier(loaded: &Loaded, instance: &str) -> anyhow::Result<Notifier> {
    let routes = Routes::new(&loaded.settings, &loaded.secrets.webhooks);
    Notifier::new(Arc::new(routes), instance).map_err(anyhow::Error::msg)
}

fn listed(what: &str, problems: &[crate::problem::Problem]) -> anyhow::Error {
    let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    anyhow::anyhow!(
        "the {what} have {} problem(s); fix them (tend check lists them):\n{}",
        problems.len(),
        lines.join("\n")
    )
}

/// The planner for the loaded configuration and its playbooks.
pub fn planner(loaded: &Loaded) -> anyhow::Result<Arc<Planner>> {
    let playbooks =
        crate::playbooks::load(&loaded.settings).map_err(|p| listed("playbooks", &p))?;
    let planner = Planner::new(&loaded.settings, playbooks).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(planner))
}

/// The planner and the delivery worker built on it: what a command that
/// plans and sends (or shows what it would send) needs.
pub fn planner_and_deliverer(loaded: &Loaded) -> anyhow::Result<(Arc<Planner>, Deliverer)> {
    let planner = planner(loaded)?;
    let deliverer = deliverer(loaded, &planner)?;
    Ok((planner, deliverer))
}

/// The delivery worker for the loaded configuration: the signing key, the
/// compiled templates, the transport, and the playbooks' own send windows.
pub fn deliverer(loaded: &Loaded, planner: &Planner) -> anyhow::Result<Deliverer> {
    deliverer_with(loaded, planner, signer(loaded)?)
}

/// The key for signed links: `security.secret`, or the one generated into
/// `paths.state`.
pub fn signer(loaded: &Loaded) -> anyhow::Result<Signer> {
    Ok(Signer::load(
        loaded.secrets.signing_key.as_ref(),
        Path::new(&loaded.settings.paths.state),
    )?)
}

fn deliverer_with(loaded: &Loaded, planner: &Planner, signer: Signer) -> anyhow::Result<Deliverer> {
    let renderer = crate::render::Renderer::load(&loaded.settings, signer.clone())
        .map_err(|p| listed("templates", &p))?;
    Deliverer::new(
        loaded,
        Arc::new(renderer),
        signer,
        planner.windows().clone(),
        planner.senders(),
    )
    .map_err(anyhow::Error::msg)
}
