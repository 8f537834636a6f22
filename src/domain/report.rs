//! What came of the mail: the figures `tend report` shows, computed from
//! counts the store reads (pure, so every formula is tested without one).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use serde::Serialize;

use super::playbook::Survey;

/// One survey answer, as the weekly scores read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswer {
    pub received_at: DateTime<Utc>,
    /// `nps`, `csat`, `ces` or `yesno`.
    pub survey: String,
    pub value: String,
}

/// One week's survey scores: the week's first instant and the scores of
/// the answers received from then until the next week's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekScores {
    pub week_of: DateTime<Utc>,
    pub surveys: Surveys,
}

/// The scores of each week starting at `starts` (ascending; the last
/// runs to now), from `answers`, scored as the report scores them.
pub fn weekly_scores(answers: &[SurveyAnswer], starts: &[DateTime<Utc>]) -> Vec<WeekScores> {
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = starts.get(i + 1).copied();
            let mut tally: BTreeMap<(&str, &str), i64> = BTreeMap::new();
            for a in answers
                .iter()
                .filter(|a| a.received_at >= start && end.is_none_or(|e| a.received_at < e))
            {
                *tally
                    .entry((a.survey.as_str(), a.value.as_str()))
                    .or_default() += 1;
            }
            let counts = Counts {
                answers: tally
                    .into_iter()
                    .map(|((survey, value), n)| (survey.to_owned(), value.to_owned(), n))
                    .collect(),
                ..Counts::default()
            };
            WeekScores {
                week_of: start,
                surveys: Report::from_counts(&counts).surveys,
            }
        })
        .collect()
}

/// The counts a report is made of, as the store reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Messages by status.
    pub statuses: Vec<(String, i64)>,
    /// Per playbook step: (playbook, step, sent, messages with a person's
    /// response: an answer, a click or a reply).
    pub steps: Vec<(String, String, i64, i64)>,
    /// Survey answers: (survey kind, answer, how many).
    pub answers: Vec<(String, String, i64)>,
    /// Responses by kind.
    pub kinds: Vec<(String, i64)>,
}

/// The report (the JSON shape is a contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub messages: BTreeMap<String, i64>,
    pub playbooks: Vec<StepFigures>,
    pub surveys: Surveys,
    pub unsubscribes: i64,
    pub bounces: i64,
    pub replies: i64,
    pub complaints: i64,
    pub auto_replies: i64,
    pub clicks: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepFigures {
    pub playbook: String,
    pub step: String,
    pub sent: i64,
    pub responses: i64,
    /// Responses per message sent, 0 to 1 (null before anything was sent).
    pub response_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Surveys {
    pub nps: Nps,
    pub csat: Average,
    pub ces: Average,
    pub yesno: YesNo,
}

/// Net Promoter Score: % promoters (9–10) − % detractors (0–6), −100…100.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nps {
    pub responses: i64,
    pub score: Option<f64>,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Average {
    pub responses: i64,
    pub average: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct YesNo {
    pub yes: i64,
    pub no: i64,
}

/// What `tend report --by` rolls the figures up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Each company (a person without one is their own).
    Account,
    /// Each account owner (`[[team]]` id; "" for none).
    Owner,
    /// Each plan: the account's, or a person's own.
    Plan,
    /// Each lifecycle stage: the account's, or a person's own.
    Stage,
}

impl Grouping {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "account" => Ok(Self::Account),
            "owner" => Ok(Self::Owner),
            "plan" => Ok(Self::Plan),
            "stage" => Ok(Self::Stage),
            other => Err(format!(
                "--by {other:?} is not a grouping; use account, owner, plan or stage"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Owner => "owner",
            Self::Plan => "plan",
            Self::Stage => "stage",
        }
    }

    pub const ALL: [Self; 4] = [Self::Account, Self::Owner, Self::Plan, Self::Stage];
}

/// One group of a roll-up (`tend report --by`; the JSON shape is a
/// contract): what was sent to its people and what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    /// The account id, owner id, plan or stage ("" when there is none).
    pub group: String,
    pub sent: i64,
    /// Messages a person answered (a survey answer, a click, a reply).
    pub responses: i64,
    pub response_rate: Option<f64>,
    pub nps: Nps,
    pub csat: Average,
    pub ces: Average,
    pub replies: i64,
    pub unsubscribes: i64,
    pub bounces: i64,
}

impl GroupFigures {
    /// The figures of one group from its counts (`steps` holds one row:
    /// its sent and answered messages).
    pub fn from_counts(group: String, counts: &Counts) -> Self {
        let report = Report::from_counts(counts);
        let sent: i64 = report.playbooks.iter().map(|s| s.sent).sum();
        let responses: i64 = report.playbooks.iter().map(|s| s.responses).sum();
        Self {
            group,
            sent,
            responses,
            response_rate: (sent > 0)
                .then(|| (responses as f64 / sent as f64 * 1000.0).round() / 1000.0),
            nps: report.surveys.nps,
            csat: report.surveys.csat,
            ces: report.surveys.ces,
            replies: report.replies,
            unsubscribes: report.unsubscribes,
            bounces: report.bounces,
        }
    }
}

/// One decimal, as people read scores.
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Report {
    pub fn from_counts(counts: &Counts) -> Self {
        let kind = |name: &str| {
            counts
                .kinds
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, n)| n)
                .sum()
        };
        let answers_of = |survey: Survey| {
            counts
                .answers
                .iter()
                .filter(move |(s, _, _)| Survey::parse(s) == Some(survey))
                .map(|(_, value, n)| (value.parse::<i64>().ok(), value.as_str(), *n))
        };
        let mut nps = Nps {
            responses: 0,
            score: None,
            promoters: 0,
            passives: 0,
            detractors: 0,
        };
        for (score, _, n) in answers_of(Survey::Nps) {
            match score {
                Some(9..=10) => nps.promoters += n,
                Some(7..=8) => nps.passives += n,
                Some(0..=6) => nps.detractors += n,
                _ => continue,
            }
            nps.responses += n;
        }
        if nps.responses > 0 {
            let share = |k: i64| k as f64 * 100.0 / nps.responses as f64;
            nps.score = Some(round(share(nps.promoters) - share(nps.detractors)));
        }
        let average = |survey| {
            let (mut sum, mut responses) = (0i64, 0i64);
            for (score, _, n) in answers_of(survey) {
                if let Some(score) = score {
                    sum += score * n;
                    responses += n;
                }
            }
            Average {
                responses,
                average: (responses > 0).then(|| round(sum as f64 / responses as f64)),
            }
        };
        let yes_no = |answer: &str| {
            answers_of(Survey::Yesno)
                .filter(|(_, v, _)| *v == answer)
                .map(|(_, _, n)| n)
                .sum()
        };
        Self {
            messages: counts.statuses.iter().cloned().collect(),
            playbooks: counts
                .steps
                .iter()
                .map(|(playbook, step, sent, responses)| StepFigures {
                    playbook: playbook.clone(),
                    step: step.clone(),
                    sent: *sent,
                    responses: *responses,
                    response_rate: (*sent > 0)
                        .then(|| (*responses as f64 / *sent as f64 * 1000.0).round() / 1000.0),
                })
                .collect(),
            surveys: Surveys {
                nps,
                csat: average(Survey::Csat),
                ces: average(Survey::Ces),
                yesno: YesNo {
                    yes: yes_no("yes"),
                    no: yes_no("no"),
                },
            },
            unsubscribes: kind("unsubscribe"),
            bounces: kind("bounce"),
            replies: kind("reply"),
            complaints: kind("complaint"),
            auto_replies: kind("auto_reply"),
            clicks: kind("click"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(survey: &str, values: &[(&str, i64)]) -> Vec<(String, String, i64)> {
        values
            .iter()
            .map(|(v, n)| (survey.to_owned(), (*v).to_owned(), *n))
            .collect()
    }

    #[test]
    fn nps_is_promoters_minus_detractors() {
        // 5 promoters, 3 passives, 2 detractors of 10: 50 % − 20 % = 30.
        let counts = Counts {
            answers: answers(
                "nps",
                &[("10", 2), ("9", 3), ("8", 2), ("7", 1), ("6", 1), ("0", 1)],
            ),
            ..Counts::default()
        };
        let nps = Report::from_counts(&counts).surveys.nps;
        assert_eq!((nps.responses, nps.score), (10, Some(30.0)));
        assert_eq!((nps.promoters, nps.passives, nps.detractors), (5, 3, 2));
        let none = Report::from_counts(&Counts::default()).surveys.nps;
        assert_eq!((none.responses, none.score), (0, None));
    }

    #[test]
    fn averages_counts_and_rates() {
        let mut counts = Counts {
            answers: answers("csat", &[("5", 2), ("4", 1)]),
            kinds: vec![
                ("reply".into(), 4),
                ("bounce".into(), 1),
                ("auto_reply".into(), 7),
            ],
            steps: vec![
                ("onboarding".into(), "welcome".into(), 3, 1),
                ("tips".into(), "api".into(), 0, 0),
            ],
            statuses: vec![("sent".into(), 3), ("planned".into(), 2)],
        };
        counts.answers.extend(answers("ces", &[("2", 1), ("3", 1)]));
        counts
            .answers
            .extend(answers("yesno", &[("yes", 4), ("no", 1)]));
        let report = Report::from_counts(&counts);
        assert_eq!(report.surveys.csat.average, Some(4.7));
        assert_eq!(report.surveys.ces.average, Some(2.5));
        assert_eq!((report.surveys.yesno.yes, report.surveys.yesno.no), (4, 1));
        assert_eq!(
            (report.replies, report.bounces, report.auto_replies),
            (4, 1, 7)
        );
        assert_eq!(report.playbooks[0].response_rate, Some(0.333));
        assert_eq!(report.playbooks[1].response_rate, None);
        assert_eq!(report.messages["sent"], 3);
    }
}
