//! Request bodies of the identity routes and their validation.

use chrono::{DateTime, Utc};
use domain::identity::organization::SettingsPatch;
use domain::identity::{KeyKind, OrgName, OrgSettings, Role};
use domain::EmailAddress;
use http_kit::json::present;

use crate::Invalid;
use serde::Deserialize;
use uuid::Uuid;

/// An email from a body, or 422 naming the field.
pub fn email(raw: &str) -> Result<EmailAddress, Invalid> {
    EmailAddress::parse(raw).map_err(|e| Invalid::one("email", e.to_string()))
}

/// A display name: at most 200 characters, no control characters; blank is none.
pub fn person_name(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    domain::contact::PersonName::parse("name", raw.unwrap_or(""))
        .map(|n| n.map(|n| n.as_str().to_owned()))
        .map_err(Invalid::from)
}

/// `POST /api/v1/auth/signup`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    #[schema(example = "ada@example.org")]
    pub email: String,
    pub password: String,
    pub name: Option<String>,
}

/// A token from a mail: `POST /api/v1/auth/verify-email`, `POST /api/v1/invites/accept`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub token: String,
}

/// `POST /api/v1/auth/login`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// `POST /api/v1/auth/login/second-factor`: a TOTP code or a recovery code.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactor {
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

/// `POST /api/v1/auth/password/forgot`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    pub email: String,
}

/// `POST /api/v1/auth/password/reset`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    pub token: String,
    pub password: String,
}

/// `POST /api/v1/me/password`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/me/totp/confirm`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// `DELETE /api/v1/me/totp`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirmation {
    pub password: String,
}

/// `POST /api/v1/me/organization`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchOrganization {
    pub organization_id: Uuid,
}

/// `POST /api/v1/organizations`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
}

impl CreateOrganization {
    pub fn validate(&self) -> Result<OrgName, Invalid> {
        OrgName::parse(&self.name).map_err(Invalid::from)
    }
}

/// `PATCH /api/v1/organization`: absent keys stay; `null` clears a sender setting.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    pub name: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: Option<String>,
    /// e.g. `fr-FR`.
    pub locale: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub sender_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub sender_email: Option<Option<String>>,
}

impl UpdateOrganization {
    pub fn validate(self) -> Result<(Option<OrgName>, SettingsPatch), Invalid> {
        let mut errors = Vec::new();
        fn take<T>(
            errors: &mut Vec<(String, String)>,
            r: Result<T, domain::contact::InvalidValue>,
        ) -> Option<T> {
            r.map_err(|e| errors.push((e.field, e.reason))).ok()
        }
        let e = &mut errors;
        let name = self
            .name
            .as_deref()
            .and_then(|n| take(e, OrgName::parse(n)));
        let time_zone = self
            .time_zone
            .as_deref()
            .and_then(|t| take(e, OrgSettings::parse_time_zone(t)));
        let locale = self
            .locale
            .as_deref()
            .and_then(|l| take(e, OrgSettings::parse_locale(l)));
        let sender_name = self.sender_name.map(|n| {
            take(
                e,
                OrgSettings::parse_sender_name(n.as_deref().unwrap_or("")),
            )
            .flatten()
        });
        let sender_email = self.sender_email.map(|m| {
            take(
                e,
                OrgSettings::parse_sender_email(m.as_deref().unwrap_or("")),
            )
            .flatten()
        });
        let patch = SettingsPatch {
            time_zone,
            locale,
            sender_name,
            sender_email,
        };
        if errors.is_empty() {
            return Ok((name, patch));
        }
        Err(Invalid(
            errors
                .into_iter()
                .map(|(field, reason)| domain::contact::InvalidValue { field, reason })
                .collect(),
        ))
    }
}

/// `POST /api/v1/organization/transfer-ownership`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnership {
    pub user_id: Uuid,
}

/// `PATCH /api/v1/organization/members/{user_id}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    #[schema(value_type = String, example = "member")]
    pub role: Role,
}

/// `POST /api/v1/organization/invites`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    pub email: String,
    #[schema(value_type = String, example = "member")]
    pub role: Role,
}

/// `POST /api/v1/api-keys`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// admin, member or viewer.
    #[schema(value_type = String, example = "member")]
    pub role: Role,
    /// `secret` (default) or `public` (ingest only, safe to embed in a website).
    #[schema(value_type = Option<String>)]
    pub kind: Option<KeyKind>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl CreateApiKey {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<String, Invalid> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Invalid::one("name", "must have 1 to 100 characters"));
        }
        if self.expires_at.is_some_and(|t| t <= now) {
            return Err(Invalid::one("expires_at", "must be in the future"));
        }
        Ok(name.to_owned())
    }
}
