//! The domain: aggregates, commands, events and value objects. Pure: no IO, no framework
//! beyond the cqrs-es `Aggregate` trait.

pub mod campaign;
pub mod company;
pub mod contact;
pub mod delivery;
pub mod email;
pub mod field;
pub mod identity;
pub mod ids;
pub mod journey;
pub mod segment;
pub mod template;

pub use email::EmailAddress;
pub use ids::{
    ApiKeyId, CampaignId, CompanyId, ContactId, DeliveryId, EntityId, ExecutionId, ImportId,
    InviteId, JourneyId, MemberId, NoteId, ProviderId, SegmentId, SuppressionId, TemplateId,
    TenantId, UserId,
};
