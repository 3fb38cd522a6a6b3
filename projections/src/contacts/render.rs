//! The render context of a contact (what templates see) and of its organization.

use super::*;

impl ContactRow {
    /// The contact as templates see it (`domain::template::render`'s context), in an
    /// organization whose settings may give the time zone and locale a contact lacks;
    /// `message` holds what the sender adds.
    pub fn render_context(
        &self,
        organization: Option<&crate::organizations::OrganizationRow>,
        message: serde_json::Value,
    ) -> serde_json::Value {
        let setting = |key: &str| {
            organization
                .and_then(|o| o.settings[key].as_str())
                .map(str::to_owned)
        };
        serde_json::json!({
            "contact": {
                "id": self.id,
                "email": self.email,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "phone": self.phone,
                "time_zone": self.time_zone.clone().or_else(|| setting("time_zone")),
                "locale": self.locale.clone().or_else(|| setting("locale")),
                "fields": self.fields,
                "tags": self.tags,
                "stage": self.stage,
                "points": self.points,
            },
            "organization": organization_context(self.tenant_id, organization),
            "message": message,
        })
    }
}

/// `organization` in a render context.
pub fn organization_context(
    tenant: Uuid,
    organization: Option<&crate::organizations::OrganizationRow>,
) -> serde_json::Value {
    let setting = |key: &str| organization.and_then(|o| o.settings[key].as_str());
    serde_json::json!({
        "id": tenant,
        "name": organization.map(|o| o.name.as_str()),
        "time_zone": setting("time_zone"),
        "locale": setting("locale"),
    })
}
