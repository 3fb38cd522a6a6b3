//! The `mauntic` binary's library: settings, the application (every role wired together),
//! and the CLI's subcommands. Tests build the same [`app::Application`].

pub mod app;
pub mod bench;
pub mod cli;
pub mod http;
pub mod import;
pub mod rotate;
pub mod settings;
pub mod telemetry;

pub use app::Application;
pub use settings::{Role, Settings};
