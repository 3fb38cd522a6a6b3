//! Delivery: what a message is once rendered, and the providers that carry it (SMTP and HTTP
//! APIs per channel). The delivery worker (requested jobs → checks → render → send) drives a
//! [`provider::Provider`]; providers know nothing of jobs, contacts or the log. Their
//! delivery, bounce and complaint reports come back through [`webhooks`], verified and
//! normalized.

pub mod dev_mailbox;
pub mod http;
pub mod inbound;
pub mod message;
pub mod provider;
pub mod providers;
pub mod reports;
pub mod resolve;
pub mod tracking;
pub mod webhooks;
pub mod worker;
