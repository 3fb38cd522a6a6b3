#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use cqrs_es::test::TestFramework;
use serde_json::json;

use super::render::{self, format_number, percent_encode, title_case, Known};
use super::*;

type TemplateTest = TestFramework<Template>;

fn known() -> Known {
    Known {
        fields: [
            "plan".to_owned(),
            "renews_at".to_owned(),
            "credit".to_owned(),
        ]
        .into(),
    }
}

fn sms(body: &str) -> Content {
    Content::Sms { body: body.into() }
}

fn checked(content: Content) -> CheckedContent {
    render::check(content, &known()).unwrap()
}

fn created() -> TemplateEvent {
    TemplateEvent::TemplateCreated {
        name: "Reminder".into(),
        channel: Channel::Sms,
    }
}

fn saved(version: u32, body: &str) -> TemplateEvent {
    TemplateEvent::TemplateVersionSaved {
        version,
        content: sms(body),
    }
}

// ---- the aggregate ----

#[test]
fn a_template_is_created_with_its_name_and_channel() {
    TemplateTest::with(())
        .given_no_previous_events()
        .when(TemplateCommand::Create {
            name: " Reminder ".into(),
            channel: Channel::Sms,
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn a_template_cannot_be_created_twice() {
    TemplateTest::with(())
        .given(vec![created()])
        .when(TemplateCommand::Create {
            name: "Again".into(),
            channel: Channel::Sms,
        })
        .then_expect_error(TemplateError::AlreadyExists);
}

#[test]
fn a_template_needs_a_name() {
    TemplateTest::with(())
        .given_no_previous_events()
        .when(TemplateCommand::Create {
            name: " \t".into(),
            channel: Channel::Email,
        })
        .then_expect_error(TemplateError::BadName);
}

#[test]
fn each_save_is_the_next_version() {
    TemplateTest::with(())
        .given(vec![created(), saved(1, "Hi")])
        .when(TemplateCommand::SaveVersion {
            content: checked(sms("Hi {{contact.first_name}}")),
        })
        .then_expect_events(vec![saved(2, "Hi {{contact.first_name}}")]);
}

#[test]
fn content_of_another_channel_is_refused() {
    TemplateTest::with(())
        .given(vec![created()])
        .when(TemplateCommand::SaveVersion {
            content: checked(Content::email("S".into(), None, "<p>x</p>".into(), None)),
        })
        .then_expect_error(TemplateError::WrongChannel {
            expected: "sms",
            given: "email",
        });
}

#[test]
fn a_missing_template_refuses_commands() {
    TemplateTest::with(())
        .given_no_previous_events()
        .when(TemplateCommand::Rename { name: "x".into() })
        .then_expect_error(TemplateError::NotFound);
}

#[test]
fn a_saved_version_is_published() {
    TemplateTest::with(())
        .given(vec![created(), saved(1, "a")])
        .when(TemplateCommand::Publish { version: 1 })
        .then_expect_events(vec![TemplateEvent::TemplateVersionPublished {
            version: 1,
            previous: None,
        }]);
}

#[test]
fn publishing_another_version_replaces_the_published_one() {
    TemplateTest::with(())
        .given(vec![
            created(),
            saved(1, "a"),
            saved(2, "b"),
            TemplateEvent::TemplateVersionPublished {
                version: 1,
                previous: None,
            },
        ])
        .when(TemplateCommand::Publish { version: 2 })
        .then_expect_events(vec![TemplateEvent::TemplateVersionPublished {
            version: 2,
            previous: Some(1),
        }]);
}

#[test]
fn publishing_the_published_version_changes_nothing() {
    TemplateTest::with(())
        .given(vec![
            created(),
            saved(1, "a"),
            TemplateEvent::TemplateVersionPublished {
                version: 1,
                previous: None,
            },
        ])
        .when(TemplateCommand::Publish { version: 1 })
        .then_expect_events(vec![]);
}

#[test]
fn a_version_not_saved_cannot_be_published() {
    TemplateTest::with(())
        .given(vec![created(), saved(1, "a")])
        .when(TemplateCommand::Publish { version: 2 })
        .then_expect_error(TemplateError::NoSuchVersion(2));
}

#[test]
fn a_template_is_renamed() {
    TemplateTest::with(())
        .given(vec![created()])
        .when(TemplateCommand::Rename {
            name: "Reminder 2".into(),
        })
        .then_expect_events(vec![TemplateEvent::TemplateRenamed {
            name: "Reminder 2".into(),
        }]);
}

#[test]
fn renaming_to_the_same_name_changes_nothing() {
    TemplateTest::with(())
        .given(vec![created()])
        .when(TemplateCommand::Rename {
            name: "Reminder".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_rename_needs_a_name() {
    TemplateTest::with(())
        .given(vec![created()])
        .when(TemplateCommand::Rename { name: "".into() })
        .then_expect_error(TemplateError::BadName);
}

#[test]
fn a_template_is_deleted() {
    TemplateTest::with(())
        .given(vec![created()])
        .when(TemplateCommand::Delete)
        .then_expect_events(vec![TemplateEvent::TemplateDeleted {}]);
}

#[test]
fn a_deleted_template_refuses_every_command() {
    let given = || vec![created(), saved(1, "a"), TemplateEvent::TemplateDeleted {}];
    for command in [
        TemplateCommand::SaveVersion {
            content: checked(sms("b")),
        },
        TemplateCommand::Publish { version: 1 },
        TemplateCommand::Rename { name: "x".into() },
        TemplateCommand::Delete,
    ] {
        TemplateTest::with(())
            .given(given())
            .when(command)
            .then_expect_error(TemplateError::Deleted);
    }
}

#[test]
fn event_payloads_keep_their_json_shape() {
    let all = [
        created(),
        saved(1, "Hi"),
        TemplateEvent::TemplateVersionPublished {
            version: 1,
            previous: None,
        },
        TemplateEvent::TemplateRenamed { name: "N".into() },
        TemplateEvent::TemplateDeleted {},
    ];
    let json: Vec<_> = all
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        json,
        vec![
            json!({"TemplateCreated": {"name": "Reminder", "channel": "sms"}}),
            json!({"TemplateVersionSaved": {"version": 1, "content": {"channel": "sms", "body": "Hi"}}}),
            json!({"TemplateVersionPublished": {"version": 1, "previous": null}}),
            json!({"TemplateRenamed": {"name": "N"}}),
            json!({"TemplateDeleted": {}}),
        ]
    );
}

// ---- checking ----

#[test]
fn a_syntax_error_names_its_part_line_and_column() {
    let content = Content::email(
        "Hello".into(),
        None,
        "<p>Hi</p>\n<p>{{#if contact.first_name}}x</p>".into(),
        Some("ok".into()),
    );
    let errors = render::check(content, &known()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].part, "html");
    assert_eq!(errors[0].line, Some(2));
    assert!(errors[0].column.is_some(), "{errors:?}");
}

#[test]
fn an_unknown_custom_field_is_refused_where_it_is_used() {
    let content = sms("Hi {{contact.first_name}},\nyour {{contact.fields.colour}}");
    let errors = render::check(content, &known()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].part, "body");
    assert_eq!((errors[0].line, errors[0].column), (Some(2), Some(6)));
    assert!(
        errors[0].message.contains("contact.fields.colour"),
        "{errors:?}"
    );
}

#[test]
fn unknown_top_level_paths_and_helpers_are_refused() {
    for body in [
        "{{customer.name}}",
        "{{first_name}}",
        "{{contact.nickname}}",
        "{{shout contact.email}}",
        "{{> footer}}",
    ] {
        assert!(render::check(sms(body), &known()).is_err(), "{body}");
    }
}

#[test]
fn paths_inside_blocks_are_checked_against_their_scope() {
    let ok = "{{#with contact}}{{first_name}} {{fields.plan}}{{/with}}\
              {{#each contact.tags}}{{this}} {{@index}} {{@root.contact.email}}{{/each}}\
              {{#if contact.fields.plan}}{{upper contact.fields.plan}}{{else}}-{{/if}}\
              {{message.campaign.name}} {{organization.name}}";
    assert!(render::check(sms(ok), &known()).is_ok());
    let bad = "{{#with contact}}{{fields.colour}}{{/with}}";
    assert!(render::check(sms(bad), &known()).is_err());
    let bad = "{{#each contact.tags}}{{@root.contact.fields.colour}}{{/each}}";
    assert!(render::check(sms(bad), &known()).is_err());
}

// ---- rendering ----

fn context() -> serde_json::Value {
    let mut c = json!({
        "contact": {
            "email": "ada@example.org", "first_name": "ada", "last_name": null,
            "time_zone": "Europe/Berlin", "locale": "de-DE",
            "fields": {"credit": 1234567.5, "renews_at": "2026-12-01T23:30:00Z"},
            "tags": ["vip", "beta"]
        },
        "organization": {"name": "Acme & Co"},
        "message": {}
    });
    render::fill_fields(&mut c, &known());
    c
}

fn one(body: &str) -> String {
    let content = checked(sms(body)).into_content();
    render::render(&content, &context()).unwrap().parts["body"].clone()
}

#[test]
fn helpers_format_for_the_contact() {
    assert_eq!(one("{{title contact.first_name}}"), "Ada");
    assert_eq!(one("{{upper contact.first_name}}"), "ADA");
    assert_eq!(one("{{lower \"ÄB\"}}"), "äb");
    assert_eq!(one("{{default contact.last_name \"friend\"}}"), "friend");
    assert_eq!(one("{{default contact.fields.plan \"free\"}}"), "free");
    assert_eq!(one("{{default contact.first_name \"x\"}}"), "ada");
    // 23:30 UTC is 00:30 the next day in Berlin.
    assert_eq!(
        one("{{date contact.fields.renews_at \"%d.%m.%Y %H:%M\"}}"),
        "02.12.2026 00:30"
    );
    assert_eq!(
        one("{{date contact.fields.renews_at tz=\"America/New_York\"}}"),
        "2026-12-01 18:30"
    );
    assert_eq!(one("{{date \"2026-03-04\" \"%d/%m\"}}"), "04/03");
    assert_eq!(one("{{number contact.fields.credit}}"), "1.234.567,50");
    assert_eq!(
        one("{{number contact.fields.credit decimals=0 locale=\"en\"}}"),
        "1,234,568"
    );
    assert_eq!(one("{{url_encode contact.email}}"), "ada%40example.org");
    assert_eq!(
        one("{{#each contact.tags}}[{{this}}]{{/each}}"),
        "[vip][beta]"
    );
    // Text parts are not HTML-escaped.
    assert_eq!(one("{{organization.name}}"), "Acme & Co");
}

#[test]
fn html_parts_are_escaped_and_text_parts_are_not() {
    let content = checked(Content::email(
        "{{organization.name}}".into(),
        None,
        "<p>{{organization.name}}</p>".into(),
        None,
    ))
    .into_content();
    let out = render::render(&content, &context()).unwrap();
    assert_eq!(out.parts["subject"], "Acme & Co");
    assert_eq!(out.parts["html"], "<p>Acme &amp; Co</p>");
    assert_eq!(out.parts["text"], "Acme & Co");
    // Helpers' output is escaped in HTML parts too.
    let content = checked(Content::email(
        "s".into(),
        None,
        "{{upper organization.name}}|{{default contact.last_name \"<b>\"}}".into(),
        Some("t".into()),
    ))
    .into_content();
    let out = render::render(&content, &context()).unwrap();
    assert_eq!(out.parts["html"], "ACME &amp; CO|&lt;b&gt;");
}

#[test]
fn rendering_without_a_value_fails_in_strict_mode() {
    let content = checked(sms("{{contact.phone}}")).into_content();
    let errors = render::render(&content, &context()).unwrap_err();
    assert_eq!(errors[0].part, "body");
}

#[test]
fn bad_date_formats_are_render_errors_not_panics() {
    let content = checked(sms("{{date contact.fields.renews_at \"%Q\"}}")).into_content();
    assert!(render::render(&content, &context()).is_err());
}

#[test]
fn the_text_part_is_derived_from_the_html() {
    let c = Content::email(
        "S".into(),
        None,
        "<h1>Hello {{contact.first_name}}</h1><p>Your plan: <b>{{contact.fields.plan}}</b>.</p>\
         <ul><li>One</li><li>Two</li></ul>"
            .into(),
        None,
    );
    let Content::Email {
        text, text_derived, ..
    } = c
    else {
        panic!()
    };
    assert!(text_derived);
    assert_eq!(
        text,
        "# Hello {{contact.first_name}}\n\nYour plan: {{contact.fields.plan}}.\n* One\n* Two"
    );
}

#[test]
fn layout_tables_become_their_cells_text_in_order_without_borders() {
    // Email layouts are tables; their text part is the cells' text, read in order, not a
    // drawing of the grid (box-drawing borders made text parts mostly non-ASCII, base64-encoded
    // and three times as large).
    let c = Content::email(
        "S".into(),
        None,
        "<table width=\"100%\"><tr><td><h2>Story 1</h2><p>Lorem ipsum.</p></td>\
         <td><a href=\"https://example.org/1\">Read more</a></td></tr>\
         <tr><td colspan=\"2\">Footer</td></tr></table>"
            .into(),
        None,
    );
    let Content::Email { text, .. } = c else {
        panic!()
    };
    assert!(text.is_ascii(), "{text}");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {text}"))
    };
    assert!(at("Story 1") < at("Lorem ipsum.") && at("Lorem ipsum.") < at("Read more"));
    assert!(at("Read more") < at("Footer"));
    assert!(text.contains("https://example.org/1"), "{text}");
}

#[test]
fn numbers_follow_the_locale() {
    assert_eq!(format_number(1234.5, 2, "en-US"), "1,234.50");
    assert_eq!(format_number(1234.5, 2, "de"), "1.234,50");
    assert_eq!(format_number(1234.5, 2, "fr-FR"), "1\u{202f}234,50");
    assert_eq!(format_number(-1234567.0, 0, "en"), "-1,234,567");
    assert_eq!(format_number(999.0, 0, "de"), "999");
    assert_eq!(format_number(-0.001, 2, "en"), "0.00");
}

#[test]
fn words_are_title_cased_and_urls_encoded() {
    assert_eq!(
        title_case("ada LOVELACE-byron o'neil"),
        "Ada Lovelace-Byron O'neil"
    );
    assert_eq!(percent_encode("a b&c/ä"), "a%20b%26c%2F%C3%A4");
}

#[test]
fn push_and_webhook_parts_are_named() {
    let push = Content::Push {
        title: "t".into(),
        body: "b".into(),
        data: BTreeMap::from([("url".to_owned(), "{{contact.nope}}".to_owned())]),
    };
    let errors = render::check(push, &known()).unwrap_err();
    assert_eq!(errors[0].part, "data.url");
}

#[test]
fn a_webhook_renders_its_url_headers_and_body_as_text() {
    let content = checked(Content::Webhook {
        method: "POST".into(),
        url: "https://hooks.example/c?e={{url_encode contact.email}}".into(),
        headers: BTreeMap::from([("X-Org".to_owned(), "{{organization.name}}".to_owned())]),
        body: Some("{\"plan\": \"{{default contact.fields.plan \"free\"}}\"}".into()),
    })
    .into_content();
    let out = render::render(&content, &context()).unwrap();
    assert_eq!(
        out.parts,
        BTreeMap::from([
            (
                "url".to_owned(),
                "https://hooks.example/c?e=ada%40example.org".to_owned()
            ),
            ("headers.X-Org".to_owned(), "Acme & Co".to_owned()),
            ("body".to_owned(), "{\"plan\": \"free\"}".to_owned()),
        ])
    );
}
