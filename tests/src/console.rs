//! Page objects of the console, one per screen: what a person sees and does there, in
//! their words (open, fill, press, read). Tests read like a user's steps.

use crate::chromium::Chromium;

/// `/signup`
pub struct SignUpPage<'a>(pub &'a Chromium);

impl SignUpPage<'_> {
    pub async fn open(b: &Chromium) -> SignUpPage<'_> {
        b.open("/signup").await;
        b.expect_text("Create an account").await;
        SignUpPage(b)
    }

    pub async fn sign_up(&self, name: &str, email: &str, password: &str) {
        self.0.fill("name", name).await;
        self.0.fill("email", email).await;
        self.0.fill("password", password).await;
        self.0.press("Create account").await;
    }
}

/// `/login`
pub struct SignInPage<'a>(pub &'a Chromium);

impl SignInPage<'_> {
    pub async fn open(b: &Chromium) -> SignInPage<'_> {
        b.open("/login").await;
        b.expect_text("Sign in").await;
        SignInPage(b)
    }

    pub async fn sign_in(&self, email: &str, password: &str) {
        self.0.fill("email", email).await;
        self.0.fill("password", password).await;
        self.0.press("Sign in").await;
    }
}

/// `/organizations/new`
pub struct NewOrganizationPage<'a>(pub &'a Chromium);

impl NewOrganizationPage<'_> {
    pub async fn expect(b: &Chromium) -> NewOrganizationPage<'_> {
        b.expect_text("Create an organization").await;
        NewOrganizationPage(b)
    }

    pub async fn create(&self, name: &str) {
        self.0.fill("name", name).await;
        self.0.press("Create organization").await;
    }
}

/// `/contacts`
pub struct ContactsPage<'a>(pub &'a Chromium);

impl ContactsPage<'_> {
    pub async fn open(b: &Chromium) -> ContactsPage<'_> {
        b.open("/contacts").await;
        b.expect_text("Contacts").await;
        ContactsPage(b)
    }

    /// Types a tag into the filter; the rows follow without a reload (HTMX).
    pub async fn filter_by_tag(&self, tag: &str) {
        self.0.fill("tag", tag).await;
    }

    pub async fn new_contact(&self) -> ContactFormPage<'_> {
        self.0.press("New contact").await;
        self.0.expect_text("New contact").await;
        ContactFormPage(self.0)
    }
}

/// `/contacts/new` and `/contacts/{id}/edit`
pub struct ContactFormPage<'a>(pub &'a Chromium);

impl ContactFormPage<'_> {
    pub async fn fill(&self, field: &str, value: &str) {
        self.0.fill(field, value).await;
    }

    pub async fn save(&self) {
        self.0.press("Save").await;
    }

    /// The message next to `field`, and whether the field is marked invalid.
    pub async fn error_of(&self, field: &str) -> (String, bool) {
        self.0.field_error(field).await
    }
}

/// `/settings`: members, invitations, API keys.
pub struct SettingsPage<'a>(pub &'a Chromium);

impl SettingsPage<'_> {
    pub async fn open(b: &Chromium) -> SettingsPage<'_> {
        b.open("/settings").await;
        b.expect_text("Invitations").await;
        SettingsPage(b)
    }

    pub async fn invite(&self, email: &str, role: &str) {
        self.0.fill("invite-email", email).await;
        self.0.choose("invite-role", role).await;
        self.0.press("Send invitation").await;
    }

    /// Creates a key and answers its secret (shown this once).
    pub async fn create_key(&self, name: &str, role: &str) -> String {
        self.0.fill("key-name", name).await;
        self.0.choose("key-role", role).await;
        self.0.press("Create API key").await;
        self.0.expect_text("Copy it now").await;
        self.0.text_of("#new-key").await
    }
}

/// `/fields`
pub struct FieldsPage<'a>(pub &'a Chromium);

impl FieldsPage<'_> {
    pub async fn open(b: &Chromium) -> FieldsPage<'_> {
        b.open("/fields").await;
        b.expect_text("Custom fields").await;
        FieldsPage(b)
    }

    /// Defines a field; `options` comma-separated (for lists).
    pub async fn define(&self, key: &str, label: &str, field_type: &str, options: &str) {
        self.0.fill("key", key).await;
        self.0.fill("label", label).await;
        self.0.choose("field_type", field_type).await;
        self.0.fill("options", options).await;
        self.0.press("Define field").await;
    }
}
