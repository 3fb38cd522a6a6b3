//! The company: an organization's customer or prospect account, with its own custom fields;
//! contacts link to companies (one of them primary) from the contact's side.

mod aggregate;

#[cfg(test)]
mod tests;

pub use aggregate::{
    Company, CompanyCommand, CompanyError, CompanyEvent, CompanyPatch, NewCompany,
};
