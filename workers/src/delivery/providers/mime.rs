//! The RFC 5322 message of an [`Email`], built with lettre's builder: From, Reply-To, To,
//! Subject (RFC 2047 encoded words where not ASCII), `Message-ID`, `List-Unsubscribe` (and
//! `List-Unsubscribe-Post` for one-click, RFC 8058), `Feedback-ID`, and a multipart/alternative
//! body, text first then HTML. The envelope sender is the job's `return_path`.

use std::borrow::Cow;

use base64::Engine;
use lettre::message::header::{ContentTransferEncoding, Header, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox as LettreMailbox, MultiPart};
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
    let body = MultiPart::alternative_plain_html(body(&email.text), body(&email.html));
    Ok(builder.multipart(body)?)
}

/// The longest line a part keeps as it is (RFC 2045's limit for quoted-printable lines, which
/// lettre's own choice applies to 7bit too); a longer one is encoded.
const LINE: usize = 76;

/// A part's body, transfer-encoded much as lettre's `Body::new` would choose — 7bit when it is
/// ASCII in short lines, else quoted-printable, or base64 when more than a third of its bytes
/// are not ASCII — but in linear time. lettre makes line ends CRLF by inserting each `\r` in
/// place (moving the rest of the text every time: a 15 KB text part of 300 lines moved
/// megabytes) and scans the text three times to choose; at thousands of messages a second that
/// was a third of the worker's CPU.
fn body(text: &str) -> Body {
    let text = crlf(text);
    let bytes = text.as_bytes();
    let ascii = bytes.is_ascii();
    if ascii && !has_long_line(bytes) {
        return Body::dangerous_pre_encoded(
            text.into_owned().into_bytes(),
            ContentTransferEncoding::SevenBit,
        );
    }
    // Bytes quoted-printable writes as three (line ends and the odd control character aside,
    // which text has few of).
    let escaped = if ascii {
        0
    } else {
        bytes.iter().filter(|&&b| b >= 0x80).count()
    };
    if escaped <= bytes.len() / 3 {
        Body::dangerous_pre_encoded(
            quoted_printable::encode(bytes),
            ContentTransferEncoding::QuotedPrintable,
        )
    } else {
        Body::dangerous_pre_encoded(base64_lines(bytes), ContentTransferEncoding::Base64)
    }
}

/// `text` with every line ending CRLF (borrowed when it already does).
fn crlf(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let bare = |i: usize| i == 0 || b[i - 1] != b'\r';
    if !memchr::memchr_iter(b'\n', b).any(bare) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    let mut from = 0;
    for i in memchr::memchr_iter(b'\n', b).filter(|&i| bare(i)) {
        out.push_str(&text[from..i]);
        out.push_str("\r\n");
        from = i + 1;
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

/// Whether a line of `b` (CRLF line ends) is longer than [`LINE`].
fn has_long_line(b: &[u8]) -> bool {
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', b) {
        if i.saturating_sub(1).saturating_sub(start) > LINE {
            return true;
        }
        start = i + 1;
    }
    b.len() - start > LINE
}

/// Base64 in lines of 76 characters (RFC 2045 §6.8), encoded in one call and then cut.
fn base64_lines(b: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(b);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / LINE * 2 + 2);
    for (n, line) in encoded.as_bytes().chunks(LINE).enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
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

    /// The transfer encoding of `text`'s `text/{kind}` part, and the part decoded.
    fn part(text: &str, kind: &str) -> (String, String) {
        use mail_parser::MessageParser;
        let headers = &text[text.find(&format!("Content-Type: text/{kind}")).unwrap()..];
        let encoding = headers
            .lines()
            .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
            .unwrap()
            .to_owned();
        let message = MessageParser::default().parse(text.as_bytes()).unwrap();
        let body = match kind {
            "plain" => message.body_text(0),
            _ => message.body_html(0),
        };
        (encoding, body.unwrap().into_owned())
    }

    #[test]
    fn each_part_gets_the_encoding_its_text_needs_and_decodes_to_that_text_with_crlf_line_ends() {
        let mut e = email();
        // Short ASCII lines: as they are. One 10 KB line of ASCII: quoted-printable. Mostly
        // non-ASCII (box drawing, as html2text draws tables): base64.
        e.text = "Hello\nworld.\n.leading dot\r\nend".into();
        e.html = format!(
            "<p>{}</p>",
            "<b>Lorem ipsum</b> dolor sit amet. ".repeat(300)
        );
        let text = String::from_utf8(formatted(&e).unwrap()).unwrap();
        assert!(!text.contains("\r\r"), "{text}");
        assert!(
            text.split("\r\n").all(|line| line.len() <= 998),
            "no line over 998"
        );
        let (encoding, plain) = part(&text, "plain");
        assert_eq!(encoding, "7bit");
        assert_eq!(
            plain.replace("\r\n", "\n"),
            "Hello\nworld.\n.leading dot\nend"
        );
        let (encoding, html) = part(&text, "html");
        assert_eq!(encoding, "quoted-printable");
        assert_eq!(html, e.html);

        e.text = "┌──────┬──────┐\n│ Zoë  │ café │\n└──────┴──────┘".repeat(40);
        let text = String::from_utf8(formatted(&e).unwrap()).unwrap();
        let (encoding, plain) = part(&text, "plain");
        assert_eq!(encoding, "base64");
        assert_eq!(plain.replace("\r\n", "\n"), e.text);
        assert!(text.split("\r\n").all(|line| line.len() <= 78));
    }

    #[test]
    fn line_ends_become_crlf_once() {
        assert_eq!(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf("\nx"), "\r\nx");
        assert!(matches!(crlf("a\r\nb"), Cow::Borrowed(_)));
        assert!(!has_long_line(&[b'x'; LINE]));
        assert!(has_long_line(&[b'x'; LINE + 1]));
        assert!(!has_long_line(
            format!("{}\r\n{}", "x".repeat(LINE), "y".repeat(LINE)).as_bytes()
        ));
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
