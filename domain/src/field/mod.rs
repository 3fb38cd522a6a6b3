//! Field definitions: the custom fields an organization's contacts have, with a type, a
//! label, required and default. Contact writes are checked against them.

mod schema;
mod types;

#[cfg(test)]
mod tests;

pub use schema::{FieldSchema, FieldSchemaCommand, FieldSchemaError, FieldSchemaEvent};
pub use types::{FieldDefinition, FieldType};
