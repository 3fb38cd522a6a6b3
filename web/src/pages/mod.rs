//! The console's screens, one module per context.

pub mod audit;
pub mod auth;
pub mod companies;
pub mod contacts;
pub mod deliveries;
pub mod fields;
pub mod home;
pub mod imports;
pub mod organizations;
pub mod segments;
pub mod settings;
pub mod suppressions;
pub mod tokens;
