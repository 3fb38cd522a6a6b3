//! Request bodies and their validation into domain commands. Every invalid field is
//! reported, not just the first.

use http_kit::json::present;
use std::collections::{BTreeMap, BTreeSet};

use domain::contact::{
    ContactPatch, FieldKey, FieldValue, Fields, InvalidValue, NewContact, PersonName, Phone,
    ProfilePatch, Tag,
};
use domain::identity::OrgSettings;
use domain::EmailAddress;

use crate::Invalid;
use serde::Deserialize;

/// `POST /api/v1/contacts`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    #[schema(example = "ada@example.org")]
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// International number; stored as E.164 (`+4915123456789`).
    pub phone: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: Option<String>,
    /// e.g. `fr-FR`.
    pub locale: Option<String>,
    /// Custom fields: key → text, number, boolean or list of texts.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `PATCH /api/v1/contacts/{id}`: absent keys are left as they are; `null` clears.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    /// Fields to set; a `null` value removes the field.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// `POST /api/v1/contacts/{id}/tags`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTags {
    pub tags: Vec<String>,
}

/// Collects field problems while validating (every invalid field is reported).
#[derive(Default)]
pub(crate) struct Check(pub(crate) Vec<InvalidValue>);

impl Check {
    pub(crate) fn take<T>(&mut self, r: Result<T, InvalidValue>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    fn email(&mut self, raw: &str) -> Option<EmailAddress> {
        self.take(EmailAddress::parse(raw).map_err(|e| InvalidValue::new("email", e.to_string())))
    }

    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, Invalid> {
        match (self.0.is_empty(), value) {
            (true, Some(v)) => Ok(v),
            _ => Err(Invalid(self.0)),
        }
    }

    pub(crate) fn fields(
        &mut self,
        raw: &serde_json::Map<String, serde_json::Value>,
    ) -> BTreeMap<FieldKey, Option<FieldValue>> {
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            if let Some(key) = self.take(FieldKey::parse(k)) {
                if let Some(value) = self.take(FieldValue::from_json(&key, v)) {
                    out.insert(key, value);
                }
            }
        }
        out
    }

    /// Phone, time zone and locale: `None` leaves each as is, `Some(None)` (or a blank
    /// value) clears it.
    fn profile(
        &mut self,
        phone: Option<Option<String>>,
        time_zone: Option<Option<String>>,
        locale: Option<Option<String>>,
    ) -> ProfilePatch {
        let given = |v: Option<Option<String>>| v.map(|v| v.filter(|s| !s.trim().is_empty()));
        let phone = given(phone).map(|v| v.and_then(|p| self.take(Phone::parse(&p))));
        let time_zone =
            given(time_zone).map(|v| v.and_then(|t| self.take(OrgSettings::parse_time_zone(&t))));
        let locale =
            given(locale).map(|v| v.and_then(|l| self.take(OrgSettings::parse_locale(&l))));
        ProfilePatch {
            phone,
            time_zone,
            locale,
        }
    }

    fn tags(&mut self, raw: &[String]) -> BTreeSet<Tag> {
        raw.iter()
            .filter_map(|t| self.take(Tag::parse(t)))
            .collect()
    }
}

impl CreateContact {
    pub fn validate(self) -> Result<NewContact, Invalid> {
        let mut c = Check::default();
        let email = c.email(&self.email);
        let first_name = c.take(PersonName::parse(
            "first_name",
            self.first_name.as_deref().unwrap_or(""),
        ));
        let last_name = c.take(PersonName::parse(
            "last_name",
            self.last_name.as_deref().unwrap_or(""),
        ));
        let fields: Fields = c
            .fields(&self.fields)
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let tags = c.tags(&self.tags);
        let profile = c.profile(
            self.phone.map(Some),
            self.time_zone.map(Some),
            self.locale.map(Some),
        );
        let new = match (email, first_name, last_name) {
            (Some(email), Some(first_name), Some(last_name)) => Some(NewContact {
                email,
                first_name,
                last_name,
                fields,
                tags,
                profile,
            }),
            _ => None,
        };
        c.finish(new)
    }
}

impl UpdateContact {
    pub fn validate(self) -> Result<ContactPatch, Invalid> {
        let mut c = Check::default();
        let email = self.email.as_deref().map(|e| c.email(e));
        let first_name = self
            .first_name
            .map(|n| c.take(PersonName::parse("first_name", n.as_deref().unwrap_or(""))));
        let last_name = self
            .last_name
            .map(|n| c.take(PersonName::parse("last_name", n.as_deref().unwrap_or(""))));
        let fields = c.fields(&self.fields);
        let profile = c.profile(self.phone, self.time_zone, self.locale);
        let patch = ContactPatch {
            email: email.flatten(),
            first_name: first_name.flatten(),
            last_name: last_name.flatten(),
            fields,
            profile,
        };
        c.finish(Some(patch))
    }
}

impl AddTags {
    pub fn validate(self) -> Result<BTreeSet<Tag>, Invalid> {
        let mut c = Check::default();
        let tags = c.tags(&self.tags);
        if tags.is_empty() && c.0.is_empty() {
            c.0.push(InvalidValue::new("tags", "give at least one tag"));
        }
        c.finish(Some(tags))
    }
}

/// A stage's name: at most 64 characters (`PUT /contacts/{id}/stage`, the console).
pub fn stage(raw: &str) -> Result<String, Invalid> {
    domain::contact::short_text("stage", raw, 64).map_err(Invalid::from)
}

/// A note's text: at most 10,000 characters.
pub fn note(raw: &str) -> Result<String, Invalid> {
    domain::contact::short_text("text", raw, 10_000).map_err(Invalid::from)
}

/// A change of points: not zero, with a reason of at most 200 characters.
pub fn points(delta: i64, reason: &str) -> Result<domain::contact::ContactCommand, Invalid> {
    let reason = domain::contact::short_text("reason", reason, 200).map_err(Invalid::from);
    match (delta, reason) {
        (0, Ok(_)) => Err(Invalid::one("delta", "add or subtract at least one point")),
        (0, Err(mut i)) => {
            i.0.push(InvalidValue::new(
                "delta",
                "add or subtract at least one point",
            ));
            Err(i)
        }
        (_, Err(i)) => Err(i),
        (delta, Ok(reason)) => Ok(domain::contact::ContactCommand::ChangePoints { delta, reason }),
    }
}
