//! The RFC 5322 message of an [`Email`], built with lettre's builder: From, Reply-To, To,
//! Subject (RFC 2047 encoded words where not ASCII), `Message-ID`, `List-Unsubscribe` (and
//! `List-Unsubscribe-Post` for one-click, RFC 8058), `Feedback-ID`, and a multipart/alternative
//! body, text first then HTML. The envelope sender is the job's `return_path`.

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox as LettreMailbox, MultiPart};
use lettre::Address;

use crate::delivery::message::{Email, Mailbox};

/// The message could not be built from the email (an address that does not parse, say);
/// sending it again cannot help.
#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    /// An address (`field`) is not a valid mailbox.
    #[error("invalid {field} address {address:?}: {reason}")]
    Address {
        field: &'static str,
        address: String,
        reason: String,
    },
    /// lettre refused the message (a missing header).
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// Builds the message, its envelope from `return_path` to the recipient.
pub fn build(email: &Email) -> Result<lettre::Message, MimeError> {
    let to = mailbox("to", &email.to)?;
    let return_path = address("return_path", &email.return_path)?;
    let envelope = lettre::address::Envelope::new(Some(return_path), vec![to.email.clone()])
        .map_err(|e| MimeError::Address {
            field: "to",
            address: email.to.address.clone(),
            reason: e.to_string(),
        })?;
    let mut builder = lettre::Message::builder()
        .from(mailbox("from", &email.from)?)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}>", email.message_id)))
        .envelope(envelope);
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox("reply_to", reply_to)?);
    }
    if let Some(value) = list_unsubscribe(email) {
        builder = builder.header(ListUnsubscribe(value));
    }
    if email.unsubscribe_https.is_some() {
        builder = builder.header(ListUnsubscribePost);
    }
    if let Some(feedback_id) = &email.feedback_id {
        builder = builder.header(FeedbackId(feedback_id.clone()));
    }
    let body = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
    Ok(builder.multipart(body)?)
}

/// Checks the addresses an API will be given (from, to, reply-to, return path), so that a
/// bad one is refused here, permanently, rather than by the provider.
pub fn validate(email: &Email) -> Result<(), MimeError> {
    mailbox("from", &email.from)?;
    mailbox("to", &email.to)?;
    if let Some(reply_to) = &email.reply_to {
        mailbox("reply_to", reply_to)?;
    }
    address("return_path", &email.return_path)?;
    Ok(())
}

/// The message as sent (CRLF line ends), for APIs that take raw MIME (SES v2 `Raw`).
pub fn formatted(email: &Email) -> Result<Vec<u8>, MimeError> {
    Ok(build(email)?.formatted())
}

/// `<https://…>, <mailto:…>`, either alone, or `None` when the email has neither.
pub fn list_unsubscribe(email: &Email) -> Option<String> {
    let mailto = email.unsubscribe_mailto.as_deref().map(|m| {
        if m.starts_with("mailto:") {
            format!("<{m}>")
        } else {
            format!("<mailto:{m}>")
        }
    });
    let https = email.unsubscribe_https.as_deref().map(|u| format!("<{u}>"));
    // The https URL first: it is the one-click one (RFC 8058); readers that only mail take
    // the mailto.
    let parts: Vec<String> = https.into_iter().chain(mailto).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The headers an HTTP API must be told to add (its own fields carry From, To, Subject and
/// the bodies): `Message-ID`, `List-Unsubscribe`, `List-Unsubscribe-Post`, `Feedback-ID`.
pub fn extra_headers(email: &Email) -> Vec<(&'static str, String)> {
    let mut headers = vec![("Message-ID", format!("<{}>", email.message_id))];
    if let Some(value) = list_unsubscribe(email) {
        headers.push(("List-Unsubscribe", value));
    }
    if email.unsubscribe_https.is_some() {
        headers.push(("List-Unsubscribe-Post", ONE_CLICK.to_owned()));
    }
    if let Some(feedback_id) = &email.feedback_id {
        headers.push(("Feedback-ID", feedback_id.clone()));
    }
    headers
}

/// `Name <address>` with the name quoted where needed (for APIs that take one string).
pub fn display(m: &Mailbox) -> String {
    match mailbox("address", m) {
        Ok(parsed) => parsed.to_string(),
        Err(_) => m.address.clone(),
    }
}

fn mailbox(field: &'static str, m: &Mailbox) -> Result<LettreMailbox, MimeError> {
    let name = m.name.clone().filter(|n| !n.trim().is_empty());
    Ok(LettreMailbox::new(name, address(field, &m.address)?))
}

fn address(field: &'static str, a: &str) -> Result<Address, MimeError> {
    a.parse()
        .map_err(|e: lettre::address::AddressError| MimeError::Address {
            field,
            address: a.to_owned(),
            reason: e.to_string(),
        })
}

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), ONE_CLICK.to_owned())
    }
}

#[derive(Debug, Clone)]
struct FeedbackId(String);

impl Header for FeedbackId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Feedback-ID")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use uuid::Uuid;

    pub(crate) fn email() -> Email {
        let job_id = Uuid::new_v4();
        Email {
            job_id,
            from: Mailbox {
                name: Some("Zoë from Acme".into()),
                address: "news@acme.test".into(),
            },
            reply_to: None,
            to: Mailbox {
                name: None,
                address: "ada@example.org".into(),
            },
            subject: "Bonjour".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
            message_id: format!("{job_id}@acme.test"),
            return_path: format!("bounce+{job_id}@bounces.acme.test"),
            unsubscribe_mailto: None,
            unsubscribe_https: None,
            feedback_id: None,
        }
    }

    #[test]
    fn without_an_https_link_there_is_no_one_click_header() {
        let mut e = email();
        e.unsubscribe_mailto = Some("unsub@acme.test".into());
        let text = String::from_utf8(formatted(&e).unwrap()).unwrap();
        assert!(
            text.contains("List-Unsubscribe: <mailto:unsub@acme.test>\r\n"),
            "{text}"
        );
        assert!(!text.contains("List-Unsubscribe-Post"), "{text}");
        assert!(!text.contains("Feedback-ID"), "{text}");
    }

    #[test]
    fn the_envelope_sender_is_the_return_path() {
        let e = email();
        let m = build(&e).unwrap();
        let from = m.envelope().from().unwrap().to_string();
        assert_eq!(from, e.return_path);
    }

    #[test]
    fn a_bad_recipient_is_an_address_error() {
        let mut e = email();
        e.to.address = "not an address".into();
        assert!(matches!(
            build(&e),
            Err(MimeError::Address { field: "to", .. })
        ));
    }
}
