//! Email providers: the MIME message every one of them sends (`mime`), SMTP (`smtp`) and the
//! HTTP APIs (`ses` with its `sigv4` signer, `sendgrid`, `mailgun`, `postmark`), which share
//! the mapping of HTTP answers to [`SendError`](super::provider::SendError) (`http`).
//! [`build`] makes one from its kind and JSON configuration.
//!
//! **Deduplication:** none of these providers documents an idempotency key on its send call
//! (SES v2 `SendEmail`, SendGrid v3 `mail/send`, Mailgun `messages`, Postmark `email`; SMTP
//! has none), so every one answers `deduplicates() == false`: a job caught by a crash between
//! "dispatching" and an outcome is not sent again automatically.

pub mod build;
pub mod http;
pub mod mailgun;
pub mod mime;
pub mod postmark;
pub mod sendgrid;
pub mod ses;
pub mod sigv4;
pub mod smtp;

pub use build::{build, BuildError};
