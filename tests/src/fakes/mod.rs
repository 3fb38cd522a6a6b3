//! Fakes of the email providers' HTTP APIs, each a small axum server on 127.0.0.1:0 that
//! speaks the provider's documented request and answer formats, checks its authentication
//! (SES's SigV4 signature recomputed, SendGrid's Bearer key, Mailgun's basic auth, Postmark's
//! server token), records every request, and can be told to fail the next ones the way the
//! provider does (throttling with `Retry-After`, a server error, a refusal with its error
//! body, a hang).
//!
//! ```ignore
//! let ses = FakeSes::start().await;
//! let provider = workers::delivery::providers::build("ses", &ses.config())?;
//! ses.fail_next(1, Failure::Throttle { retry_after: Some(Duration::from_secs(3)) });
//! ```

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod server;
pub mod ses;

pub use mailgun::FakeMailgun;
pub use postmark::FakePostmark;
pub use sendgrid::FakeSendGrid;
pub use server::{Failure, Received};
pub use ses::FakeSes;
