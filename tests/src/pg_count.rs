//! A counting proxy in front of PostgreSQL: every statement a client sends passes through it
//! and is recorded, whatever library sent it. The statement-count guards run the command
//! paths through a pool connected here and pin how many statements each one sends.
//!
//! It reads the frontend side of the wire protocol (version 3): after the startup message,
//! every message is a type byte and a length. A simple query (`Q`) is one statement; in the
//! extended protocol a statement is parsed once per connection (`P`, named by sqlx so it is
//! cached), then bound (`B`) and executed (`E`) each time it runs: one statement per `E`.
//! The server's side is copied back untouched. Connect with `sslmode=disable`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What went through the proxy.
#[derive(Default)]
struct Seen {
    /// The text of every statement executed, in order.
    statements: Vec<String>,
}

/// A running proxy to `127.0.0.1:5432`.
#[derive(Clone)]
pub struct CountingProxy {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl CountingProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect("127.0.0.1:5432").await {
                        relay(client, server, s).await;
                    }
                });
            }
        });
        Self { port, seen }
    }

    /// `database_url` through the proxy (same database, no TLS so the protocol is readable).
    pub fn url(&self, database_url: &str) -> String {
        let (_, rest) = database_url.split_once("127.0.0.1:5432").unwrap();
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!(
            "postgres://postgres@127.0.0.1:{}{rest}{sep}sslmode=disable",
            self.port
        )
    }

    /// Forgets what was seen so far.
    pub fn reset(&self) {
        self.seen.lock().unwrap().statements.clear();
    }

    /// The statements executed since the last reset, in order.
    pub fn statements(&self) -> Vec<String> {
        self.seen.lock().unwrap().statements.clone()
    }
}

async fn relay(client: TcpStream, server: TcpStream, seen: Arc<Mutex<Seen>>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut server_read, mut server_write) = server.into_split();
    let (mut client_read, mut client_write) = client.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    // Statement names → their text, and the statement bound last (sqlx binds the unnamed portal).
    let mut prepared: HashMap<String, String> = HashMap::new();
    let mut bound = String::new();
    // The startup message has no type byte.
    let Some(startup) = read_untyped(&mut client_read).await else {
        return;
    };
    if server_write.write_all(&startup).await.is_err() {
        return;
    }
    loop {
        let mut head = [0u8; 5];
        if client_read.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        if client_read.read_exact(&mut body).await.is_err() {
            return;
        }
        match head[0] {
            b'Q' => seen.lock().unwrap().statements.push(cstr(&body, 0).0),
            b'P' => {
                let (name, at) = cstr(&body, 0);
                let (sql, _) = cstr(&body, at);
                prepared.insert(name, sql);
            }
            b'B' => {
                let (_portal, at) = cstr(&body, 0);
                let (statement, _) = cstr(&body, at);
                bound = statement;
            }
            b'E' => {
                let sql = prepared
                    .get(&bound)
                    .cloned()
                    .unwrap_or_else(|| format!("<statement {bound}>"));
                seen.lock().unwrap().statements.push(sql);
            }
            _ => {}
        }
        if server_write.write_all(&head).await.is_err()
            || server_write.write_all(&body).await.is_err()
        {
            return;
        }
    }
}

/// A length-prefixed message without a type byte (the startup message), whole.
async fn read_untyped(r: &mut tokio::net::tcp::OwnedReadHalf) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.ok()?;
    let n = u32::from_be_bytes(len) as usize;
    let mut out = len.to_vec();
    out.resize(n.max(4), 0);
    r.read_exact(&mut out[4..]).await.ok()?;
    Some(out)
}

/// The NUL-terminated string at `at`, and where the next field starts.
fn cstr(body: &[u8], at: usize) -> (String, usize) {
    let rest = body.get(at..).unwrap_or_default();
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    (
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        at + end + 1,
    )
}
