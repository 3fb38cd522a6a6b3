//! The rule language has two evaluators — SQL over the contacts read model (counts, previews,
//! audiences, refreshes) and in memory over one contact (the evaluator following changes) —
//! and they must agree on every contact and every rule. Random contacts (including values of
//! the wrong type and missing values) and random rules, checked against each other; proptest
//! shrinks a disagreement to a small example.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::field::{FieldDefinition, FieldType};
use domain::segment::eval::instant_text;
use domain::segment::{Checked, Rule};
use proptest::prelude::*;
use serde_json::{json, Value};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap() + Duration::microseconds(123_456)
}

const SEGMENTS: [u128; 2] = [0xA, 0xB];
const TEXTS: &[&str] = &[
    "ada",
    "Ada",
    "ADA",
    "émile",
    "Émile",
    "bob smith",
    "",
    "x",
    "ad",
];
/// Operands of text conditions: the values themselves and pieces from their middles and ends.
const NEEDLES: &[&str] = &[
    "ada",
    "Ada",
    "ADA",
    "émile",
    "Émile",
    "bob smith",
    "",
    "x",
    "ad",
    "da",
    "mile",
    "MILE",
    "smith",
    "b",
    "É",
];
const TYPES: &[&str] = &["EmailOpened", "EmailClicked"];

fn schema() -> std::collections::BTreeMap<String, FieldDefinition> {
    let def = |key: &str, t: FieldType, options: &[&str]| {
        (
            key.to_owned(),
            FieldDefinition {
                key: key.into(),
                label: key.into(),
                field_type: t,
                required: false,
                default: None,
                options: options.iter().map(|o| o.to_string()).collect(),
                unique: false,
            },
        )
    };
    [
        def("plan", FieldType::Select, &["free", "pro", "team"]),
        def("score", FieldType::Number, &[]),
        def("bio", FieldType::Text, &[]),
        def("birthday", FieldType::Date, &[]),
        def("renews_at", FieldType::Datetime, &[]),
        def("news", FieldType::Multiselect, &["a", "b", "c"]),
        def("active", FieldType::Boolean, &[]),
        def("country", FieldType::Country, &[]),
    ]
    .into()
}

fn pick<T: Clone>(items: &[T], i: u32) -> T {
    items[i as usize % items.len()].clone()
}

fn day(offset: i64) -> String {
    (now().date_naive() + Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A stored value for a custom field, from a seed: mostly the right type, sometimes not.
fn value_for(key: &str, s: u32) -> Option<Value> {
    let wrong = s.is_multiple_of(11);
    let s = s / 11;
    if s.is_multiple_of(5) {
        return None;
    }
    if wrong {
        return Some(pick(
            &[
                json!(3),
                json!("garbage"),
                json!(true),
                json!(["a"]),
                json!("2024-13-45"),
                json!(null),
            ],
            s,
        ));
    }
    Some(match key {
        "plan" => json!(pick(&["free", "pro", "team", "Pro"], s)),
        "score" => json!(f64::from(s % 13) / 2.0 - 3.0),
        "bio" => json!(pick(TEXTS, s)),
        "birthday" => {
            let years_back = i64::from(s % 3) * 365;
            json!(day(i64::from(s % 41) - 20 - years_back))
        }
        "renews_at" => {
            let t = now()
                + Duration::hours(i64::from(s % 200) - 100)
                + Duration::milliseconds(i64::from(s % 3) * 250);
            json!(instant_text(t))
        }
        "news" => {
            let all = ["a", "b", "c"];
            let items: Vec<&str> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| s & (1 << i) != 0)
                .map(|(_, x)| *x)
                .collect();
            json!(items)
        }
        "active" => json!(s.is_multiple_of(2)),
        _ => json!(pick(&["FR", "DE", "US"], s)),
    })
}

/// One random contact, as seeds.
#[derive(Debug, Clone)]
struct Seed(Vec<u32>);

fn contact_json(tenant: Uuid, id: Uuid, Seed(s): &Seed) -> Value {
    let g = |i: usize| s[i % s.len()];
    let mut fields = serde_json::Map::new();
    for (i, key) in [
        "plan",
        "score",
        "bio",
        "birthday",
        "renews_at",
        "news",
        "active",
        "country",
    ]
    .iter()
    .enumerate()
    {
        if let Some(v) = value_for(key, g(i)) {
            fields.insert((*key).to_owned(), v);
        }
    }
    let tags: Vec<&str> = ["vip", "beta", "Vip"]
        .iter()
        .enumerate()
        .filter(|(i, _)| g(8) & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect();
    let mut tags = tags;
    tags.sort();
    let consent = |seed: u32| -> Value {
        let mut m = serde_json::Map::new();
        for (i, ch) in ["email", "sms", "push"].iter().enumerate() {
            let status = pick(
                &[None, Some("opted_in"), Some("opted_out"), Some("unknown")],
                seed >> (2 * i),
            );
            if let Some(st) = status {
                m.insert(
                    (*ch).into(),
                    json!({"status": st, "source": "api", "at": "2026-01-01T00:00:00Z"}),
                );
            }
        }
        Value::Object(m)
    };
    let dnc = |seed: u32| -> Value {
        let mut m = serde_json::Map::new();
        for (i, ch) in ["email", "sms", "push"].iter().enumerate() {
            let reason = pick(
                &[None, None, Some("bounced"), Some("manual")],
                seed >> (2 * i),
            );
            if let Some(r) = reason {
                m.insert((*ch).into(), json!({"reason": r, "note": null}));
            }
        }
        Value::Object(m)
    };
    json!({
        "tenant_id": tenant, "id": id,
        "email": format!("{}{}@example.org", pick(&["ada", "bob", "emile"], g(9)), g(10) % 100),
        "first_name": pick(&[None, Some("Ada"), Some("ada"), Some("Émile"), Some("")], g(11)),
        "last_name": pick(&[None, Some("Lovelace"), Some("smith")], g(12)),
        "phone": pick(&[None, Some("+33612345678")], g(13)),
        "time_zone": pick(&[None, Some("Europe/Paris"), Some("UTC")], g(14)),
        "locale": pick(&[None, Some("fr-FR")], g(15)),
        "fields": fields,
        "tags": tags,
        "consent": consent(g(16)),
        "do_not_contact": dnc(g(17)),
        "frequency": {},
        "stage": pick(&[None, Some("lead"), Some("customer"), Some("Lead")], g(18)),
        "points": i64::from(g(19) % 7) - 3,
        "company_ids": [],
        "primary_company_id": null,
        "owner_id": null,
        "created_at": now() - Duration::hours(i64::from(g(20) % 2000)),
        "updated_at": now(),
        "version": 1,
    })
}

/// A leaf condition from seeds.
fn leaf(a: u32, b: u32, c: u32) -> Value {
    let seg = |i: u32| Uuid::from_u128(pick(&SEGMENTS, i));
    match a % 8 {
        0 => json!({"tag": pick(&["vip", "beta", "Vip", "none"], b)}),
        1 => {
            json!({"consent": {"channel": pick(&["email", "sms", "push"], b), "status": pick(&["opted_in", "opted_out", "unknown"], c)}})
        }
        2 => {
            let ch = pick(&["email", "sms", "push"], b);
            match c % 3 {
                0 => json!({"do_not_contact": {"channel": ch}}),
                _ => {
                    json!({"do_not_contact": {"channel": ch, "reason": pick(&["bounced", "manual", "complaint"], c)}})
                }
            }
        }
        3 => json!({"segment": seg(b)}),
        4 => {
            let mut e = json!({"type": pick(TYPES, b), "at_least": 1 + c % 3});
            if c.is_multiple_of(2) {
                e["within_days"] = json!(1 + (c / 2) % 20);
            }
            json!({"event": e})
        }
        _ => field_condition(b, c),
    }
}

fn field_condition(b: u32, c: u32) -> Value {
    let names = [
        "first_name",
        "last_name",
        "email",
        "stage",
        "points",
        "created_at",
        "time_zone",
        "fields.plan",
        "fields.score",
        "fields.bio",
        "fields.birthday",
        "fields.renews_at",
        "fields.news",
        "fields.active",
        "fields.country",
        "phone",
        "locale",
    ];
    let name = pick(&names, b);
    let kind_ops: &[&str] = match name {
        "first_name" | "last_name" | "email" | "fields.bio" | "phone" => &[
            "equals",
            "not_equals",
            "contains",
            "not_contains",
            "starts_with",
            "ends_with",
            "in",
            "not_in",
            "is_set",
            "is_empty",
        ],
        "stage" | "time_zone" | "fields.plan" | "fields.country" | "locale" => {
            &["equals", "not_equals", "in", "not_in", "is_set", "is_empty"]
        }
        "points" | "fields.score" => &[
            "equals",
            "not_equals",
            "gt",
            "gte",
            "lt",
            "lte",
            "between",
            "in",
            "not_in",
            "is_set",
            "is_empty",
        ],
        "fields.active" => &["equals", "is_set", "is_empty"],
        "fields.news" => &[
            "contains",
            "not_contains",
            "in",
            "contains_all",
            "is_set",
            "is_empty",
        ],
        _ => &[
            "equals",
            "before",
            "after",
            "between",
            "within_last_days",
            "within_next_days",
            "anniversary_in_days",
            "is_set",
            "is_empty",
        ],
    };
    let op = pick(kind_ops, c);
    let s = c / 16;
    let text_values: &[&str] = match name {
        "stage" => &["lead", "customer", "Lead"],
        "time_zone" => &["Europe/Paris", "UTC"],
        "fields.plan" => &["free", "pro", "team", "Pro"],
        "fields.country" => &["FR", "DE"],
        "fields.news" => &["a", "b", "c"],
        "locale" => &["fr-FR"],
        _ => NEEDLES,
    };
    let number = |i: u32| json!(f64::from(i % 13) / 2.0 - 3.0);
    let time = |i: u32| -> Value {
        let offset = i64::from(i % 41) - 20;
        if name == "fields.birthday" {
            json!(day(offset))
        } else {
            json!(instant_text(now() + Duration::hours(offset * 5)))
        }
    };
    let mut cond = json!({"name": name, "op": op});
    match (op, name) {
        ("is_set" | "is_empty", _) => {}
        ("within_last_days" | "within_next_days", _) => cond["days"] = json!(1 + s % 30),
        ("anniversary_in_days", _) => cond["days"] = json!(s % 30),
        ("in" | "not_in" | "contains_all", "points" | "fields.score") => {
            cond["values"] = json!([number(s), number(s / 13)]);
        }
        ("in" | "not_in" | "contains_all", _) => {
            cond["values"] = json!([pick(text_values, s), pick(text_values, s / 7)]);
        }
        ("between", "points" | "fields.score") => {
            let (x, y) = (
                f64::from(s % 13) / 2.0 - 3.0,
                f64::from((s / 13) % 13) / 2.0 - 3.0,
            );
            cond["values"] = json!([x.min(y), x.max(y)]);
        }
        ("between", _) => {
            let (x, y) = (time(s), time(s / 41));
            let (lo, hi) = if x.as_str() <= y.as_str() {
                (x, y)
            } else {
                (y, x)
            };
            cond["values"] = json!([lo, hi]);
        }
        ("equals", "fields.active") => cond["value"] = json!(s.is_multiple_of(2)),
        (_, "points" | "fields.score") => cond["value"] = number(s),
        (_, "created_at" | "fields.birthday" | "fields.renews_at") => cond["value"] = time(s),
        _ => cond["value"] = json!(pick(text_values, s)),
    }
    json!({"field": cond})
}

fn rule_strategy() -> impl Strategy<Value = Value> {
    let leaf = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| leaf(a, b, c));
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"all": v})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"any": v})),
            inner.prop_map(|r| json!({"not": r})),
        ]
    })
}

struct Db {
    pool: PgPool,
    url: String,
}

async fn database() -> Db {
    let settings = mauntic_tests::fresh_settings(&Default::default());
    event_store::store::create_database_if_missing(&settings.database_url)
        .await
        .unwrap();
    let pool = event_store::store::connect(&settings.database_url, 4)
        .await
        .unwrap();
    event_store::store::migrate(&pool).await.unwrap();
    Db {
        pool,
        url: settings.database_url,
    }
}

/// Writes the contacts (and their memberships and timeline events) for a fresh tenant.
async fn load(pool: &PgPool, tenant: Uuid, contacts: &[Seed]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for (n, seed) in contacts.iter().enumerate() {
        let id = Uuid::from_u128((u128::from(n as u32) << 64) | 1);
        ids.push(id);
        sqlx::query("INSERT INTO contacts SELECT * FROM jsonb_populate_record(NULL::contacts, $1)")
            .bind(contact_json(tenant, id, seed))
            .execute(pool)
            .await
            .unwrap();
        let s = seed.0[21 % seed.0.len()];
        for (i, seg) in SEGMENTS.iter().enumerate() {
            if s & (1 << i) != 0 {
                sqlx::query("INSERT INTO segment_members VALUES ($1, $2, $3, now())")
                    .bind(tenant)
                    .bind(Uuid::from_u128(*seg))
                    .bind(id)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        for k in 0..(s >> 2) % 5 {
            let t = seed.0[(22 + k as usize) % seed.0.len()];
            sqlx::query(
                "INSERT INTO contact_timeline (tenant_id, contact_id, tx_id, global_position, \
                 event_id, recorded_at, aggregate_type, event_type, actor, data) \
                 VALUES ($1, $2, $3, $3, gen_random_uuid(), $4, 'delivery', $5, NULL, '{}')",
            )
            .bind(tenant)
            .bind(id)
            .bind(i64::from(k))
            .bind(now() - Duration::hours(i64::from(t % 800)))
            .bind(pick(TYPES, t))
            .execute(pool)
            .await
            .unwrap();
        }
    }
    ids
}

async fn by_sql(pool: &PgPool, tenant: Uuid, rule: &Checked) -> BTreeSet<Uuid> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT c.id FROM contacts c WHERE c.tenant_id = ");
    qb.push_bind(tenant).push(" AND ");
    projections::segment_sql::push_rule(&mut qb, rule, now());
    let rows: Vec<(Uuid,)> = qb.build_query_as().fetch_all(pool).await.unwrap();
    rows.into_iter().map(|(id,)| id).collect()
}

async fn in_memory(pool: &PgPool, tenant: Uuid, ids: &[Uuid], rule: &Checked) -> BTreeSet<Uuid> {
    let rows = projections::contacts::get_many(pool, tenant, ids, false)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let members = commands::segments::membership::current(&mut conn, tenant, ids)
        .await
        .unwrap();
    let types: Vec<String> = TYPES.iter().map(|t| t.to_string()).collect();
    let events = projections::contacts::timeline_events(pool, tenant, ids, &types)
        .await
        .unwrap();
    rows.into_iter()
        .filter(|r| {
            let evs = events
                .iter()
                .filter(|(c, _, _)| *c == r.id)
                .map(|(_, t, at)| (t.clone(), *at))
                .collect();
            r.facts(members.get(&r.id).cloned().unwrap_or_default(), evs)
                .matches(rule, now())
        })
        .map(|r| r.id)
        .collect()
}

#[test]
fn sql_and_in_memory_evaluation_agree_on_random_contacts_and_rules() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(database());
    let schema = schema();
    let config = ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    };
    let strategy = (
        prop::collection::vec(
            prop::collection::vec(any::<u32>(), 26).prop_map(Seed),
            1..25,
        ),
        prop::collection::vec(rule_strategy(), 1..8),
    );
    // How many rules split the contacts (some match, some not): the test must not pass
    // because every rule matches everyone or no one.
    let split = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&strategy, |(contacts, rules)| {
        rt.block_on(async {
            let tenant = Uuid::new_v4();
            let ids = load(&db.pool, tenant, &contacts).await;
            for raw in &rules {
                let rule: Rule = serde_json::from_value(raw.clone()).expect("a rule");
                let checked = rule
                    .check(&schema)
                    .unwrap_or_else(|e| panic!("generated rule refused: {e:?}\n{raw}"));
                let sql = by_sql(&db.pool, tenant, &checked).await;
                let mem = in_memory(&db.pool, tenant, &ids, &checked).await;
                prop_assert_eq!(&sql, &mem, "rule {}", raw);
                total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if !sql.is_empty() && sql.len() < ids.len() {
                    split.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        })
    });
    rt.block_on(async {
        db.pool.close().await;
        mauntic_tests::drop_database(&db.url).await;
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (split, total) = (split.into_inner(), total.into_inner());
    assert!(
        split * 4 > total,
        "only {split} of {total} rules split the contacts"
    );
}
