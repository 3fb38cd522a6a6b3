//! Our addresses in inbound mail: `bounce+<job>.<tag>@…` (the return path) and
//! `unsubscribe+<job>.<tag>@…` (the mailto unsubscribe), and a Message-ID `<job>@…`. Only
//! reading them here; [`crate::delivery::tracking::Tracker`] signs and verifies the tags.

use uuid::Uuid;

use crate::delivery::tracking::AddressPurpose;

/// A signed address as written (its tag not verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub purpose: AddressPurpose,
    pub job_id: Uuid,
    pub tag: String,
}

/// The signed address `address` is, if it is one of ours by its form (`bounce+` or
/// `unsubscribe+`, a job id, a tag). Case-insensitive: MTAs may fold local parts.
pub fn signed(address: &str) -> Option<Signed> {
    let (local, _) = address.trim().rsplit_once('@')?;
    let (prefix, rest) = local.split_once('+')?;
    let purpose = [AddressPurpose::Bounce, AddressPurpose::Unsubscribe]
        .into_iter()
        .find(|p| p.prefix().eq_ignore_ascii_case(prefix))?;
    let (job, tag) = rest.rsplit_once('.')?;
    Some(Signed {
        purpose,
        job_id: Uuid::parse_str(job).ok()?,
        tag: tag.to_owned(),
    })
}

/// Whether `address` has one of our prefixes (then a bad signature is a forgery, not some
/// other mail).
pub fn looks_ours(address: &str) -> Option<AddressPurpose> {
    let local = address.trim().rsplit_once('@').map_or(address, |(l, _)| l);
    let prefix = local.split_once('+')?.0;
    [AddressPurpose::Bounce, AddressPurpose::Unsubscribe]
        .into_iter()
        .find(|p| p.prefix().eq_ignore_ascii_case(prefix))
}

/// The job a Message-ID `<job>@domain` (brackets optional) names.
pub fn job_of_message_id(message_id: &str) -> Option<Uuid> {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    Uuid::parse_str(id.split_once('@')?.0).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const JOB: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ab);

    #[test]
    fn signed_addresses_are_read_in_any_case_and_with_either_job_form() {
        let a = format!("bounce+{}.00ff@Bounces.Acme.test", JOB.simple());
        assert_eq!(
            signed(&a).unwrap(),
            Signed {
                purpose: AddressPurpose::Bounce,
                job_id: JOB,
                tag: "00ff".into()
            }
        );
        let upper = format!(
            "UNSUBSCRIBE+{}.AB@x",
            JOB.simple().to_string().to_uppercase()
        );
        let s = signed(&upper).unwrap();
        assert_eq!((s.purpose, s.job_id), (AddressPurpose::Unsubscribe, JOB));
        assert!(
            signed(&format!("bounce+{JOB}.ab@x")).is_some(),
            "hyphenated"
        );
        assert!(signed("bounce+not-a-job.ab@x").is_none());
        assert!(
            signed(&format!("bounce+{}@x", JOB.simple())).is_none(),
            "no tag"
        );
        assert!(signed(&format!("news+{}.ab@x", JOB.simple())).is_none());
        assert_eq!(
            looks_ours("Bounce+whatever@x"),
            Some(AddressPurpose::Bounce)
        );
        assert_eq!(looks_ours("postmaster@x"), None);
    }

    #[test]
    fn a_message_id_names_its_job() {
        assert_eq!(job_of_message_id(&format!("<{JOB}@acme.test>")), Some(JOB));
        assert_eq!(job_of_message_id(&format!("{JOB}@acme.test")), Some(JOB));
        assert_eq!(job_of_message_id("CAF=abc@mail.gmail.com"), None);
    }
}
