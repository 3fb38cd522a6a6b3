//! Providers of every channel, each behind [`Provider`](super::provider::Provider):
//! - email: the MIME message every one of them sends (`mime`), SMTP (`smtp`) and the HTTP APIs
//!   (`ses` with its `sigv4` signer, `sendgrid`, `mailgun`, `postmark`);
//! - SMS: `twilio`, `vonage`, `plivo`, `telnyx`;
//! - push: `fcm` (OAuth 2 service-account tokens), `apns` (ES256 provider tokens, HTTP/2);
//! - webhook: `webhook` (signed requests to the organization's endpoints).
//!
//! The HTTP ones share the client and the mapping of HTTP answers to
//! [`SendError`](super::provider::SendError) (`http`). [`build`] makes one from its kind and
//! JSON configuration.
//!
//! **Deduplication:** none of the vendors' send calls documents an idempotency key (SES v2
//! `SendEmail`, SendGrid, Mailgun, Postmark, Twilio, Vonage, Plivo, Telnyx, FCM v1, APNs; SMTP
//! has none), so each answers `deduplicates() == false`: a job caught by a crash between
//! "dispatching" and an outcome is not sent again automatically. A webhook answers what its
//! configuration says (`deduplicates: true` when the endpoint honours `Idempotency-Key`).

pub mod apns;
pub mod build;
pub mod fcm;
pub mod http;
pub mod mailgun;
pub mod mime;
pub mod plivo;
pub mod postmark;
pub mod sendgrid;
pub mod ses;
pub mod sigv4;
pub mod smtp;
pub mod telnyx;
pub mod twilio;
pub mod vonage;
pub mod webhook;

pub use build::{build, BuildError};
