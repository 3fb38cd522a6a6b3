//! Uniqueness across aggregates: a value (an email, an API key's digest, an OpenID subject)
//! claimed by one owner at a time, before the command that makes it theirs.
//!
//! The claim is a single `INSERT … ON CONFLICT DO NOTHING`, so of two concurrent claims
//! exactly one wins. A claim whose command then fails is released; a claim left behind by
//! a crash (its owner's stream never got an event) is taken over after [`ABANDONED_AFTER`].

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::StoreError;

/// How old a claim must be, with no stream behind it, to count as abandoned.
pub const ABANDONED_AFTER_SECS: i64 = 60;

/// The kinds of unique values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A user's email address (lower case) → the user.
    UserEmail,
    /// An API key's digest → the key, in its organization.
    ApiKey,
    /// An OpenID Connect `issuer sub` pair → the user.
    OidcSubject,
    /// A contact's email within its organization (`<tenant>:<email>`) → the contact.
    ContactEmail,
    /// A unique custom field's value (`<tenant>:<key>:<value>`) → the contact.
    ContactField,
}

impl Scope {
    /// The scope's name in the `reservations` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UserEmail => "user_email",
            Scope::ApiKey => "api_key",
            Scope::OidcSubject => "oidc_subject",
            Scope::ContactEmail => "contact_email",
            Scope::ContactField => "contact_field",
        }
    }

    /// The aggregate type whose stream proves a claim is in use.
    fn aggregate_type(self) -> &'static str {
        match self {
            Scope::UserEmail | Scope::OidcSubject => "user",
            Scope::ApiKey => "organization",
            Scope::ContactEmail | Scope::ContactField => "contact",
        }
    }
}

/// Who holds a value: the tenant and the entity (user, or key of an organization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub tenant_id: Uuid,
    pub owner_id: Uuid,
}

/// Claims `value` for `holder`. Returns the holder that has it afterwards: `holder` itself
/// if the claim succeeded (or it already held it), someone else's otherwise.
pub async fn claim(
    pool: &PgPool,
    scope: Scope,
    value: &str,
    holder: Holder,
) -> Result<Holder, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO reservations (scope, value, tenant_id, owner_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(scope.as_str())
    .bind(value)
    .bind(holder.tenant_id)
    .bind(holder.owner_id)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(holder);
    }
    // Taken: by a live owner, or abandoned by a command that never appended.
    let taken_over = sqlx::query(
        "UPDATE reservations r SET tenant_id = $3, owner_id = $4, claimed_at = now() \
         WHERE r.scope = $1 AND r.value = $2 \
           AND r.claimed_at < now() - make_interval(secs => $6) \
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = $5 \
                 AND e.aggregate_id = r.tenant_id::text || ':' || r.owner_id::text)",
    )
    .bind(scope.as_str())
    .bind(value)
    .bind(holder.tenant_id)
    .bind(holder.owner_id)
    .bind(scope.aggregate_type())
    .bind(ABANDONED_AFTER_SECS as f64)
    .execute(pool)
    .await?
    .rows_affected();
    if taken_over == 1 {
        return Ok(holder);
    }
    Ok(lookup(pool, scope, value).await?.unwrap_or(holder))
}

/// Claims many values of one scope at once (bulk creation: imports), each for its own
/// holder, and returns who holds each value afterwards. At most three statements whatever
/// the number of values: one `INSERT … ON CONFLICT DO NOTHING RETURNING` over all of them (in
/// value order, so two bulk claims never wait on each other crosswise) and, only for values
/// someone else held, one take-over of abandoned claims (as [`claim`] does) and one read of
/// the holders.
///
/// Run it in the transaction that appends the events which use the values: the claims then
/// commit with the events or not at all, and a concurrent [`claim`] of one of the values
/// waits for that transaction and then sees its holder.
pub async fn claim_many(
    conn: &mut PgConnection,
    scope: Scope,
    claims: &[(String, Holder)],
) -> Result<HashMap<String, Holder>, StoreError> {
    if claims.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sorted: Vec<&(String, Holder)> = claims.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let columns = |rows: &[&(String, Holder)]| {
        let values: Vec<String> = rows.iter().map(|(v, _)| v.clone()).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|(_, h)| h.tenant_id).collect();
        let owners: Vec<Uuid> = rows.iter().map(|(_, h)| h.owner_id).collect();
        (values, tenants, owners)
    };
    let (values, tenants, owners) = columns(&sorted);
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO reservations (scope, value, tenant_id, owner_id) \
         SELECT $1, u.v, u.t, u.o FROM UNNEST($2::text[], $3::uuid[], $4::uuid[]) AS u(v, t, o) \
         ORDER BY u.v ON CONFLICT DO NOTHING RETURNING value",
    )
    .bind(scope.as_str())
    .bind(&values)
    .bind(&tenants)
    .bind(&owners)
    .fetch_all(&mut *conn)
    .await?;
    let mut held: HashMap<String, Holder> = HashMap::with_capacity(claims.len());
    let inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
    let mut taken = Vec::new();
    for claim in sorted {
        if inserted.contains(&claim.0) {
            held.insert(claim.0.clone(), claim.1);
        } else {
            taken.push(claim);
        }
    }
    if taken.is_empty() {
        return Ok(held);
    }
    // Values someone holds: take over abandoned ones, then read who holds each.
    let (values, tenants, owners) = columns(&taken);
    sqlx::query(
        "UPDATE reservations r SET tenant_id = u.t, owner_id = u.o, claimed_at = now() \
         FROM UNNEST($2::text[], $3::uuid[], $4::uuid[]) AS u(v, t, o) \
         WHERE r.scope = $1 AND r.value = u.v AND (r.tenant_id, r.owner_id) <> (u.t, u.o) \
           AND r.claimed_at < now() - make_interval(secs => $6) \
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = $5 \
                 AND e.aggregate_id = r.tenant_id::text || ':' || r.owner_id::text)",
    )
    .bind(scope.as_str())
    .bind(&values)
    .bind(&tenants)
    .bind(&owners)
    .bind(scope.aggregate_type())
    .bind(ABANDONED_AFTER_SECS as f64)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(String, Uuid, Uuid)> = sqlx::query_as(
        "SELECT value, tenant_id, owner_id FROM reservations WHERE scope = $1 AND value = ANY($2)",
    )
    .bind(scope.as_str())
    .bind(&values)
    .fetch_all(&mut *conn)
    .await?;
    for (v, tenant_id, owner_id) in rows {
        held.insert(
            v,
            Holder {
                tenant_id,
                owner_id,
            },
        );
    }
    Ok(held)
}

/// Gives up many values at once (claims of a bulk claim whose entity was not created).
pub async fn release_many(
    conn: &mut PgConnection,
    scope: Scope,
    claims: &[(String, Holder)],
) -> Result<(), StoreError> {
    if claims.is_empty() {
        return Ok(());
    }
    let values: Vec<&str> = claims.iter().map(|(v, _)| v.as_str()).collect();
    let owners: Vec<Uuid> = claims.iter().map(|(_, h)| h.owner_id).collect();
    sqlx::query(
        "DELETE FROM reservations r USING UNNEST($2::text[], $3::uuid[]) AS u(v, o) \
         WHERE r.scope = $1 AND r.value = u.v AND r.owner_id = u.o",
    )
    .bind(scope.as_str())
    .bind(&values)
    .bind(&owners)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives `value` up, if `holder` holds it.
pub async fn release(
    pool: &PgPool,
    scope: Scope,
    value: &str,
    holder: Holder,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM reservations WHERE scope = $1 AND value = $2 AND tenant_id = $3 AND owner_id = $4",
    )
    .bind(scope.as_str())
    .bind(value)
    .bind(holder.tenant_id)
    .bind(holder.owner_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Who holds `value`, if anyone.
pub async fn lookup(
    pool: &PgPool,
    scope: Scope,
    value: &str,
) -> Result<Option<Holder>, StoreError> {
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, owner_id FROM reservations WHERE scope = $1 AND value = $2",
    )
    .bind(scope.as_str())
    .bind(value)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(tenant_id, owner_id)| Holder {
        tenant_id,
        owner_id,
    }))
}

/// Hands every value of `scope` that `from` holds to `to` (the same tenant): a merged
/// contact's email and unique values then resolve to the survivor. Runs in the caller's
/// transaction, so it commits with the merge's events or not at all.
pub async fn transfer<'e>(
    db: impl PgExecutor<'e>,
    scope: Scope,
    from: Holder,
    to: Holder,
) -> Result<u64, StoreError> {
    let moved = sqlx::query(
        "UPDATE reservations SET tenant_id = $4, owner_id = $5 \
         WHERE scope = $1 AND tenant_id = $2 AND owner_id = $3",
    )
    .bind(scope.as_str())
    .bind(from.tenant_id)
    .bind(from.owner_id)
    .bind(to.tenant_id)
    .bind(to.owner_id)
    .execute(db)
    .await?
    .rows_affected();
    Ok(moved)
}

/// Deletes every value of `scopes` held by `owners` of `tenant` (an erased contact's email
/// and unique values, which are clear text). Runs in the caller's transaction.
pub async fn release_owned<'e>(
    db: impl PgExecutor<'e>,
    scopes: &[Scope],
    tenant: Uuid,
    owners: &[Uuid],
) -> Result<u64, StoreError> {
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let n = sqlx::query(
        "DELETE FROM reservations WHERE scope = ANY($1::text[]) AND tenant_id = $2 \
           AND owner_id = ANY($3::uuid[])",
    )
    .bind(&scopes)
    .bind(tenant)
    .bind(owners)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n)
}
