//! `tend check`: every validation a person can run before shipping an edit,
//! each problem as `file:line: message`.

use crate::config::{self, ConfigError, ConfigPath, Env};
use crate::playbooks;
use crate::problem::Problem;

/// What `check` found.
pub struct CheckReport {
    /// What was checked, for the summary line.
    pub checked: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Checks the configuration, the playbooks and the templates (each rendered
/// against a sample customer). Never stops at the first problem.
pub fn check(path: &ConfigPath, env: &Env) -> CheckReport {
    let mut report = CheckReport {
        checked: Vec::new(),
        problems: Vec::new(),
    };
    match config::load(path, env) {
        Ok(loaded) => {
            report.checked.push(match &loaded.file {
                Some(file) => file.display().to_string(),
                None => "built-in defaults".into(),
            });
            match playbooks::load(&loaded.settings) {
                Ok(catalog) => report.checked.push(format!(
                    "{} playbook{}",
                    catalog.playbooks.len(),
                    if catalog.playbooks.len() == 1 { "" } else { "s" }
                )),
                Err(problems) => report.problems.extend(problems),
            }
            // A throwaway key: checking must not create the real one.
            let signer = crate::token::Signer::new(b"check");
            match crate::render::Renderer::load(&loaded.settings, signer) {
                Ok(renderer) => {
                    let found = renderer.check(chrono::Utc::now());
                    if found.is_empty() {
                        let built_in = renderer.built_in_templates();
                        let count = renderer.templates().count() - built_in;
                        report.checked.push(format!(
                            "{count} template{} (and {built_in} built-in notices)",
                            if count == 1 { "" } else { "s" }
                        ));
                    }
                    report.problems.extend(found);
                }
                Err(problems) => report.problems.extend(problems),
            }
        }
        Err(ConfigError::Invalid(problems)) => report.problems.extend(problems),
        Err(ConfigError::Missing(file)) => report.problems.push(Problem::new(
            &file,
            None,
            "the config file does not exist; create it (copy config/tend.toml from the tend repository) or point --config / TEND_CONFIG at it",
        )),
        Err(ConfigError::Unreadable { path, source }) => report.problems.push(Problem::new(
            &path,
            None,
            format!("cannot read the config file ({source}); check its permissions"),
        )),
    }
    report
}
