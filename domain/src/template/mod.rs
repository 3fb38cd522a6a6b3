//! Message templates: versioned Handlebars content per channel.
//!
//! - [`content`]: what a version holds per channel (email, sms, push, webhook) and its parts.
//! - [`aggregate`]: the `Template` aggregate (name, channel, versions, the published one).
//! - [`render`]: the one strict Handlebars registry, its helpers, checking a version when it
//!   is saved and rendering one against a context (pure; workers render with it too).
//! - [`text`]: an email's text part derived from its HTML.

pub mod aggregate;
pub mod content;
pub mod render;
pub mod text;

#[cfg(test)]
mod tests;

pub use aggregate::{Template, TemplateCommand, TemplateError, TemplateEvent};
pub use content::{Channel, CheckedContent, Content};
pub use render::{Known, PartError, Rendered};
