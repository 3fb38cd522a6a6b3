//! Email providers against real or faithful counterparts: SMTP against Postfix's smtp-sink
//! (the received mail parsed with mail-parser, independently of lettre), the HTTP APIs against
//! the fakes of `mauntic_tests::fakes` (auth checked, errors and throttling as documented).
//! No database: these test `workers::delivery::providers` on their own.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mauntic_tests::fakes::{Failure, FakeMailgun, FakePostmark, FakeSendGrid, FakeSes};
use mauntic_tests::smtp_sink::SmtpSink;
use serde_json::json;
use uuid::Uuid;
use workers::delivery::message::{Email, Mailbox, Message};
use workers::delivery::provider::{Provider, SendError};
use workers::delivery::providers::build;

const SUBJECT: &str = "Café ☕ — nouveautés d’automne pour Zoë";
const TEXT: &str = "Bonjour Ada,\n\nNos nouveautés d’automne sont là.\n";
const HTML: &str = "<p>Bonjour <b>Ada</b>, nos nouveautés d’automne sont là.</p>";

/// A fully dressed email: non-ASCII subject and display names, Reply-To, both unsubscribe
/// links, a feedback id.
fn email() -> Email {
    let job_id = Uuid::new_v4();
    Email {
        job_id,
        from: Mailbox {
            name: Some("Zoë Müller, Acme".into()),
            address: "news@acme.test".into(),
        },
        reply_to: Some(Mailbox {
            name: Some("Acme Support".into()),
            address: "support@acme.test".into(),
        }),
        to: Mailbox {
            name: Some("Ada Lovelace".into()),
            address: format!("ada+{}@example.org", &job_id.simple().to_string()[..8]),
        },
        subject: SUBJECT.into(),
        html: HTML.into(),
        text: TEXT.into(),
        message_id: format!("{job_id}@acme.test"),
        return_path: format!("bounce+{job_id}@bounces.acme.test"),
        unsubscribe_mailto: Some(format!("mailto:unsubscribe+{job_id}@acme.test")),
        unsubscribe_https: Some(format!("https://acme.test/u/{job_id}")),
        feedback_id: Some("spring-sale:acme:mauntic".into()),
    }
}

fn list_unsubscribe(e: &Email) -> String {
    format!(
        "<{}>, <{}>",
        e.unsubscribe_https.as_deref().unwrap(),
        e.unsubscribe_mailto.as_deref().unwrap()
    )
}

/// Every header of the brief, and the two parts in order, as a mail reader sees them.
fn assert_mime(raw: &[u8], e: &Email) {
    let m = MessageParser::default()
        .parse(raw)
        .expect("a parseable message");
    let from = m.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("Zoë Müller, Acme"));
    assert_eq!(from.address(), Some("news@acme.test"));
    let reply_to = m.reply_to().and_then(|a| a.first()).unwrap();
    assert_eq!(reply_to.address(), Some("support@acme.test"));
    let to = m.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.name(), Some("Ada Lovelace"));
    assert_eq!(to.address(), Some(e.to.address.as_str()));
    assert_eq!(m.subject(), Some(SUBJECT));
    assert_eq!(m.message_id(), Some(e.message_id.as_str()));
    let raw_header = |name: &str| m.header_raw(name).map(|v| v.trim().replace("\r\n", ""));
    assert_eq!(
        raw_header("List-Unsubscribe").map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
        Some(list_unsubscribe(e))
    );
    assert_eq!(
        raw_header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        raw_header("Feedback-ID").as_deref(),
        Some("spring-sale:acme:mauntic")
    );
    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let bodies: Vec<(&str, String)> = m
        .parts
        .iter()
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(("text", t.replace("\r\n", "\n"))),
            PartType::Html(h) => Some(("html", h.replace("\r\n", "\n"))),
            _ => None,
        })
        .collect();
    assert_eq!(
        bodies,
        vec![("text", TEXT.to_owned()), ("html", HTML.to_owned())],
        "text first, then HTML"
    );
}

async fn send(provider: &dyn Provider, e: &Email) -> Result<String, SendError> {
    provider
        .send(&Message::Email(e.clone()))
        .await
        .map(|s| s.provider_message_id)
}

fn smtp_config(port: u16, timeout_secs: u64) -> serde_json::Value {
    json!({"host": "127.0.0.1", "port": port, "security": "none", "pool_size": 2, "timeout_secs": timeout_secs})
}

#[tokio::test]
async fn smtp_delivers_every_header_both_parts_and_the_jobs_envelope_sender() {
    let sink = SmtpSink::start();
    let provider = build("smtp", &smtp_config(sink.port(), 5)).unwrap();
    let e = email();

    let id = send(provider.as_ref(), &e).await.unwrap();

    let dump = sink
        .wait_for_message(&e.to.address, Duration::from_secs(5))
        .await;
    assert_mime(dump.as_bytes(), &e);
    // smtp-sink records the envelope as X-Mail-Args (MAIL FROM) and X-Rcpt-Args (RCPT TO).
    let mail_from = dump
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: "))
        .unwrap();
    assert!(
        mail_from.contains(&e.return_path),
        "MAIL FROM is the return path: {mail_from}"
    );
    // smtp-sink's 250 names no queue id ("2.0.0 Ok"): the Message-ID stands in for it.
    assert_eq!(id, e.message_id);
}

#[tokio::test]
async fn smtp_sends_several_messages_through_its_pool() {
    let sink = SmtpSink::start();
    let provider = build("smtp", &smtp_config(sink.port(), 5)).unwrap();
    let emails: Vec<Email> = (0..4).map(|_| email()).collect();

    let sends = emails.iter().map(|e| send(provider.as_ref(), e));
    let results = futures::future::join_all(sends).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for e in &emails {
        sink.wait_for_message(&e.to.address, Duration::from_secs(5))
            .await;
    }
}

/// `smtp-sink` that rejects `RCPT` with `flag` (`-f`: 5xx, `-r`: 4xx); killed when dropped.
struct RejectingSink {
    port: u16,
    child: Child,
}

impl RejectingSink {
    fn start(flag: &str) -> RejectingSink {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut command = Command::new("/usr/sbin/smtp-sink");
            if nix_is_root() {
                command.args(["-u", "root"]);
            }
            let mut child = command
                .args([flag, "RCPT", &format!("127.0.0.1:{port}"), "16"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut greeting = String::new();
                    let _ = BufReader::new(&s).read_line(&mut greeting);
                    let _ = s.write_all(b"QUIT\r\n");
                    if greeting.starts_with("220 ") {
                        return RejectingSink { port, child };
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("smtp-sink {flag} RCPT did not start");
    }
}

impl Drop for RejectingSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[tokio::test]
async fn smtp_hard_rejections_are_permanent_and_soft_ones_transient() {
    let hard = RejectingSink::start("-f");
    let soft = RejectingSink::start("-r");

    let permanent = send(
        build("smtp", &smtp_config(hard.port, 5)).unwrap().as_ref(),
        &email(),
    )
    .await;
    let transient = send(
        build("smtp", &smtp_config(soft.port, 5)).unwrap().as_ref(),
        &email(),
    )
    .await;

    assert!(
        matches!(&permanent, Err(SendError::Permanent { reason }) if reason.contains("5.3.0 Error: command failed")),
        "{permanent:?}"
    );
    assert!(
        matches!(&transient, Err(SendError::Transient { reason, .. }) if reason.contains("4.3.0 Error: command failed")),
        "{transient:?}"
    );
}

/// A scripted SMTP server: greets, answers EHLO, MAIL, RCPT and DATA, reads the message up to
/// its final dot, then answers it with `after_dot` (or never, when `None`); `QUIT` ends the
/// session. Counts the messages it read to the end. `close_after` messages, it closes the
/// connection without a word (a server dropping a client that sat idle). A `pipelining` server
/// announces PIPELINING and holds its replies to MAIL and RCPT until DATA has arrived, so a
/// client that waits for each reply before its next command never gets one.
async fn scripted_smtp(
    after_dot: Option<&'static str>,
    close_after: Option<usize>,
    pipelining: bool,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let messages = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = messages.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = TokioBufReader::new(read).lines();
                write.write_all(b"220 scripted ESMTP\r\n").await.unwrap();
                let mut on_connection = 0;
                let mut in_data = false;
                let mut held = Vec::new();
                let mut held_replies = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            counted.fetch_add(1, Ordering::SeqCst);
                            on_connection += 1;
                            match after_dot {
                                Some(reply) => write.write_all(reply.as_bytes()).await.unwrap(),
                                None => held.push(line),
                            }
                            if close_after == Some(on_connection) {
                                return;
                            }
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") && pipelining {
                        b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("EHLO") {
                        b"250-scripted\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else if pipelining && (upper.starts_with("MAIL") || upper.starts_with("RCPT"))
                    {
                        held_replies.extend_from_slice(b"250 ok\r\n");
                        continue;
                    } else {
                        b"250 ok\r\n"
                    };
                    let mut out = std::mem::take(&mut held_replies);
                    out.extend_from_slice(reply);
                    if write.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, messages)
}

#[tokio::test]
async fn smtp_failures_before_the_final_dot_are_transient_and_only_a_silent_reply_is_unknown() {
    // Nobody listens on a port just released.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A server that accepts and never greets: nothing can have been sent.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    // A server that reads the whole message and never answers it: it may have taken it.
    let (mute_port, mute_read) = scripted_smtp(None, None, false).await;

    let refused = send(
        build("smtp", &smtp_config(closed, 2)).unwrap().as_ref(),
        &email(),
    )
    .await;
    let started = Instant::now();
    let no_greeting = send(
        build("smtp", &smtp_config(silent_port, 1))
            .unwrap()
            .as_ref(),
        &email(),
    )
    .await;
    let no_reply = send(
        build("smtp", &smtp_config(mute_port, 1)).unwrap().as_ref(),
        &email(),
    )
    .await;

    assert!(
        matches!(refused, Err(SendError::Transient { .. })),
        "{refused:?}"
    );
    assert!(
        matches!(&no_greeting, Err(SendError::Transient { reason, .. }) if reason.contains("greeting")),
        "{no_greeting:?}"
    );
    // The server read the message: not retried automatically.
    assert_eq!(mute_read.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        matches!(no_reply, Err(SendError::Unknown { .. })),
        "{no_reply:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_pooled_smtp_connection_the_server_closed_is_replaced_without_losing_the_message() {
    // With a server that answers each command in turn, and with one that pipelines (and
    // answers nothing before DATA: a client that waited for each reply would time out).
    for pipelining in [false, true] {
        // The server takes one message per connection, then hangs up without a word.
        let (port, taken) =
            scripted_smtp(Some("250 2.0.0 Ok: queued as Q1\r\n"), Some(1), pipelining).await;
        let provider = build("smtp", &smtp_config(port, 5)).unwrap();

        for n in 1..=3 {
            let sent = send(provider.as_ref(), &email()).await;
            assert_eq!(
                sent.as_deref().ok(),
                Some("Q1"),
                "pipelining {pipelining}, message {n}: {sent:?}"
            );
        }

        // Each message once: the closed connection was noticed before any message was
        // written.
        assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}

async fn assert_error_mapping(provider: &dyn Provider, fail_next: impl Fn(Failure)) {
    fail_next(Failure::Throttle {
        retry_after: Some(Duration::from_secs(7)),
    });
    let throttled = send(provider, &email()).await;
    assert!(
        matches!(&throttled, Err(SendError::Transient { retry_after: Some(d), .. }) if *d == Duration::from_secs(7)),
        "{throttled:?}"
    );

    fail_next(Failure::ServerError);
    let failed = send(provider, &email()).await;
    assert!(
        matches!(&failed, Err(SendError::Transient { .. })),
        "{failed:?}"
    );

    fail_next(Failure::Rejected {
        message: "Email address is not verified: news@acme.test".into(),
    });
    let rejected = send(provider, &email()).await;
    assert!(
        matches!(&rejected, Err(SendError::Permanent { reason }) if reason.contains("Email address is not verified: news@acme.test")),
        "{rejected:?}"
    );

    // And the next one goes through again.
    assert!(send(provider, &email()).await.is_ok());
}

#[tokio::test]
async fn ses_sends_the_raw_mime_signed_with_sigv4_and_returns_its_message_id() {
    let ses = FakeSes::start().await;
    let provider = build("ses", &ses.config()).unwrap();
    let e = email();

    let id = send(provider.as_ref(), &e).await.unwrap();

    assert!(id.starts_with("0102018c-fake-ses-"), "{id}");
    let received = ses.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].status, 200, "the fake verified the signature");
    assert_eq!(received[0].uri, "/v2/email/outbound-emails");
    let auth = received[0].header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFAKESES/")
            && auth.contains("/eu-west-1/ses/aws4_request"),
        "{auth}"
    );
    let body = received[0].json();
    assert_eq!(
        body["Destination"]["ToAddresses"][0],
        format!("Ada Lovelace <{}>", e.to.address)
    );
    assert_eq!(
        body["FeedbackForwardingEmailAddress"],
        e.return_path.as_str()
    );
    assert_mime(&ses.messages()[0], &e);
}

#[tokio::test]
async fn ses_refuses_a_wrong_signature_permanently() {
    let ses = FakeSes::start().await;
    let mut config = ses.config();
    config["secret_access_key"] = "not-the-secret".into();
    let provider = build("ses", &config).unwrap();

    let result = send(provider.as_ref(), &email()).await;

    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("signature")),
        "{result:?}"
    );
    assert_eq!(ses.received()[0].status, 403);
}

#[tokio::test]
async fn ses_maps_throttling_server_errors_and_rejections() {
    let ses = FakeSes::start().await;
    let provider = build("ses", &ses.config()).unwrap();
    assert_error_mapping(provider.as_ref(), |f| ses.fail_next(1, f)).await;
}

#[tokio::test]
async fn sendgrid_posts_mail_send_with_bearer_auth_and_our_headers() {
    let sendgrid = FakeSendGrid::start().await;
    let provider = build("sendgrid", &sendgrid.config()).unwrap();
    let e = email();

    let id = send(provider.as_ref(), &e).await.unwrap();

    assert!(id.starts_with("fake-sendgrid-"), "the X-Message-Id: {id}");
    let r = &sendgrid.received()[0];
    assert_eq!(
        r.header("authorization"),
        Some("Bearer SG.fake-key.sendgrid")
    );
    let body = r.json();
    assert_eq!(
        body["personalizations"][0]["to"][0]["email"],
        e.to.address.as_str()
    );
    assert_eq!(
        body["from"],
        json!({"email": "news@acme.test", "name": "Zoë Müller, Acme"})
    );
    assert_eq!(body["reply_to"]["email"], "support@acme.test");
    assert_eq!(body["subject"], SUBJECT);
    assert_eq!(
        body["content"],
        json!([{"type": "text/plain", "value": TEXT}, {"type": "text/html", "value": HTML}])
    );
    assert_eq!(body["headers"]["Message-ID"], format!("<{}>", e.message_id));
    assert_eq!(body["headers"]["List-Unsubscribe"], list_unsubscribe(&e));
    assert_eq!(
        body["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(body["headers"]["Feedback-ID"], "spring-sale:acme:mauntic");
    assert_eq!(body["custom_args"]["job_id"], e.job_id.to_string());
}

#[tokio::test]
async fn sendgrid_maps_throttling_server_errors_rejections_and_a_bad_key() {
    let sendgrid = FakeSendGrid::start().await;
    let provider = build("sendgrid", &sendgrid.config()).unwrap();
    assert_error_mapping(provider.as_ref(), |f| sendgrid.fail_next(1, f)).await;

    let mut config = sendgrid.config();
    config["api_key"] = "SG.revoked".into();
    let bad_key = send(build("sendgrid", &config).unwrap().as_ref(), &email()).await;
    assert!(
        matches!(&bad_key, Err(SendError::Permanent { reason }) if reason.contains("401") && reason.contains("authorization grant is invalid")),
        "{bad_key:?}"
    );
}

#[tokio::test]
async fn sendgrid_timeouts_leave_the_outcome_unknown() {
    let sendgrid = FakeSendGrid::start().await;
    let mut config = sendgrid.config();
    config["timeout_secs"] = 1.into();
    let provider = build("sendgrid", &config).unwrap();
    sendgrid.fail_next(1, Failure::Hang(Duration::from_secs(3)));

    let result = send(provider.as_ref(), &email()).await;

    assert!(
        matches!(&result, Err(SendError::Unknown { reason }) if reason.contains("timed out")),
        "{result:?}"
    );
}

#[tokio::test]
async fn mailgun_posts_a_multipart_form_with_basic_auth_and_our_headers() {
    let mailgun = FakeMailgun::start().await;
    let provider = build("mailgun", &mailgun.config()).unwrap();
    let e = email();

    let id = send(provider.as_ref(), &e).await.unwrap();

    assert!(
        id.starts_with("20261129.fake.") && id.ends_with("@mg.acme.test"),
        "the JSON id without brackets: {id}"
    );
    let r = &mailgun.received()[0];
    assert_eq!(r.uri, "/v3/mg.acme.test/messages");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data"));
    assert_eq!(
        r.field("from"),
        Some("\"Zoë Müller, Acme\" <news@acme.test>")
    );
    assert_eq!(
        r.field("to"),
        Some(format!("Ada Lovelace <{}>", e.to.address).as_str())
    );
    assert_eq!(r.field("subject"), Some(SUBJECT));
    assert_eq!(r.field("text"), Some(TEXT));
    assert_eq!(r.field("html"), Some(HTML));
    assert_eq!(
        r.field("h:Reply-To"),
        Some("Acme Support <support@acme.test>")
    );
    assert_eq!(
        r.field("h:Message-ID"),
        Some(format!("<{}>", e.message_id).as_str())
    );
    assert_eq!(
        r.field("h:List-Unsubscribe"),
        Some(list_unsubscribe(&e).as_str())
    );
    assert_eq!(
        r.field("h:List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(r.field("h:Feedback-ID"), Some("spring-sale:acme:mauntic"));
    assert_eq!(r.field("v:job_id"), Some(e.job_id.to_string().as_str()));
}

#[tokio::test]
async fn mailgun_maps_throttling_server_errors_rejections_and_a_bad_key() {
    let mailgun = FakeMailgun::start().await;
    let provider = build("mailgun", &mailgun.config()).unwrap();
    assert_error_mapping(provider.as_ref(), |f| mailgun.fail_next(1, f)).await;

    let mut config = mailgun.config();
    config["api_key"] = "key-wrong".into();
    let bad_key = send(build("mailgun", &config).unwrap().as_ref(), &email()).await;
    assert!(
        matches!(&bad_key, Err(SendError::Permanent { reason }) if reason.contains("401") && reason.contains("Forbidden")),
        "{bad_key:?}"
    );
}

#[tokio::test]
async fn postmark_posts_email_with_its_server_token_and_our_headers() {
    let postmark = FakePostmark::start().await;
    let provider = build("postmark", &postmark.config()).unwrap();
    let e = email();

    let id = send(provider.as_ref(), &e).await.unwrap();

    assert!(
        id.starts_with("b7bc2f4a-fake-postmark-"),
        "the MessageID: {id}"
    );
    let r = &postmark.received()[0];
    assert_eq!(
        r.header("x-postmark-server-token"),
        Some("fake-postmark-server-token")
    );
    let body = r.json();
    assert_eq!(body["From"], "\"Zoë Müller, Acme\" <news@acme.test>");
    assert_eq!(body["To"], format!("Ada Lovelace <{}>", e.to.address));
    assert_eq!(body["ReplyTo"], "Acme Support <support@acme.test>");
    assert_eq!(body["Subject"], SUBJECT);
    assert_eq!(body["TextBody"], TEXT);
    assert_eq!(body["HtmlBody"], HTML);
    assert_eq!(body["MessageStream"], "outbound");
    assert_eq!(
        body["Headers"],
        json!([
            {"Name": "Message-ID", "Value": format!("<{}>", e.message_id)},
            {"Name": "List-Unsubscribe", "Value": list_unsubscribe(&e)},
            {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            {"Name": "Feedback-ID", "Value": "spring-sale:acme:mauntic"},
        ])
    );
    assert_eq!(body["Metadata"]["job_id"], e.job_id.to_string());
}

#[tokio::test]
async fn postmark_maps_throttling_server_errors_rejections_and_a_bad_token() {
    let postmark = FakePostmark::start().await;
    let provider = build("postmark", &postmark.config()).unwrap();
    assert_error_mapping(provider.as_ref(), |f| postmark.fail_next(1, f)).await;

    let mut config = postmark.config();
    config["server_token"] = "wrong".into();
    let bad_token = send(build("postmark", &config).unwrap().as_ref(), &email()).await;
    assert!(
        matches!(&bad_token, Err(SendError::Permanent { reason }) if reason.contains("Server Token") && reason.contains("ErrorCode 10")),
        "{bad_token:?}"
    );
}

#[tokio::test]
async fn a_provider_of_email_refuses_other_channels_permanently() {
    let sendgrid = FakeSendGrid::start().await;
    let provider = build("sendgrid", &sendgrid.config()).unwrap();
    let sms = Message::Sms(workers::delivery::message::Sms {
        job_id: Uuid::new_v4(),
        from: "+15550000000".into(),
        to: "+15550000001".into(),
        body: "hi".into(),
    });

    let result = provider.send(&sms).await;

    assert!(
        matches!(result, Err(SendError::Permanent { .. })),
        "{result:?}"
    );
    assert!(sendgrid.received().is_empty());
}

#[tokio::test]
async fn a_bad_address_is_refused_permanently_before_any_request() {
    let (sendgrid, mailgun, postmark) = (
        FakeSendGrid::start().await,
        FakeMailgun::start().await,
        FakePostmark::start().await,
    );
    let mut e = email();
    e.to.address = "ada at example.org".into();

    for (kind, config) in [
        ("sendgrid", sendgrid.config()),
        ("mailgun", mailgun.config()),
        ("postmark", postmark.config()),
    ] {
        let result = send(build(kind, &config).unwrap().as_ref(), &e).await;
        assert!(
            matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("invalid to address")),
            "{kind}: {result:?}"
        );
    }
    assert!(sendgrid.received().is_empty() && mailgun.received().is_empty());
    assert!(postmark.received().is_empty());
}
