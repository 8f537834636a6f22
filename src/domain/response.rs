//! What a customer's answer is and where it came from: the kinds of
//! response tend records, and the sources of responses and suppressions,
//! as they are stored.

/// What a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// A tracked link followed.
    Click,
    /// A survey answered.
    Survey,
    /// A person's reply by mail.
    Reply,
    /// An out-of-office or other automatic answer.
    AutoReply,
    Bounce,
    /// Marked as spam at the mailbox provider.
    Complaint,
    /// A category left.
    Unsubscribe,
}

impl ResponseKind {
    /// As stored and shown (`tend responses`, the API).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::Survey => "survey",
            Self::Reply => "reply",
            Self::AutoReply => "auto_reply",
            Self::Bounce => "bounce",
            Self::Complaint => "complaint",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

/// Where a response or a suppression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A tracked link in a message.
    Link,
    /// The survey landing page.
    SurveyPage,
    /// RFC 8058 one-click from the mail client.
    OneClick,
    /// The preferences page's unsubscribe button.
    UnsubscribePage,
    /// The preferences page's form.
    PreferencesPage,
    /// Mail to the message's unsubscribe address (`List-Unsubscribe` mailto).
    Mailto,
    /// Inbound mail read from a mailbox.
    Imap,
    /// Inbound mail posted by a provider's webhook.
    Webhook,
    /// Inbound mail handed to `tend inbound` as a file.
    File,
    /// A bounce report.
    Bounce,
    /// A complaint (feedback loop) report.
    Complaint,
    /// The receiving server's answer while sending.
    Smtp,
    /// The person asked to be erased.
    Erasure,
}

impl Source {
    const ALL: [Self; 13] = [
        Self::Link,
        Self::SurveyPage,
        Self::OneClick,
        Self::UnsubscribePage,
        Self::PreferencesPage,
        Self::Mailto,
        Self::Imap,
        Self::Webhook,
        Self::File,
        Self::Bounce,
        Self::Complaint,
        Self::Smtp,
        Self::Erasure,
    ];

    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::SurveyPage => "survey page",
            Self::OneClick => "one-click",
            Self::UnsubscribePage => "unsubscribe page",
            Self::PreferencesPage => "preferences page",
            Self::Mailto => "mailto",
            Self::Imap => "imap",
            Self::Webhook => "webhook",
            Self::File => "file",
            Self::Bounce => "bounce",
            Self::Complaint => "complaint",
            Self::Smtp => "smtp",
            Self::Erasure => "erasure",
        }
    }

    /// The source a stored text names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a suppression from here is the customer's own choice, and
    /// so theirs to lift again. Bounces and complaints are not
    /// (`sql::LIFT_CHOSEN` spells the same list).
    pub fn chosen_by_customer(self) -> bool {
        matches!(
            self,
            Self::OneClick | Self::UnsubscribePage | Self::PreferencesPage | Self::Mailto
        )
    }
}

/// A response to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponse {
    pub kind: ResponseKind,
    pub value: Option<String>,
    pub comment: Option<String>,
    pub source: Source,
    /// Earlier responses of this kind to the message are replaced.
    pub replace: bool,
}

/// The reason a suppression records for an unsubscribe.
pub fn unsubscribed_reason(category: &str, source: Source) -> String {
    format!(
        "the customer unsubscribed from {category} ({})",
        source.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_reads_back_from_its_stored_text() {
        for source in Source::ALL {
            assert_eq!(Source::parse(source.as_str()), Some(source));
        }
        assert_eq!(Source::parse("carrier pigeon"), None);
    }

    #[test]
    fn only_the_customers_own_choices_are_theirs_to_lift() {
        let chosen: Vec<&str> = Source::ALL
            .into_iter()
            .filter(|s| s.chosen_by_customer())
            .map(Source::as_str)
            .collect();
        assert_eq!(
            chosen,
            [
                "one-click",
                "unsubscribe page",
                "preferences page",
                "mailto"
            ]
        );
    }
}
