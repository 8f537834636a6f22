//! The surveys a message can carry: their answers, the meaning of the ends
//! of each scale, and the question asked unless a template says otherwise.
//! What the mail, the answer page and the report all agree on.

use serde::Deserialize;

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
    /// The question a survey asks unless the template says otherwise.
    pub fn default_question(self, product: &str) -> String {
        match self {
            Survey::Nps => {
                format!("How likely are you to recommend {product} to a friend or colleague?")
            }
            Survey::Csat => format!("How satisfied are you with {product}?"),
            Survey::Ces => format!("How easy was it to get what you needed from {product}?"),
            Survey::Yesno => "Was this helpful?".to_owned(),
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
    /// answer page. Yes/no needs none.
    pub fn scale_ends(self) -> Option<[(&'static str, &'static str); 2]> {
        match self {
            Survey::Nps => Some([("0", "Not at all likely"), ("10", "Extremely likely")]),
            Survey::Csat => Some([("1", "Very dissatisfied"), ("5", "Very satisfied")]),
            Survey::Ces => Some([("1", "Very difficult"), ("7", "Very easy")]),
            Survey::Yesno => None,
        }
    }
}
