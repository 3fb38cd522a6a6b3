//! A real SMTP server for the tests: Postfix's `smtp-sink` on 127.0.0.1, dumping every mail
//! transaction to a file of its own in a fresh directory (`scripts/services-up` installs it).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A running `smtp-sink`; it is killed when dropped (and its directory removed, unless the
/// test is failing, so that the messages can be inspected).
pub struct SmtpSink {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl SmtpSink {
    /// Starts `smtp-sink` on a free port and waits until it answers with its greeting.
    pub fn start() -> SmtpSink {
        let dir = std::env::temp_dir().join(format!("smtp-sink-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        let dir = std::fs::canonicalize(dir).unwrap();
        // Another process may take the probed port before smtp-sink binds it: try again.
        for _ in 0..5 {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            drop(probe);
            if let Some(child) = spawn(&dir, port) {
                return SmtpSink { port, dir, child };
            }
        }
        let log = std::fs::read_to_string(dir.join("smtp-sink.log")).unwrap_or_default();
        panic!("smtp-sink did not start: {log}");
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (polling every 10 ms) for a message to `to` and returns the newest one, its body
    /// decoded from quoted-printable; panics after `within`.
    pub async fn wait_for_message(&self, to: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(message) = self.messages_to(to).pop() {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to} within {within:?}; in {}: {:?}",
                self.dir.display(),
                self.messages_to("").len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The newest message to `to` that contains `text`, waiting up to `within`.
    pub async fn wait_for_message_with(&self, to: &str, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(m) = self
                .messages_to(to)
                .into_iter()
                .rev()
                .find(|m| m.contains(text))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to} containing {text:?} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until at least `n` messages to `to` arrived; returns them, oldest first.
    pub async fn wait_for_count(&self, to: &str, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.messages_to(to);
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages to {to} within {within:?}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every completely received message whose envelope recipient or `To:` is `to` (any
    /// message if `to` is empty), oldest first, bodies decoded as in `wait_for_message`.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let listed = std::fs::read_dir(self.dir.join("mail")).unwrap();
        let mut files: Vec<_> = listed
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        // smtp-sink closes a dump file before it answers the final ".", so a file it no
        // longer holds open is complete. Listing first, then looking, makes this race-free.
        let open = self.open_files();
        files.retain(|(_, path)| !open.contains(path));
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .filter(|dump| to.is_empty() || addressed_to(dump, to))
            .map(|dump| decode(&dump))
            .collect()
    }

    /// The envelope recipient of every completely received message, lower-cased (one entry
    /// per message and recipient; only the dump's header block is read).
    pub fn envelope_recipients(&self) -> Vec<String> {
        let listed: Vec<PathBuf> = std::fs::read_dir(self.dir.join("mail"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        let open = self.open_files();
        let mut out = Vec::with_capacity(listed.len());
        for path in listed.iter().filter(|p| !open.contains(p)) {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let dump = String::from_utf8_lossy(&bytes);
            let headers = dump.split("\n\n").next().unwrap_or_default();
            for line in headers.lines() {
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("X-Rcpt-Args") {
                        let addr = value.split_whitespace().next().unwrap_or_default();
                        out.push(addr.trim_matches(['<', '>']).to_ascii_lowercase());
                    }
                }
            }
        }
        out
    }

    /// The files the smtp-sink process holds open, i.e. transactions still in progress.
    fn open_files(&self) -> Vec<PathBuf> {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()));
        let fds = fds.into_iter().flatten().flatten();
        fds.filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `smtp-sink [-u root] -d DIR/mail/%Y%m%d%H%M%S. 127.0.0.1:PORT 64`; the child once it
/// greets, `None` if it exits first (the port was taken).
fn spawn(dir: &Path, port: u16) -> Option<Child> {
    let mut command = Command::new(SMTP_SINK);
    // smtp-sink insists on dropping privileges when started by root; root keeps the dump
    // files readable and writable in a directory root created.
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid());
    if euid.is_ok_and(|uid| uid == 0) {
        command.args(["-u", "root"]);
    }
    let log = std::fs::File::create(dir.join("smtp-sink.log")).unwrap();
    let mut child = command
        .arg("-d")
        .arg(dir.join("mail/%Y%m%d%H%M%S."))
        .arg(format!("127.0.0.1:{port}"))
        .arg("64")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {SMTP_SINK} (run scripts/services-up): {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut greeting = String::new();
            let _ = BufReader::new(&stream).read_line(&mut greeting);
            let _ = stream.write_all(b"QUIT\r\n");
            if greeting.starts_with("220 ") && child.try_wait().unwrap().is_none() {
                return Some(child);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Whether an X-Rcpt-Args record (the envelope) or the `To:` header names `to`.
fn addressed_to(dump: &str, to: &str) -> bool {
    let headers = dump.split("\n\n").next().unwrap_or_default();
    headers.lines().any(|line| {
        let (name, value) = line.split_once(':').unwrap_or_default();
        let value = value.trim();
        if name.eq_ignore_ascii_case("X-Rcpt-Args") {
            let addr = value.split_whitespace().next().unwrap_or_default();
            addr.trim_matches(['<', '>']).eq_ignore_ascii_case(to)
        } else if name.eq_ignore_ascii_case("To") {
            value.split(',').any(|a| {
                let addr = a.rsplit_once('<').map_or(a, |(_, rest)| rest);
                addr.trim().trim_end_matches('>').eq_ignore_ascii_case(to)
            })
        } else {
            false
        }
    })
}

/// The dump with its body decoded from quoted-printable (soft line breaks, `=XX` escapes)
/// when the message declares that encoding; smtp-sink has already turned CRLF into LF.
fn decode(dump: &str) -> String {
    let declares_qp = dump
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable");
    let Some((headers, body)) = dump.split_once("\n\n").filter(|_| declares_qp) else {
        return dump.to_owned();
    };
    let (bytes, mut out, mut i) = (body.as_bytes(), Vec::with_capacity(body.len()), 0);
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        match (bytes[i], bytes.get(i + 1), hex) {
            (b'=', Some(b'\n'), _) => i += 2,
            (b'=', Some(b'\r'), _) if bytes.get(i + 2) == Some(&b'\n') => i += 3,
            (b'=', _, Some(h)) => {
                out.push(u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap());
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    format!("{headers}\n\n{}", String::from_utf8_lossy(&out))
}

/// The token in the first link of a mail (`…?token=<token>`).
pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=").expect("a link with a token") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '.')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header::ContentType;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    #[tokio::test]
    async fn a_message_sent_over_smtp_is_found_with_its_link_decoded() {
        let sink = SmtpSink::start();
        let link = format!("https://app.test/verify?token={}&x=1", "t".repeat(80));
        let message = Message::builder()
            .from("Mauntic <noreply@mauntic.test>".parse().unwrap())
            .to("Ada <ada@example.org>".parse().unwrap())
            .subject("Verify your address")
            .header(ContentType::TEXT_PLAIN)
            .body(format!("Bonjour Ada, café ?\n\nOpen {link} to verify.\n"))
            .unwrap();
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port())
            .build();
        mailer.send(message).await.unwrap();

        let text = sink
            .wait_for_message("ada@example.org", Duration::from_secs(5))
            .await;

        assert!(
            text.to_ascii_lowercase().contains("quoted-printable"),
            "{text}"
        );
        assert!(text.contains(&link) && text.contains("café"), "{text}");
        assert_eq!(sink.messages_to("ADA@example.org").len(), 1);
        assert!(sink.messages_to("bob@example.org").is_empty());
        assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
    }
}
