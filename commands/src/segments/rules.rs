//! Checking a rule before it is saved (or previewed): its fields against the organization's
//! definitions, and the segments it refers to (they exist, and no rule refers back to the
//! segment being saved, however indirectly).

use std::collections::BTreeSet;

use domain::segment::{Checked, Rule, Segment};
use http_kit::problem::FieldProblem;
use http_kit::Problem;
use uuid::Uuid;

use crate::CommandState;

/// `rule` checked for `tenant`, for segment `saving` (none for a preview).
pub async fn check(
    s: &CommandState,
    tenant: Uuid,
    saving: Option<Uuid>,
    rule: &Rule,
) -> Result<Checked, Problem> {
    let schema = crate::fields::schema(s, tenant).await?;
    let checked = rule.check(&schema.fields).map_err(|errors| {
        Problem::invalid_fields(
            errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: format!("rule{}", e.path),
                    reason: e.reason,
                })
                .collect(),
        )
    })?;
    // Walk the segments the rule refers to, and theirs.
    let mut seen = BTreeSet::new();
    let mut pending: Vec<Uuid> = checked.segments().into_iter().collect();
    let direct: BTreeSet<Uuid> = pending.iter().copied().collect();
    while let Some(id) = pending.pop() {
        if Some(id) == saving {
            return Err(Problem::validation(
                "rule",
                "the rule refers to its own segment (directly or through other segments)",
            ));
        }
        if !seen.insert(id) {
            continue;
        }
        let other: Segment = s.segments.load(tenant, id).await.map_err(Problem::from)?;
        if !other.live() {
            if direct.contains(&id) {
                return Err(Problem::validation(
                    "rule",
                    format!("no segment {id} (a rule can only refer to existing segments)"),
                ));
            }
            continue;
        }
        if let Some(c) = &other.compiled {
            pending.extend(c.segments());
        }
    }
    Ok(checked)
}
