//! The one integration test binary: black-box tests of the running system against the real
//! PostgreSQL and the real NATS JetStream, each test in its own fresh database.
//! Add a module per feature here rather than new test binaries (each binary links the world).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_contract;
mod audit;
mod audit_log;
mod campaign_read;
mod campaigns;
mod campaigns_crash;
mod companies;
mod console;
mod contact_events;
mod contacts_api;
mod contacts_csv;
mod contacts_erasure;
mod contacts_merge;
mod contacts_reach;
mod contacts_unique;
mod delivery;
mod delivery_campaigns;
mod delivery_channels_e2e;
mod delivery_providers;
mod delivery_providers_channels;
mod event_log;
mod faults;
mod fields;
mod identity_auth;
mod identity_oidc;
mod identity_org;
mod imports;
mod inbound;
mod installations;
mod isolation;
mod journey_read;
mod journeys;
mod key_rotation;
mod ops;
mod projections;
mod providers;
mod rebuild;
mod relay;
mod segments;
mod segments_property;
mod statements;
mod suppressions;
mod templates;
mod tenancy;
mod warmup;
