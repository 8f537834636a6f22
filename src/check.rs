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
    /// What is valid but behaves differently from production, and why.
    pub notices: Vec<String>,
    /// Said before anything else: the built-in defaults apply because no
    /// config file was named or found.
    pub preface: Option<String>,
    /// DNS records to publish (the DKIM public key), in zone-file syntax.
    pub records: Vec<String>,
    /// Valid, but probably not what was meant: steps of different
    /// playbooks that would reach the same customers together.
    pub warnings: Vec<String>,
}

/// How far ahead overlaps are looked for: a quarter covers a renewal
/// sequence and every monthly step.
pub const OVERLAP_DAYS: i64 = 90;

/// Checks the configuration, the playbooks and the templates (each rendered
/// against a sample customer). Never stops at the first problem.
pub fn check(path: &ConfigPath, env: &Env) -> CheckReport {
    let mut report = CheckReport {
        checked: Vec::new(),
        problems: Vec::new(),
        notices: Vec::new(),
        records: Vec::new(),
        warnings: Vec::new(),
        preface: None,
    };
    match config::load(path, env) {
        Ok(loaded) => {
            report.checked.push(match &loaded.file {
                Some(file) => file.display().to_string(),
                None => {
                    report.preface = Some(format!(
                        "no config file named and none at {}: using the built-in defaults",
                        path.path().display()
                    ));
                    "built-in defaults".into()
                }
            });
            report.notices.extend(
                config::notices(&loaded.settings)
                    .into_iter()
                    .map(|(_, message)| message),
            );
            if let Some(dkim) = &loaded.settings.mail.dkim
                && let Ok(key) = crate::config::dkim::Key::load(dkim)
            {
                report.records.push(txt_record(
                    &crate::config::dkim::record_name(dkim),
                    &key.record(),
                ));
            }
            match playbooks::load(&loaded.settings) {
                Ok(catalog) => {
                    report.checked.push(format!(
                        "{} playbook{}",
                        catalog.playbooks.len(),
                        if catalog.playbooks.len() == 1 { "" } else { "s" }
                    ));
                    if let Ok(planner) = crate::planner::Planner::new(&loaded.settings, catalog) {
                        let now = chrono::Utc::now();
                        let sample = crate::demo::sample(&loaded.settings, now);
                        report.warnings.extend(
                            planner
                                .overlaps(sample, now, OVERLAP_DAYS)
                                .iter()
                                .map(|o| format!("{o} (in the demo customers; tend check --overlaps looks at yours)")),
                        );
                    }
                }
                Err(problems) => report.problems.extend(problems),
            }
            // A throwaway key: checking must not create the real one.
            let signer = crate::token::Signer::new(b"check");
            match crate::render::Renderer::load(&loaded.settings, signer) {
                Ok(renderer) => {
                    let found = renderer.check(chrono::Utc::now());
                    report.warnings.extend(
                        renderer
                            .translation_warnings()
                            .iter()
                            .map(ToString::to_string),
                    );
                    if found.is_empty() {
                        let built_in = renderer.built_in_templates();
                        let count = renderer.templates().count() - built_in;
                        let translations = match renderer.translations() {
                            0 => String::new(),
                            1 => " with 1 translation".to_owned(),
                            n => format!(" with {n} translations"),
                        };
                        report.checked.push(format!(
                            "{count} template{}{translations} (and {built_in} built-in notices)",
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
        Err(ConfigError::Empty(file)) => report.problems.push(Problem::new(
            &file,
            None,
            "the config file sets nothing (it is empty or holds only comments); write the settings into it (copy config/tend.toml from the tend repository), or name no config file to run on the built-in defaults",
        )),
        Err(ConfigError::Unreadable { path, source }) => report.problems.push(Problem::new(
            &path,
            None,
            format!("cannot read the config file ({source}); check its permissions"),
        )),
    }
    report
}

/// `NAME. IN TXT "…" "…"`: a zone file's TXT record, its value cut into
/// the 255-byte strings DNS holds (a 2048-bit RSA key needs two). A DNS
/// console that asks for one value takes the strings joined.
fn txt_record(name: &str, value: &str) -> String {
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect();
    format!("{name}. IN TXT {}", strings.join(" "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_txt_values_are_cut_into_dns_strings() {
        let value = format!("v=DKIM1; k=rsa; p={}", "A".repeat(300));
        let record = super::txt_record("tend._domainkey.acme.example", &value);
        let (head, strings) = record.split_once(" IN TXT ").unwrap();
        assert_eq!(head, "tend._domainkey.acme.example.");
        let parts: Vec<&str> = strings.split(' ').collect();
        assert_eq!(parts.len(), 4, "{record}"); // "v=DKIM1;" splits on its own spaces
        let joined: String = strings
            .split("\" \"")
            .collect::<String>()
            .trim_matches('"')
            .to_owned();
        assert_eq!(joined, value);
        assert!(
            strings
                .split("\" \"")
                .all(|s| s.trim_matches('"').len() <= 255)
        );
    }
}
