//! What a raw inbound message says, pure (no jobs, no HTTP): an RFC 3464 delivery status
//! notification, an RFC 5965 feedback (ARF) report, or any other mail — with what a bounce
//! needs (hard or soft, the diagnostic) and what names the original message (its
//! `Message-ID` and return path, from the attached original).

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Why a body is not a message at all (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is empty: expected a raw RFC 5322 message")]
    Empty,
    #[error("the body is not an RFC 5322 message (no header fields)")]
    NotAMessage,
}

/// How a message reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A `multipart/report; report-type=delivery-status` with a failure (or a delay) for a
    /// recipient: hard for a `5.x.x` status, soft for `4.x.x`.
    Dsn {
        hard: bool,
        diagnostic: String,
        /// `Final-Recipient` (or `Original-Recipient`), as the reporting MTA wrote it.
        recipient: Option<String>,
    },
    /// A delivery status notification that reports no failure (delivered, relayed,
    /// expanded): nothing to record.
    DsnSuccess,
    /// A `multipart/report; report-type=feedback-report` (a feedback loop's complaint).
    Complaint {
        /// `Feedback-Type` (abuse, fraud, virus, other, …).
        feedback_type: String,
    },
    /// Any other mail: a bounce that does not follow RFC 3464 when it comes to a bounce
    /// address (hard only when a `5.x.x` or `55x` code is found), a reply to the mailto
    /// unsubscribe, or mail we do not act on.
    Plain {
        /// A `5.x.x` enhanced status or a `55x` reply code is in the text.
        hard: bool,
        diagnostic: String,
    },
}

/// The original message a report is about (the part it attaches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// The return path (`Return-Path` of the attached original, or an ARF report's
    /// `Original-Mail-From`), without angle brackets.
    pub return_path: Option<String>,
}

/// A parsed inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub kind: Kind,
    pub original: Original,
    /// Addresses the message was delivered to, as its headers say, in the order they are
    /// trusted: `Delivered-To`, `X-Original-To`, `To`.
    pub recipients: Vec<String>,
}

/// At most this many characters of a diagnostic are kept.
const DIAGNOSTIC_MAX: usize = 500;

/// Reads `raw`.
pub fn parse(raw: &[u8]) -> Result<Inbound, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if !starts_with_a_field(raw) {
        return Err(ParseError::NotAMessage);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let mut recipients = Vec::new();
    for name in ["Delivered-To", "X-Original-To"] {
        for (n, v) in message.headers_raw() {
            if n.eq_ignore_ascii_case(name) {
                recipients.push(bare_address(v));
            }
        }
    }
    if let Some(to) = message.to() {
        recipients.extend(to.iter().filter_map(|a| a.address().map(str::to_owned)));
    }
    recipients.retain(|r| !r.is_empty());

    let report_type = message
        .content_type()
        .filter(|c| {
            c.ctype().eq_ignore_ascii_case("multipart")
                && c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|c| c.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let mut original = original_of(&message);
    let kind = match report_type.as_deref() {
        Some("delivery-status") => dsn(&message).unwrap_or_else(|| plain(&message)),
        Some("feedback-report") => {
            let fields = part_fields(&message, "feedback-report").unwrap_or_default();
            let field = |name: &str| {
                fields
                    .iter()
                    .flatten()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            if original.return_path.is_none() {
                original.return_path = field("Original-Mail-From").map(|v| bare_address(&v));
            }
            Kind::Complaint {
                feedback_type: field("Feedback-Type")
                    .unwrap_or_else(|| "abuse".to_owned())
                    .to_ascii_lowercase(),
            }
        }
        _ => plain(&message),
    };
    Ok(Inbound {
        kind,
        original,
        recipients,
    })
}

/// Whether `raw` opens with a header field (`Name:`, RFC 5322 field-name characters), after
/// an mbox `From ` line if there is one.
fn starts_with_a_field(raw: &[u8]) -> bool {
    let mut lines = raw.split(|b| *b == b'\n');
    let mut first = lines.next().unwrap_or_default();
    if first.starts_with(b"From ") {
        first = lines.next().unwrap_or_default();
    }
    match first.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => first[..colon].iter().all(|b| (33..=126).contains(b)),
        _ => false,
    }
}

/// `<a@b>` or `rfc822; a@b` → `a@b`.
pub fn bare_address(v: &str) -> String {
    let v = v.trim();
    let v = match v.split_once(';') {
        Some((kind, rest)) if !kind.contains('@') => rest.trim(),
        _ => v,
    };
    v.trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// The header fields of the first part of type `message/<subtype>` (or
/// `message/global-<subtype>`), in groups separated by blank lines (RFC 3464: the
/// per-message fields, then one group per recipient).
fn part_fields(message: &Message<'_>, subtype: &str) -> Option<Vec<Vec<(String, String)>>> {
    let global = format!("global-{subtype}");
    let part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case(subtype) || s.eq_ignore_ascii_case(&global)
                })
        })
    })?;
    Some(field_groups(&String::from_utf8_lossy(part.contents())))
}

/// RFC 822-style fields in blank-line separated groups, folded lines unfolded.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = group.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// A DSN's verdict from its `message/delivery-status` part: the first recipient whose
/// action failed or was delayed (or whose status is not 2.x.x). `None` when the part is
/// missing or names no status (then it is read as plain text).
fn dsn(message: &Message<'_>) -> Option<Kind> {
    let groups = part_fields(message, "delivery-status")?;
    let mut any_status = false;
    for group in groups.iter() {
        let field = |name: &str| {
            group
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let Some(status) = field("Status") else {
            continue;
        };
        any_status = true;
        let status = status.split_whitespace().next().unwrap_or_default();
        let class = status.chars().next();
        let action = field("Action").unwrap_or_default().to_ascii_lowercase();
        let failed = matches!(class, Some('4' | '5'))
            || action.starts_with("failed")
            || action.starts_with("delayed");
        if !failed {
            continue;
        }
        let diagnostic = field("Diagnostic-Code")
            .map(|d| match d.split_once(';') {
                Some((kind, rest)) if !kind.contains(' ') => rest.trim(),
                _ => d,
            })
            .filter(|d| !d.is_empty())
            .map_or_else(|| format!("status {status}"), str::to_owned);
        let recipient = field("Final-Recipient")
            .or_else(|| field("Original-Recipient"))
            .map(bare_address);
        return Some(Kind::Dsn {
            // A failure without a 4.x.x status counts as permanent only with a 5.x.x one.
            hard: class == Some('5'),
            diagnostic: clip(&diagnostic),
            recipient,
        });
    }
    any_status.then_some(Kind::DsnSuccess)
}

/// A non-RFC 3464 message read as a bounce: hard when its text has a `5.x.x` enhanced
/// status code or a `55x` reply code; the diagnostic is the line that has the code (or the
/// subject).
fn plain(message: &Message<'_>) -> Kind {
    let mut text = String::new();
    for part in message.parts.iter() {
        if let PartType::Text(t) = &part.body {
            text.push_str(t);
            text.push('\n');
        }
    }
    let line = text.lines().find(|l| permanent_code(l));
    let diagnostic = line
        .map(str::trim)
        .or_else(|| message.subject())
        .unwrap_or("bounce without a diagnostic");
    Kind::Plain {
        hard: line.is_some(),
        diagnostic: clip(diagnostic),
    }
}

/// Whether `line` has a `5.x.x` enhanced status code (RFC 3463) or a `55x` SMTP reply code,
/// as a word of its own.
pub fn permanent_code(line: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|w| w.trim_end_matches('.'))
        .any(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            let enhanced = parts.len() == 3
                && parts[0] == "5"
                && parts[1..]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
            let reply = w.len() == 3 && w.starts_with("55") && w.as_bytes()[2].is_ascii_digit();
            enhanced || reply
        })
}

/// The attached original (a `message/rfc822` part, or `text/rfc822-headers`): its
/// `Message-ID` and `Return-Path`.
fn original_of(message: &Message<'_>) -> Original {
    for part in message.parts.iter().skip(1) {
        let headers_only;
        let original: &Message<'_> = match &part.body {
            PartType::Message(m) => m,
            _ if part.content_type().is_some_and(|c| {
                c.ctype().eq_ignore_ascii_case("text")
                    && c.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
            }) =>
            {
                match MessageParser::default().parse_headers(part.contents()) {
                    Some(m) => {
                        headers_only = m;
                        &headers_only
                    }
                    None => continue,
                }
            }
            _ => continue,
        };
        let return_path = original
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case("Return-Path"))
            .map(|(_, v)| bare_address(v))
            .filter(|v| !v.is_empty());
        return Original {
            message_id: original.message_id().map(str::to_owned),
            return_path,
        };
    }
    Original::default()
}

fn clip(s: &str) -> String {
    s.chars().take(DIAGNOSTIC_MAX).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A DSN as Postfix writes it, for `status` (with its diagnostic) to `to`.
    fn postfix_dsn(to: &str, status: &str, diagnostic: &str) -> String {
        format!(
            "Return-Path: <>\r\nDelivered-To: {to}\r\n\
             From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nTo: {to}\r\n\
             Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\
             \tboundary=\"4F1A/mx.example.org\"\r\n\
             Message-Id: <20300101.4F1A@mx.example.org>\r\n\r\n\
             This is a MIME-encapsulated message.\r\n\r\n\
             --4F1A/mx.example.org\r\nContent-Description: Notification\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n\
             This is the mail system at host mx.example.org.\r\n\r\n\
             <gone@example.org>: host mx.example.org said: {diagnostic}\r\n\r\n\
             --4F1A/mx.example.org\r\nContent-Description: Delivery report\r\n\
             Content-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.example.org\r\nX-Postfix-Queue-ID: 4F1A\r\n\
             Arrival-Date: Tue,  1 Jan 2030 00:00:00 +0000 (UTC)\r\n\r\n\
             Final-Recipient: rfc822; gone@example.org\r\n\
             Original-Recipient: rfc822;gone@example.org\r\nAction: {action}\r\n\
             Status: {status}\r\nRemote-MTA: dns; mx.example.org\r\n\
             Diagnostic-Code: smtp; {diagnostic}\r\n\r\n\
             --4F1A/mx.example.org\r\nContent-Description: Undelivered Message Headers\r\n\
             Content-Type: text/rfc822-headers\r\n\r\n\
             Return-Path: <{to}>\r\nMessage-ID: <job@acme.test>\r\nSubject: Hello\r\n\r\n\
             --4F1A/mx.example.org--\r\n",
            action = if status.starts_with('2') {
                "delivered"
            } else if status.starts_with('4') {
                "delayed"
            } else {
                "failed"
            }
        )
    }

    #[test]
    fn a_permanent_dsn_is_a_hard_bounce_with_its_diagnostic_and_original() {
        let raw = postfix_dsn(
            "bounce+ab.cd@bounces.acme.test",
            "5.1.1",
            "550 5.1.1 <gone@example.org>: Recipient address\r\n    rejected: User unknown",
        );
        let m = parse(raw.as_bytes()).unwrap();
        assert_eq!(
            m.kind,
            Kind::Dsn {
                hard: true,
                diagnostic:
                    "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown".into(),
                recipient: Some("gone@example.org".into()),
            }
        );
        assert_eq!(m.original.message_id.as_deref(), Some("job@acme.test"));
        assert_eq!(
            m.original.return_path.as_deref(),
            Some("bounce+ab.cd@bounces.acme.test")
        );
        assert_eq!(m.recipients[0], "bounce+ab.cd@bounces.acme.test");
    }

    #[test]
    fn a_transient_dsn_is_soft_and_a_success_is_no_bounce() {
        let raw = postfix_dsn("b@x", "4.2.2", "452 4.2.2 Mailbox full");
        assert!(matches!(
            parse(raw.as_bytes()).unwrap().kind,
            Kind::Dsn { hard: false, ref diagnostic, .. } if diagnostic == "452 4.2.2 Mailbox full"
        ));
        let raw = postfix_dsn("b@x", "2.0.0", "250 2.0.0 Ok");
        assert_eq!(parse(raw.as_bytes()).unwrap().kind, Kind::DsnSuccess);
    }

    #[test]
    fn a_plain_bounce_is_hard_only_with_a_permanent_code() {
        let raw =
            "From: postmaster@old.example\r\nTo: bounce+a.b@x\r\nSubject: failure notice\r\n\r\n\
                   Sorry, we were unable to deliver your message.\r\n\
                   Remote host said: 550 No such mailbox here\r\n";
        assert_eq!(
            parse(raw.as_bytes()).unwrap().kind,
            Kind::Plain {
                hard: true,
                diagnostic: "Remote host said: 550 No such mailbox here".into()
            }
        );
        let raw =
            "From: postmaster@old.example\r\nTo: bounce+a.b@x\r\nSubject: Delayed Mail\r\n\r\n\
                   Still trying (421 try again later, 4.4.1 on 5.5 hosts)\r\n";
        assert_eq!(
            parse(raw.as_bytes()).unwrap().kind,
            Kind::Plain {
                hard: false,
                diagnostic: "Delayed Mail".into()
            }
        );
        assert!(permanent_code("status 5.1.10."));
        assert!(permanent_code("<x>: 554 rejected"));
        assert!(!permanent_code("5.5 hosts, 5550 items, 1.5.1.1, 5.1"));
    }

    #[test]
    fn an_arf_report_is_a_complaint_naming_its_original() {
        let raw = "From: fbl@isp.example\r\nTo: fbl@bounces.acme.test\r\nSubject: Abuse report\r\n\
                   MIME-Version: 1.0\r\n\
                   Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\r\n\
                   --arf\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
                   --arf\r\nContent-Type: message/feedback-report\r\n\r\n\
                   Feedback-Type: abuse\r\nUser-Agent: ISP-FBL/1.0\r\nVersion: 1\r\n\
                   Original-Mail-From: <bounce+1.2@bounces.acme.test>\r\n\r\n\
                   --arf\r\nContent-Type: message/rfc822\r\n\r\n\
                   From: news@acme.test\r\nTo: ada@isp.example\r\nSubject: Hello\r\n\
                   Message-ID: <0190aaaa-0000-7000-8000-000000000001@acme.test>\r\n\r\nHi\r\n\
                   --arf--\r\n";
        let m = parse(raw.as_bytes()).unwrap();
        assert_eq!(
            m.kind,
            Kind::Complaint {
                feedback_type: "abuse".into()
            }
        );
        assert_eq!(
            m.original.message_id.as_deref(),
            Some("0190aaaa-0000-7000-8000-000000000001@acme.test")
        );
        assert_eq!(
            m.original.return_path.as_deref(),
            Some("bounce+1.2@bounces.acme.test"),
            "from Original-Mail-From when the original has no Return-Path"
        );
    }

    #[test]
    fn a_body_that_is_no_message_is_refused() {
        assert_eq!(parse(b"  \r\n").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert!(parse(b"\x00\x01\x02 just bytes").is_err());
    }

    #[test]
    fn addresses_lose_their_brackets_and_address_types() {
        assert_eq!(bare_address(" <a@b> "), "a@b");
        assert_eq!(bare_address("rfc822; a@b"), "a@b");
        assert_eq!(bare_address("a@b"), "a@b");
    }
}
