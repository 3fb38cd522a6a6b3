//! The web console in a real Chromium: what a marketer does, step by step, with
//! accessibility checked on every screen and the role table enforced server-side.

use domain::identity::Role;
use mauntic_tests::browser::PASSWORD;
use mauntic_tests::chromium::Chromium;
use mauntic_tests::console::{
    ContactsPage, FieldsPage, NewOrganizationPage, SettingsPage, SignInPage, SignUpPage,
};
use mauntic_tests::smtp_sink::SmtpSink;
use mauntic_tests::{spawn_app, spawn_with, Options};
use std::time::Duration;

#[tokio::test]
async fn a_marketer_signs_up_founds_an_organization_and_keeps_contacts() {
    let app = spawn_app().await;
    let b = Chromium::start(&app.base).await;

    // Signing in is where the console starts; a weak password is refused next to its field.
    b.open("/").await;
    assert!(b.path().await.starts_with("/login"), "{}", b.path().await);
    b.assert_accessible("sign-in").await;
    b.screenshot("sign-in").await;
    let signup = SignUpPage::open(&b).await;
    b.assert_accessible("sign-up").await;
    signup
        .sign_up("Ada Lovelace", "ada@example.org", "short")
        .await;
    let (message, invalid) = b.field_error("password").await;
    assert!(message.contains("at least"), "{message}");
    assert!(invalid, "the password field is marked invalid");
    signup
        .sign_up("Ada Lovelace", "ada@example.org", PASSWORD)
        .await;

    // A new account founds its organization, then lands on the home page.
    let org = NewOrganizationPage::expect(&b).await;
    b.assert_accessible("new organization").await;
    org.create("Acme Analytics").await;
    b.expect_text("You work in Acme Analytics as owner").await;
    b.assert_accessible("home").await;

    // Custom fields: a bad key is refused next to it; typed fields join the contact form.
    let fields = FieldsPage::open(&b).await;
    b.assert_accessible("fields").await;
    fields
        .define("Bad Key", "Plan", "select", "free, pro")
        .await;
    let (message, invalid) = b.field_error("key").await;
    assert!(!message.is_empty() && invalid, "{message}");
    fields.define("plan", "Plan", "select", "free, pro").await;
    b.expect_text("One of a list").await;
    fields.define("seats", "Seats", "number", "").await;
    b.expect_text("Seats").await;
    b.screenshot("fields").await;

    // A contact with a bad email is refused next to the email; corrected, it is saved and
    // shown at once (the page waits for the read model to show the write).
    let contacts = ContactsPage::open(&b).await;
    b.expect_text("No contacts match.").await;
    b.assert_accessible("contacts (empty)").await;
    let form = contacts.new_contact().await;
    b.assert_accessible("new contact").await;
    form.fill("email", "grace-at-example.org").await;
    form.fill("first_name", "Grace").await;
    form.fill("tags", "vip, beta").await;
    form.save().await;
    let (message, invalid) = form.error_of("email").await;
    assert!(message.contains("not a valid email"), "{message}");
    assert!(invalid);
    b.assert_accessible("new contact with an error").await;
    b.screenshot("contact-form-error").await;
    // What was typed is kept.
    assert_eq!(
        b.client
            .find(fantoccini::Locator::Css("#first_name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Grace")
    );
    form.fill("email", "grace@example.org").await;
    b.choose("field-plan", "pro").await;
    form.fill("field-seats", "12").await;
    form.save().await;
    b.expect_text("grace@example.org").await;
    b.expect_text("vip").await;
    b.expect_text("plan\npro").await;
    b.expect_text("seats\n12").await;
    assert!(b.path().await.starts_with("/contacts/"));
    b.assert_accessible("contact").await;

    // Edit: the change shows on the contact's page.
    b.press("Edit").await;
    b.fill("last_name", "Hopper").await;
    b.press("Save").await;
    b.expect_text("Grace Hopper").await;

    // Tags on the contact's page: added, then removed with their own button.
    b.fill("new-tags", "customer").await;
    b.press("Add tags").await;
    b.expect_text("customer").await;
    b.find_and_click("button[aria-label='Remove the tag customer']")
        .await;
    b.expect_text("Grace Hopper").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.text().await.contains("customer") {
        assert!(std::time::Instant::now() < deadline, "the tag never went");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A second contact; the tag filter narrows the list without a reload.
    let contacts = ContactsPage::open(&b).await;
    let form = contacts.new_contact().await;
    form.fill("email", "alan@example.org").await;
    form.fill("tags", "beta").await;
    form.save().await;
    b.expect_text("alan@example.org").await;
    let contacts = ContactsPage::open(&b).await;
    b.expect_text("alan@example.org").await;
    b.expect_text("grace@example.org").await;
    b.screenshot("contacts").await;
    contacts.filter_by_tag("vip").await;
    b.expect_text("grace@example.org").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.text().await.contains("alan@example.org") {
        assert!(
            std::time::Instant::now() < deadline,
            "the filter never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        b.path().await.contains("tag=vip"),
        "the URL keeps the filter"
    );
    b.assert_accessible("contacts (filtered)").await;

    // A dynamic segment built with the rule builder: the count follows the rule as it is
    // edited; a bad value is marked on its condition; saved, the segment fills.
    b.open("/segments").await;
    b.expect_text("No segments yet.").await;
    b.press("New segment").await;
    b.assert_accessible("segment builder").await;
    b.choose("c-0-what", "fields.plan").await;
    b.choose("c-0-op", "equals").await;
    b.fill("c-0-value", "pro").await;
    b.expect_text("1 contacts match now").await;
    b.press("Add a condition").await;
    b.choose("c-1-what", "points").await;
    b.choose("c-1-op", "gte").await;
    b.fill("c-1-value", "lots").await;
    b.expect_text("Fix the conditions").await;
    b.press("Add a condition").await;
    let (message, invalid) = b.field_error("c-1-value").await;
    assert!(!message.is_empty() && invalid, "{message}");
    b.press_value("remove:2").await;
    b.expect_text("Condition").await;
    b.press_value("remove:1").await;
    b.choose("c-0-what", "tag").await;
    b.choose("c-0-op", "has_tag").await;
    b.fill("c-0-value", "beta").await;
    b.expect_text("2 contacts match now").await;
    b.screenshot("segment-builder").await;
    b.fill("name", "Beta testers").await;
    b.press("Save segment").await;
    b.expect_text("Beta testers").await;
    let segment = b.path().await;
    let segment = segment.split('?').next().unwrap_or_default().to_owned();
    b.reload_until(&segment, ".member-count", "2").await;
    b.expect_text("alan@example.org").await;
    b.assert_accessible("segment").await;

    // Companies: a nameless one is refused in place; one with a name is shown and listed.
    b.open("/companies").await;
    b.expect_text("No companies match.").await;
    b.press("New company").await;
    b.fill("domain", "initech.example").await;
    b.press("Save").await;
    let (message, invalid) = b.field_error("name").await;
    assert!(!message.is_empty() && invalid, "{message}");
    b.fill("name", "Initech").await;
    b.press("Save").await;
    b.expect_text("initech.example").await;
    b.assert_accessible("company").await;
    b.open("/companies").await;
    b.expect_text("Initech").await;
    b.assert_accessible("companies").await;

    // Consent and do-not-contact per channel, from the contact's page.
    b.open("/contacts").await;
    b.press("grace@example.org").await;
    b.choose("consent-email", "opted_in").await;
    b.find_and_click("button[aria-label='Save consent on email']")
        .await;
    b.find_and_click("button[aria-label='Do not contact on sms']")
        .await;
    b.expect_text("Allow again").await;
    b.expect_text("manual").await;
    assert_eq!(
        b.client
            .find(fantoccini::Locator::Css("#consent-email"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("opted_in")
    );

    // Stage, points (a bad number refused in place) and notes.
    b.fill("stage", "lead").await;
    b.click_and_follow("#stage ~ button").await;
    b.fill("delta", "lots").await;
    b.press("Change points").await;
    let (message, invalid) = b.field_error("delta").await;
    assert!(message.contains("whole number") && invalid, "{message}");
    b.fill("delta", "10").await;
    b.fill("reason", "webinar").await;
    b.click_and_follow("#reason ~ button").await;
    assert_eq!(b.text_of(".points").await, "10");
    b.fill("note-text", "Met at the fair").await;
    b.press("Add note").await;
    b.expect_text("Met at the fair").await;
    assert_eq!(
        b.client
            .find(fantoccini::Locator::Css("#stage"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("lead")
    );

    // Erasing asks on its own page; the contact leaves the list.
    b.open("/contacts").await;
    b.press("alan@example.org").await;
    b.press("Erase…").await;
    b.expect_text("This cannot be undone").await;
    b.assert_accessible("erase").await;
    b.press("Erase this contact").await;
    b.expect_text("grace@example.org").await;
    assert!(!b.text().await.contains("alan@example.org"));

    // Signing out ends the session: the console asks to sign in again.
    b.press("Sign out").await;
    b.expect_text("Sign in").await;
    b.open("/contacts").await;
    assert!(b.path().await.starts_with("/login"));
    b.close().await;
}

#[tokio::test]
async fn a_viewer_sees_no_edit_buttons_and_every_write_is_refused_on_the_server() {
    let app = spawn_app().await;
    let (_owner, org) = app.founder("owner@example.org", "Acme").await;
    let viewer = app.member(org, "vera@example.org", Role::Viewer).await;

    let b = Chromium::start(&app.base).await;
    SignInPage::open(&b)
        .await
        .sign_in("vera@example.org", PASSWORD)
        .await;
    b.expect_text("You work in Acme as viewer").await;
    let _ = ContactsPage::open(&b).await;
    assert!(!b.has_button("New contact").await);
    b.open("/contacts/new").await;
    b.expect_text("may not do this").await;
    b.close().await;

    // Past the buttons: a forged post with the viewer's own session and token is refused.
    let res = viewer
        .http
        .post(format!("{}/contacts/new", app.base))
        .header("origin", &app.base)
        .form(&[
            ("csrf", viewer.csrf.clone().unwrap_or_default()),
            ("email", "sneaky@example.org".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let found = projections::contacts::list(&app.pool, org, None, 10)
        .await
        .unwrap();
    assert!(found.iter().all(|c| c.email != "sneaky@example.org"));
}

#[tokio::test]
async fn forged_and_cross_site_posts_are_refused_and_pages_carry_the_security_headers() {
    let app = spawn_app().await;
    let (owner, _) = app.founder("owner@example.org", "Acme").await;
    let csrf = owner.csrf.clone().unwrap_or_default();
    let post = |origin: &str, token: &str| {
        owner
            .http
            .post(format!("{}/contacts/new", app.base))
            .header("origin", origin)
            .form(&[("csrf", token), ("email", "x@example.org")])
            .send()
    };
    // Another site's page posting with the victim's cookie: refused by origin.
    assert_eq!(
        post("https://evil.example", &csrf).await.unwrap().status(),
        403
    );
    // Same origin without the session's token: refused.
    assert_eq!(
        post(&app.base, "not-the-token").await.unwrap().status(),
        403
    );
    // With both: accepted (a redirect to the new contact).
    assert_eq!(post(&app.base, &csrf).await.unwrap().status(), 303);

    let res = owner
        .http
        .get(format!("{}/contacts", app.base))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" onclick="),
        "no inline script"
    );
    // Assets are served under content-hashed names, immutable, gzipped when asked.
    let css = html
        .split('"')
        .find(|s| s.starts_with("/assets/console.") && s.ends_with(".css"))
        .unwrap()
        .to_owned();
    let res = app
        .get(&css)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
}

#[tokio::test]
async fn an_owner_invites_a_viewer_who_joins_by_the_mailed_link_and_cannot_edit() {
    let sink = SmtpSink::start();
    let app = spawn_with(Options {
        smtp_url: Some(sink.url()),
        public_url_from_addr: true,
        ..Options::default()
    })
    .await;
    let owner = Chromium::start(&app.base).await;
    SignUpPage::open(&owner)
        .await
        .sign_up("Olga Owner", "olga@example.org", PASSWORD)
        .await;
    NewOrganizationPage::expect(&owner)
        .await
        .create("Acme")
        .await;
    owner.expect_text("You work in Acme as owner").await;

    // An invitation is mailed and listed as pending; a bad email is refused in place.
    let settings = SettingsPage::open(&owner).await;
    owner.assert_accessible("settings").await;
    settings.invite("not-an-email", "viewer").await;
    let (message, invalid) = owner.field_error("invite-email").await;
    assert!(message.contains("not a valid email"), "{message}");
    assert!(invalid);
    settings.invite("vera@example.org", "viewer").await;
    owner.expect_text("vera@example.org").await;
    owner.expect_text("pending until").await;

    // An API key is shown once, and works against the API.
    let key = settings.create_key("CI", "member").await;
    owner.screenshot("settings").await;
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/contacts"))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the key shown works");
    SettingsPage::open(&owner).await;
    assert!(
        !owner.text().await.contains(key.trim()),
        "the secret is not shown again"
    );
    owner.close().await;

    // Vera follows the mailed link: signs up, comes back to the invitation, joins.
    let mail = sink
        .wait_for_message_with("vera@example.org", "Join Acme", Duration::from_secs(30))
        .await;
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/accept-invite?token="))
        .expect("the mail carries the link")
        .to_owned();
    let path = link[link.find("/accept-invite").unwrap()..].to_owned();
    let vera = Chromium::start(&app.base).await;
    vera.open(&path).await;
    vera.expect_text("Sign in").await;
    vera.press("Create an account").await;
    SignUpPage(&vera)
        .sign_up("Vera Viewer", "vera@example.org", PASSWORD)
        .await;
    vera.expect_text("Accept the invitation to join").await;
    vera.assert_accessible("accept invitation").await;
    vera.press("Accept the invitation").await;
    vera.expect_text("You work in Acme as viewer").await;

    // A viewer reads but sees no button to change anything, and no settings.
    ContactsPage::open(&vera).await;
    assert!(!vera.has_button("New contact").await);
    assert!(!vera.has_button("Settings").await);
    vera.open("/settings").await;
    vera.expect_text("may not do this").await;
    vera.close().await;
}

#[tokio::test]
async fn deliveries_are_listed_filtered_and_shown_with_their_jobs_events() {
    let app = spawn_app().await;
    // A member of the application's own organization, where the API sends from.
    let _ = app
        .member(app.tenant_id, "mo@example.org", Role::Member)
        .await;
    let t = app
        .published_template(
            "email",
            serde_json::json!({"subject": "Hi", "html": "<p>Hello</p>"}),
        )
        .await;
    let sent = app
        .send_message(serde_json::json!({"template_id": t, "to": "sent@example.org"}))
        .await;
    app.wait_delivery_job(&sent, "sent").await;
    app.settle().await;

    let b = Chromium::start(&app.base).await;
    SignInPage::open(&b)
        .await
        .sign_in("mo@example.org", PASSWORD)
        .await;
    b.expect_text("as member").await;
    // Home: the message counts in its figures and its day of the chart.
    b.expect_text("1\nmessages in 30 days").await;
    b.expect_text("1\nsent").await;
    b.assert_accessible("home with figures").await;
    b.screenshot("home").await;
    b.open("/deliveries").await;
    b.expect_text("transactional").await;
    b.expect_text("sent").await;
    b.assert_accessible("deliveries").await;
    // Filtering by a status no job has empties the list, without a reload.
    b.choose("status", "bounced").await;
    b.expect_text("No deliveries match.").await;
    assert!(b.path().await.contains("status=bounced"));
    b.choose("status", "sent").await;
    b.expect_text("transactional").await;
    b.open(&format!("/deliveries/{sent}")).await;
    b.expect_text("What happened").await;
    b.expect_text("Delivery requested").await;
    b.assert_accessible("delivery").await;

    // Suppressions: a bad address is refused in place; a good one is listed, then removed.
    b.open("/suppressions").await;
    b.expect_text("No address is suppressed").await;
    b.assert_accessible("suppressions").await;
    b.fill("add-address", "not an address").await;
    b.press("Suppress").await;
    let (message, invalid) = b.field_error("add-address").await;
    assert!(!message.is_empty() && invalid, "{message}");
    b.fill("add-address", "Sent@Example.org").await;
    b.press("Suppress").await;
    b.expect_text("sent@example.org").await;
    b.expect_text("manual").await;
    // Removing asks first (data-confirm); the browser's dialog is accepted.
    b.press("Remove").await;
    b.client.accept_alert().await.unwrap();
    b.expect_text("No address is suppressed").await;
    b.close().await;
}

/// A console form post as `b` (its session and CSRF token, from this site).
async fn console_post(
    app: &mauntic_tests::TestApp,
    b: &mauntic_tests::browser::Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::StatusCode {
    let mut form: Vec<(String, String)> = vec![("csrf".into(), b.csrf.clone().unwrap_or_default())];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    b.http
        .post(app.url(path))
        .header("origin", &app.base)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
}

async fn console_get(
    app: &mauntic_tests::TestApp,
    b: &mauntic_tests::browser::Browser,
    path: &str,
) -> reqwest::StatusCode {
    b.http.get(app.url(path)).send().await.unwrap().status()
}

#[tokio::test]
async fn console_routes_follow_the_role_table_and_keep_organizations_apart() {
    let app = spawn_app().await;
    let (_owner, org) = app.founder("owner@example.org", "Acme").await;
    let viewer = app.member(org, "vera@example.org", Role::Viewer).await;
    let member = app.member(org, "mia@example.org", Role::Member).await;

    // Every write of the console, as a viewer: refused, whatever the form says.
    let writes: [(&str, &[(&str, &str)]); 8] = [
        ("/contacts/new", &[("email", "x@example.org")]),
        ("/companies/new", &[("name", "X")]),
        (
            "/fields",
            &[("key", "plan"), ("label", "Plan"), ("field_type", "text")],
        ),
        ("/segments/new", &[("name", "S"), ("kind", "static")]),
        (
            "/suppressions",
            &[("channel", "email"), ("address", "x@example.org")],
        ),
        (
            "/settings/invites",
            &[("email", "x@example.org"), ("role", "viewer")],
        ),
        (
            "/settings/keys",
            &[("name", "k"), ("role", "viewer"), ("kind", "secret")],
        ),
        (
            "/organization/switch",
            &[("organization_id", "00000000-0000-0000-0000-000000000000")],
        ),
    ];
    for (path, fields) in writes {
        let status = console_post(&app, &viewer, path, fields).await;
        let expected = if path == "/organization/switch" {
            404
        } else {
            403
        };
        assert_eq!(status, expected, "viewer POST {path}");
    }
    assert_eq!(console_get(&app, &viewer, "/contacts").await, 200);
    assert_eq!(console_get(&app, &viewer, "/settings").await, 403);
    assert_eq!(console_get(&app, &viewer, "/audit").await, 403);
    assert_eq!(console_get(&app, &member, "/audit").await, 403);
    assert_eq!(console_get(&app, &viewer, "/contacts/new").await, 403);
    // A member edits content but not the organization's members or keys.
    assert_eq!(console_get(&app, &member, "/settings").await, 403);
    assert_eq!(
        console_post(
            &app,
            &member,
            "/settings/keys",
            &[("name", "k"), ("role", "viewer"), ("kind", "secret")]
        )
        .await,
        403
    );
    assert_eq!(
        console_post(
            &app,
            &member,
            "/contacts/new",
            &[("email", "m@example.org")]
        )
        .await,
        303
    );

    // Another organization's contact does not exist here, to read or to change.
    let (eve, _) = app.founder("eve@example.org", "Other").await;
    let res = eve
        .post(
            "/api/v1/contacts",
            serde_json::json!({"email": "secret@example.org"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (theirs, _) = mauntic_tests::accepted(res).await;
    assert_eq!(
        console_get(&app, &member, &format!("/contacts/{theirs}")).await,
        404
    );
    assert_eq!(
        console_post(
            &app,
            &member,
            &format!("/contacts/{theirs}/edit"),
            &[("email", "stolen@example.org")]
        )
        .await,
        404
    );
    assert_eq!(
        console_get(&app, &member, &format!("/contacts/{theirs}/edit")).await,
        404
    );
    // And without a session, every page sends to the sign-in page.
    let anonymous = app.browser();
    for path in ["/", "/contacts", "/segments", "/settings", "/deliveries"] {
        let res = anonymous.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"));
    }
}

#[tokio::test]
async fn a_csv_is_uploaded_mapped_with_a_preview_imported_and_its_failed_rows_shown() {
    let app = spawn_app().await;
    let (owner, _) = app.founder("owner@example.org", "Acme").await;
    let res = owner
        .post(
            "/api/v1/fields",
            serde_json::json!({"key": "plan", "label": "Plan", "type": "select", "options": ["free", "pro"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let dir = std::env::temp_dir().join(format!("mauntic-import-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("people.csv");
    std::fs::write(
        &csv,
        "E-mail,First Name,Plan,Notes\nada@example.org,Ada,pro,x\ngrace@example.org,Grace,free,y\nnot-an-email,Bad,pro,z\n",
    )
    .unwrap();

    let b = Chromium::start(&app.base).await;
    SignInPage::open(&b)
        .await
        .sign_in("owner@example.org", PASSWORD)
        .await;
    b.expect_text("as owner").await;
    b.open("/imports").await;
    b.expect_text("No imports yet.").await;
    b.assert_accessible("imports").await;
    b.fill("file", csv.to_str().unwrap()).await;
    b.press("Upload").await;

    // The mapping guesses from the header and shows the first rows.
    b.expect_text("Map the columns of people.csv").await;
    b.expect_text("grace@example.org").await;
    b.assert_accessible("import mapping").await;
    b.screenshot("import-mapping").await;
    let chosen = |id: &'static str| {
        let b = &b;
        async move {
            b.client
                .find(fantoccini::Locator::Css(&format!("#{id}")))
                .await
                .unwrap()
                .prop("value")
                .await
                .unwrap()
                .unwrap_or_default()
        }
    };
    assert_eq!(chosen("map-0").await, "email");
    assert_eq!(chosen("map-1").await, "first_name");
    assert_eq!(chosen("map-2").await, "fields.plan");
    assert_eq!(chosen("map-3").await, "");
    // Without an email column the import cannot start: said on the page.
    b.choose("map-0", "").await;
    b.press("Start the import").await;
    b.expect_text("no column is mapped to email").await;
    b.choose("map-0", "email").await;
    b.fill("tags", "imported").await;
    b.press("Start the import").await;

    // The counts follow while it runs; it ends completed, the bad row listed with its line.
    b.expect_text("completed").await;
    assert_eq!(b.text_of(".created").await, "2");
    assert_eq!(b.text_of(".failed").await, "1");
    b.expect_text("Rows that failed").await;
    b.expect_text("not-an-email").await;
    b.assert_accessible("import").await;
    b.open("/contacts?tag=imported").await;
    b.expect_text("ada@example.org").await;
    b.expect_text("grace@example.org").await;
    b.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
