//! `tend check`.

use std::process::ExitCode;

use crate::config::{ConfigPath, Env};

pub fn run(path: &ConfigPath, env: &Env) -> ExitCode {
    let report = crate::check::check(path, env);
    if let Some(preface) = &report.preface {
        println!("{preface}");
    }
    for notice in &report.notices {
        eprintln!("notice: {notice}");
    }
    if report.problems.is_empty() {
        println!("ok: {}", report.checked.join(", "));
        for record in &report.records {
            println!("dkim: publish {record}");
        }
        return ExitCode::SUCCESS;
    }
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    eprintln!(
        "{} problem{} found; fix {} and run tend check again",
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" },
        if report.problems.len() == 1 {
            "it"
        } else {
            "them"
        }
    );
    ExitCode::from(super::EXIT_INVALID)
}
