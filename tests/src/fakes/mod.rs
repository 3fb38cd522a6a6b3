//! Fakes of the providers' HTTP APIs, each a small axum server on 127.0.0.1:0 that speaks the
//! provider's documented request and answer formats, checks its authentication (SES's SigV4
//! signature recomputed, SendGrid's and Telnyx's Bearer keys, Mailgun's, Twilio's and Plivo's
//! basic auth, Postmark's server token, Vonage's key and secret, FCM's OAuth assertion and
//! access tokens, APNs' ES256 provider token, a webhook's signature), records every request,
//! and can be told to fail the next ones the way the provider does (throttling with
//! `Retry-After`, a server error, a refusal with its error body, a hang).
//!
//! ```ignore
//! let ses = FakeSes::start().await;
//! let provider = workers::delivery::providers::build("ses", &ses.config())?;
//! ses.fail_next(1, Failure::Throttle { retry_after: Some(Duration::from_secs(3)) });
//! ```

pub mod apns;
pub mod fcm;
pub mod mailgun;
pub mod plivo;
pub mod postmark;
pub mod sendgrid;
pub mod server;
pub mod ses;
pub mod telnyx;
pub mod twilio;
pub mod vonage;
pub mod webhook;

pub use apns::FakeApns;
pub use fcm::FakeFcm;
pub use mailgun::FakeMailgun;
pub use plivo::FakePlivo;
pub use postmark::FakePostmark;
pub use sendgrid::FakeSendGrid;
pub use server::{Failure, Received};
pub use ses::FakeSes;
pub use telnyx::FakeTelnyx;
pub use twilio::FakeTwilio;
pub use vonage::FakeVonage;
pub use webhook::FakeWebhook;
