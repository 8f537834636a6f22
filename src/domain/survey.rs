//! The surveys a message can carry: their answers, the meaning of the ends
//! of each scale, and the question asked unless a template says otherwise.
//! What the mail, the answer page and the report all agree on.

use serde::Deserialize;

use crate::language::Words;

/// A one-click survey a step's message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Survey {
    Nps,
    Csat,
    Ces,
    Yesno,
}

impl Survey {
    /// The question a survey asks unless the template says otherwise, in
    /// English.
    pub fn default_question(self, product: &str) -> String {
        self.question_in(product, Words::for_tag(crate::language::DEFAULT))
    }

    /// [`Self::default_question`] in the language of `words`.
    pub fn question_in(self, product: &str, words: &Words) -> String {
        words.fill(
            &format!("survey.{}", self.as_str()),
            &[("product", product)],
        )
    }

    /// An answer's label in the language of `words`: the number itself on
    /// a scale, the word for yes or no.
    pub fn label_in(value: &'static str, words: &'static Words) -> &'static str {
        match value {
            "yes" => words.get("survey.yes"),
            "no" => words.get("survey.no"),
            number => number,
        }
    }

    /// The answers of a survey: (value, label), in order.
    pub fn answers(self) -> Vec<(String, String)> {
        self.choices()
            .iter()
            .map(|(value, label)| ((*value).to_owned(), (*label).to_owned()))
            .collect()
    }

    /// [`Self::answers`] without allocating: what a message renders.
    pub fn choices(self) -> &'static [(&'static str, &'static str)] {
        const ZERO_TO_TEN: [(&str, &str); 11] = [
            ("0", "0"),
            ("1", "1"),
            ("2", "2"),
            ("3", "3"),
            ("4", "4"),
            ("5", "5"),
            ("6", "6"),
            ("7", "7"),
            ("8", "8"),
            ("9", "9"),
            ("10", "10"),
        ];
        match self {
            Survey::Nps => &ZERO_TO_TEN,
            Survey::Csat => &ZERO_TO_TEN[1..=5],
            Survey::Ces => &ZERO_TO_TEN[1..=7],
            Survey::Yesno => &[("yes", "Yes"), ("no", "No")],
        }
    }

    /// What the ends of a survey's scale mean: the lowest and the highest
    /// answer with its meaning, shown beside the answers in the mail and on the
    /// answer page, in English. Yes/no needs none.
    pub fn scale_ends(self) -> Option<[(&'static str, &'static str); 2]> {
        self.scale_ends_in(Words::for_tag(crate::language::DEFAULT))
    }

    /// [`Self::scale_ends`] in the language of `words`.
    pub fn scale_ends_in(self, words: &'static Words) -> Option<[(&'static str, &'static str); 2]> {
        let (low, high) = match self {
            Survey::Nps => ("0", "10"),
            Survey::Csat => ("1", "5"),
            Survey::Ces => ("1", "7"),
            Survey::Yesno => return None,
        };
        let meaning = |end: &str| words.get(&format!("survey.{}_{end}", self.as_str()));
        Some([(low, meaning("low")), (high, meaning("high"))])
    }
}
