//! Configuration: built-in defaults, then `config/tend.toml`, then
//! `TEND__SECTION__KEY` environment variables; validated into [`Loaded`]
//! with every problem named by file and line. The only module that reads
//! the process environment.

pub mod database_url;
pub mod dkim;
pub mod holidays;
pub mod secret;
pub mod settings;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use secret::Secret;
pub use settings::Settings;
pub use validate::{notices, parse_mailbox};

use crate::problem::Problem;
use crate::toml_source::{line_of, structural_problems};

/// The environment variable prefix for overrides: `TEND__DATABASE__URL`.
const ENV_PREFIX: &str = "TEND";
const ENV_SEPARATOR: &str = "__";

/// Which config file to read.
#[derive(Debug, Clone)]
pub enum ConfigPath {
    /// Named by `--config` or `$TEND_CONFIG`: it must exist.
    Explicit(PathBuf),
    /// `config/tend.toml`: when absent, the built-in defaults apply.
    Default(PathBuf),
}

impl ConfigPath {
    pub fn path(&self) -> &Path {
        match self {
            Self::Explicit(p) | Self::Default(p) => p,
        }
    }
}

/// A snapshot of the process environment, taken once at start-up so that
/// nothing below reads the environment behind the caller's back.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn capture() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self {
            vars: pairs.into_iter().collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Who runs a command (`$SUDO_USER`, `$USER`, `$LOGNAME`), to say who
    /// made a change by hand.
    pub fn login(&self) -> Option<&str> {
        ["SUDO_USER", "USER", "LOGNAME"]
            .into_iter()
            .find_map(|name| self.get(name).filter(|v| !v.trim().is_empty()))
    }

    /// `$TEND_CONFIG`: the config file when `--config` is not given.
    pub fn config_file(&self) -> Option<&str> {
        self.get("TEND_CONFIG").filter(|v| !v.is_empty())
    }

    /// `$RUST_LOG`: a tracing filter that overrides `log.level`.
    pub fn log_filter(&self) -> Option<&str> {
        self.get("RUST_LOG").filter(|v| !v.is_empty())
    }

    /// `$RUNTIME_DIRECTORY`: the directory systemd made for the service's
    /// `RuntimeDirectory=` (the first, when the unit names several).
    pub fn runtime_directory(&self) -> Option<&Path> {
        self.get("RUNTIME_DIRECTORY")
            .map(|v| v.split_once(':').map_or(v, |(first, _)| first))
            .filter(|v| !v.is_empty())
            .map(Path::new)
    }

    /// The `TEND__*` overrides, as the config crate expects them.
    fn overrides(&self) -> BTreeMap<String, String> {
        let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
        self.vars
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Secrets resolved from the config, files and systemd credentials.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub smtp_password: Option<Secret>,
    pub imap_password: Option<Secret>,
    pub api_token: Option<Secret>,
    /// The HMAC key for signed links; generated into the state directory on
    /// first run when none is configured.
    pub signing_key: Option<Secret>,
    /// Each standard webhook endpoint's signing secret, by name.
    pub webhooks: std::collections::HashMap<String, crate::webhook::signature::WebhookSecret>,
}

/// A validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub secrets: Secrets,
    /// The file that was read, or `None` when the built-in defaults applied.
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {} does not exist; create it (copy config/tend.toml from the tend repository) or point --config / TEND_CONFIG at it",
        .0.display()
    )]
    Missing(PathBuf),
    #[error(
        "config file {} sets nothing (it is empty or holds only comments); write the settings into it (copy config/tend.toml from the tend repository), or name no config file to run on the built-in defaults",
        .0.display()
    )]
    Empty(PathBuf),
    #[error("cannot read config file {}: {source}; check the path and its permissions", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration has {} problem(s):\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads, merges and validates the configuration.
pub fn load(path: &ConfigPath, env: &Env) -> Result<Loaded, ConfigError> {
    let text = read_file(path)?;
    let file = text.as_ref().map(|_| path.path().to_owned());
    let shown = path.path();

    // The file alone first: its mistakes carry exact lines.
    if let Some(text) = &text {
        // An emptied file is a mistake (a failed copy, a truncating
        // editor), not a wish for the defaults: they would mean a new
        // signing key, no API and the file transport.
        if sets_nothing(text) {
            return Err(ConfigError::Empty(shown.to_owned()));
        }
        let problems = structural_problems::<Settings>(shown, text);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
    }

    let settings = merge(text.as_deref(), env)?;
    let mut problems = validate::validate(&settings);
    let mut elsewhere = Vec::new();
    let secrets = resolve_secrets(&settings, env, &mut problems, &mut elsewhere);
    let smtp = &settings.mail.smtp;
    if settings.mail.transport == settings::Transport::Smtp
        && !smtp.username.is_empty()
        && secrets.smtp_password.is_none()
    {
        problems.push((
            "mail.smtp.username".into(),
            format!(
                "mail.smtp.username is {:?} but no password is given; set mail.smtp.password_file (or mail.smtp.password, or the smtp_password credential), or clear the username",
                smtp.username
            ),
        ));
    }
    if problems.is_empty() && elsewhere.is_empty() {
        Ok(Loaded {
            settings,
            secrets,
            file,
        })
    } else {
        Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|(key, message)| locate_problem(shown, text.as_deref(), env, &key, message))
                .chain(elsewhere)
                .collect(),
        ))
    }
}

/// True when `text` is valid TOML without a single key: empty, blank or
/// only comments.
fn sets_nothing(text: &str) -> bool {
    text.parse::<toml::Table>()
        .is_ok_and(|table| table.is_empty())
}

fn read_file(path: &ConfigPath) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path.path()) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match path {
            ConfigPath::Explicit(p) => Err(ConfigError::Missing(p.clone())),
            ConfigPath::Default(_) => Ok(None),
        },
        Err(source) => Err(ConfigError::Unreadable {
            path: path.path().to_owned(),
            source,
        }),
    }
}

/// Defaults (serde), then the file, then the environment (the config crate).
fn merge(text: Option<&str>, env: &Env) -> Result<Settings, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(text) = text {
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
    }
    let overrides = env.overrides();
    let names: Vec<String> = overrides.keys().cloned().collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator(ENV_SEPARATOR)
            .separator(ENV_SEPARATOR)
            // Values stay strings: a password `007` must not become `7`.
            // (So lists from the environment are comma-separated strings that
            // the settings types split themselves.)
            .try_parsing(false)
            .source(Some(overrides.into_iter().collect())),
    );
    builder
        .build()
        .and_then(|c| c.try_deserialize::<Settings>())
        .map_err(|e| {
            ConfigError::Invalid(vec![Problem::new(
                Path::new("environment"),
                None,
                format!(
                    "{e}; check the overrides ({}) — each is TEND__SECTION__KEY in upper case, e.g. TEND__DATABASE__URL",
                    if names.is_empty() { "none set".to_owned() } else { names.join(", ") }
                ),
            )])
        })
}

/// A problem about dotted `key`: its line in the file, or the environment
/// variable that set it.
fn locate_problem(
    file: &Path,
    text: Option<&str>,
    env: &Env,
    key: &str,
    message: String,
) -> Problem {
    let var = format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        key.replace('.', ENV_SEPARATOR).to_uppercase()
    );
    if env.get(&var).is_some() {
        return Problem::new(Path::new(&format!("environment {var}")), None, message);
    }
    let line = text.and_then(|t| line_of(t, key));
    Problem::new(file, line, message)
}

fn resolve_secrets(
    settings: &Settings,
    env: &Env,
    problems: &mut Vec<(String, String)>,
    elsewhere: &mut Vec<Problem>,
) -> Secrets {
    use secret::{SecretAt, SecretSource, Strength, resolve};
    let credentials = env.get("CREDENTIALS_DIRECTORY").map(Path::new);
    let mut one = |source: SecretSource<'_>| match resolve(&source, credentials) {
        Ok(secret) => secret,
        Err(e) => {
            match e.at {
                SecretAt::Key(key) => problems.push((key, e.message)),
                SecretAt::Credential(path) => elsewhere.push(Problem::new(&path, None, e.message)),
            }
            None
        }
    };
    let smtp = &settings.mail.smtp;
    // Only the smtp transport logs in: with another, a password file that
    // is missing or unreadable must not keep tend from starting.
    let smtp_password = if settings.mail.transport == settings::Transport::Smtp {
        one(SecretSource {
            key: "mail.smtp.password",
            inline: smtp.password.as_ref(),
            file: &smtp.password_file,
            credential: "smtp_password",
            strength: Strength::Any,
        })
    } else {
        None
    };
    let imap_password = settings.inbound.imap.as_ref().and_then(|imap| {
        one(SecretSource {
            key: "inbound.imap.password",
            inline: imap.password.as_ref(),
            file: &imap.password_file,
            credential: "imap_password",
            strength: Strength::Any,
        })
    });
    let api_token = one(SecretSource {
        key: "http.api_token",
        inline: settings.http.api_token.as_ref(),
        file: &settings.http.api_token_file,
        credential: "api_token",
        strength: Strength::Token,
    });
    let signing_key = one(SecretSource {
        key: "security.secret",
        inline: settings.security.secret.as_ref(),
        file: &settings.security.secret_file,
        credential: "secret",
        strength: Strength::Key,
    });
    // Each standard endpoint signs with its own secret; a Slack incoming
    // webhook's URL is its secret.
    let mut webhooks = std::collections::HashMap::new();
    let mut unusable = Vec::new();
    for (i, hook) in settings.webhooks.iter().enumerate() {
        if hook.format() != settings::WebhookFormat::Standard {
            continue;
        }
        let key = format!("webhook.{i}.secret");
        let credential = format!("webhook_{}", hook.name);
        let found = one(SecretSource {
            key: &key,
            inline: hook.secret.as_ref(),
            file: &hook.secret_file,
            credential: &credential,
            strength: Strength::Token,
        });
        match found.map(|s| crate::webhook::signature::WebhookSecret::parse(s.expose())) {
            Some(Ok(secret)) => {
                webhooks.insert(hook.name.clone(), secret);
            }
            Some(Err(e)) => {
                let at = if hook.secret.is_some() { key } else { format!("{key}_file") };
                unusable.push((at, format!("webhook {:?}: {e}", hook.name)));
            }
            None => unusable.push((
                format!("webhook.{i}.name"),
                format!(
                    "webhook {:?} has no signing secret; set secret_file (a file holding whsec_ and base64, e.g. `echo whsec_$(head -c 32 /dev/urandom | base64) > FILE`) or the credential {credential}, so its receiver can tell tend's deliveries from forgeries",
                    hook.name
                ),
            )),
        }
    }
    problems.extend(unusable);
    Secrets {
        smtp_password,
        imap_password,
        api_token,
        signing_key,
        webhooks,
    }
}

/// The machine's name, or `tend` when it has none: what an instance is
/// named after unless `instance.name` says otherwise.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tend".into())
}

/// An alert rule's template, `{templates}/NAME.txt.hbs`, read and compiled
/// (plain text: nothing is escaped); the error names the file and what to
/// do.
pub fn alert_template(
    templates: &str,
    name: &str,
) -> Result<handlebars::Handlebars<'static>, String> {
    let path = Path::new(templates).join(format!("{name}.txt.hbs"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "template = {name:?}: cannot read {} ({e}); write the alert's text there",
            path.display()
        )
    })?;
    let mut registry = handlebars::Handlebars::new();
    registry.register_escape_fn(handlebars::no_escape);
    registry
        .register_template_string("alert", text)
        .map_err(|e| format!("template = {name:?}: {}: {e}", path.display()))?;
    Ok(registry)
}
