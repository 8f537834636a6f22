//! Loads every playbook file under `paths.playbooks`: reads the folder,
//! parses each file, and checks what no single file can (two files with one
//! name). The parsing itself is pure and lives in `domain::playbook`.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::domain::playbook::{self, Known, Playbook};
use crate::problem::Problem;
use crate::toml_source::line_of;

/// The playbooks, and a fingerprint of everything planning depends on.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub playbooks: Vec<Playbook>,
    /// Changes whenever a playbook file or a lifecycle rule changes, so the
    /// planner knows to look at every customer again. (Rust's hasher may
    /// change between toolchains: that costs one full re-plan, nothing more.)
    pub fingerprint: String,
}

/// Every playbook, or every problem found in any of them.
pub fn load(settings: &Settings) -> Result<Catalog, Vec<Problem>> {
    let dir = Path::new(&settings.paths.playbooks);
    let files = match list(dir) {
        Ok(files) => files,
        // A new project may have no playbooks yet; a folder named on purpose must exist.
        Err(_) if settings.paths.playbooks == Settings::default().paths.playbooks => Vec::new(),
        Err(e) => {
            return Err(vec![Problem::new(
                dir,
                None,
                format!("cannot read the playbooks folder ({e}); create it or fix paths.playbooks"),
            )]);
        }
    };
    let categories: HashSet<String> = settings.categories.iter().map(|c| c.name.clone()).collect();
    let stages: HashSet<String> = settings
        .lifecycle
        .stages
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let templates = PathBuf::from(&settings.paths.templates);
    let template_exists = |name: &str| crate::render::source::message_exists(&templates, name);
    let template_names = crate::render::source::message_names(&templates);
    let account_stages: HashSet<String> = settings
        .lifecycle
        .account_stages
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let team: Vec<String> = settings.team.iter().map(|m| m.id.clone()).collect();
    let known = Known {
        categories: &categories,
        stages: &stages,
        account_stages: &account_stages,
        template_exists: &template_exists,
        templates: &template_names,
        window: &settings.delivery.window,
        roles: &settings.accounts.roles,
        team: &team,
    };

    let mut hasher = std::hash::DefaultHasher::new();
    for stage in settings
        .lifecycle
        .stages
        .iter()
        .chain(&settings.lifecycle.account_stages)
    {
        (&stage.name, &stage.when).hash(&mut hasher);
    }
    let mut playbooks = Vec::new();
    let mut problems = Vec::new();
    let mut names = std::collections::HashMap::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(Problem::new(
                    &file,
                    None,
                    format!("cannot read the file ({e})"),
                ));
                continue;
            }
        };
        (&file, &text).hash(&mut hasher);
        match playbook::parse(&file, &text, &known) {
            Ok(p) => {
                if let Some(first) = names.insert(p.name.clone(), file.clone()) {
                    problems.push(Problem::new(
                        &file,
                        line_of(&text, "name"),
                        format!(
                            "playbook name {:?} is also used by {}; every playbook needs its own name",
                            p.name,
                            first.display()
                        ),
                    ));
                }
                playbooks.push(p);
            }
            Err(found) => problems.extend(found),
        }
    }
    if problems.is_empty() {
        Ok(Catalog {
            playbooks,
            fingerprint: format!("{:016x}", hasher.finish()),
        })
    } else {
        Err(problems)
    }
}

/// The `.toml` files of `dir`, in name order so problems list stably.
fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
