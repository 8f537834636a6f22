//! Message template names: what a name may be (`incidents/notice`, a path
//! inside the templates folder without `.md.hbs`) and whether it names a
//! template there or a built-in one. A name never reaches outside the
//! folder: not by `..`, not as an absolute path, not through a link.

use std::path::{Component, Path, PathBuf};

use super::source::{MESSAGE_SUFFIX, built_in_message_names};

/// The most template names an error lists before it says how many more.
const LISTED: usize = 20;

/// Why a name does not name a message template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateNameError {
    #[error(
        "{name:?} is not a template name: name a template by its path inside the templates folder {}, without \"..\" or a leading \"/\", such as incidents/notice (built in) or incidents/outage for {}",
        folder.display(),
        folder.join(format!("incidents/outage{MESSAGE_SUFFIX}")).display()
    )]
    Outside { name: String, folder: PathBuf },
    #[error(
        "the template {name:?} is {}, which leads outside the templates folder {}; keep templates inside it",
        file.display(),
        folder.display()
    )]
    Linked {
        name: String,
        file: PathBuf,
        folder: PathBuf,
    },
    #[error(
        "the template {name:?} does not exist{}: there is no {} and no built-in template of that name; create it, or name one of the templates: {}",
        crate::suggest::did_you_mean(name, known.iter().map(String::as_str)),
        file.display(),
        listed(known)
    )]
    Missing {
        name: String,
        file: PathBuf,
        /// Every message template there is, built-in ones included.
        known: Vec<String>,
    },
    #[error(
        "{name:?} is the {lang} translation of {base}, not a template of its own; name {base:?}: customers whose locale is {lang} get this translation"
    )]
    Translation {
        name: String,
        base: String,
        lang: String,
    },
}

fn listed(names: &[String]) -> String {
    let mut shown = names
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        shown.push_str(&format!(" and {} more", names.len() - LISTED));
    }
    shown
}

/// Whether `name` is shaped like a template name: relative, `/`-separated
/// parts that are plain file names (no `.`, `..`, empty part, backslash or
/// control character). Pure: reads nothing.
pub fn is_well_formed(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.chars().any(crate::domain::control::is_control)
        && name.split('/').all(|part| {
            matches!(
                Path::new(part).components().collect::<Vec<_>>().as_slice(),
                [Component::Normal(_)]
            )
        })
}

/// Checks that `name` names a message template: built in, or the file
/// `dir/NAME.md.hbs`, which must lie inside `dir` once links are followed.
pub fn find(dir: &Path, name: &str) -> Result<(), TemplateNameError> {
    // Absolute, so the message says where the folder is whatever the
    // working directory.
    let folder = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    if !is_well_formed(name) {
        return Err(TemplateNameError::Outside {
            name: name.to_owned(),
            folder,
        });
    }
    if let Some((base, lang)) = super::source::translation_of(name)
        && (folder.join(format!("{base}{MESSAGE_SUFFIX}")).is_file()
            || built_in_message_names().any(|n| n == base))
    {
        return Err(TemplateNameError::Translation {
            name: name.to_owned(),
            base: base.to_owned(),
            lang: lang.to_owned(),
        });
    }
    let file = folder.join(format!("{name}{MESSAGE_SUFFIX}"));
    if file.is_file() {
        // A link inside the folder may point anywhere: what counts is where
        // the file really is.
        return match (file.canonicalize(), folder.canonicalize()) {
            (Ok(real), Ok(root)) if real.starts_with(&root) => Ok(()),
            (real, _) => Err(TemplateNameError::Linked {
                name: name.to_owned(),
                file: real.unwrap_or(file),
                folder,
            }),
        };
    }
    if built_in_message_names().any(|n| n == name) {
        return Ok(());
    }
    Err(TemplateNameError::Missing {
        name: name.to_owned(),
        file,
        known: super::source::message_names(dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_a_plain_relative_path() {
        for good in [
            "incidents/notice",
            "welcome",
            "a/b/c",
            "tips/über-uns",
            "x.y",
        ] {
            assert!(is_well_formed(good), "{good}");
        }
        for bad in [
            "",
            "../secrets",
            "incidents/../../etc/passwd",
            "/etc/passwd",
            "./notice",
            "incidents//notice",
            "incidents/",
            "..",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn found_missing_outside_and_linked_out() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("templates");
        std::fs::create_dir_all(dir.join("incidents")).unwrap();
        std::fs::write(dir.join("incidents/outage.md.hbs"), "+++\n").unwrap();
        std::fs::write(root.path().join("secret.md.hbs"), "+++\n").unwrap();
        assert_eq!(find(&dir, "incidents/outage"), Ok(()));
        assert_eq!(find(&dir, "incidents/notice"), Ok(()), "built in");

        let e = find(&dir, "../secret").unwrap_err();
        assert!(matches!(e, TemplateNameError::Outside { .. }), "{e}");
        let said = e.to_string();
        assert!(said.contains(&dir.display().to_string()), "{said}");
        assert!(said.contains("such as incidents/notice"), "{said}");
        let abs = root.path().join("secret");
        assert!(matches!(
            find(&dir, abs.to_str().unwrap()),
            Err(TemplateNameError::Outside { .. })
        ));

        std::os::unix::fs::symlink(
            root.path().join("secret.md.hbs"),
            dir.join("incidents/linked.md.hbs"),
        )
        .unwrap();
        let e = find(&dir, "incidents/linked").unwrap_err();
        assert!(matches!(e, TemplateNameError::Linked { .. }), "{e}");

        let e = find(&dir, "incidents/outge").unwrap_err();
        let said = e.to_string();
        assert!(
            said.contains(&format!(
                "there is no {}",
                dir.join("incidents/outge.md.hbs").display()
            )),
            "{said}"
        );
        assert!(
            said.contains("incidents/cancelled, incidents/completed, incidents/linked, incidents/maintenance, incidents/notice, incidents/outage, incidents/resolved, incidents/update"),
            "{said}"
        );
    }
}
