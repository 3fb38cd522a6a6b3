//! What may be sent: the checks before a dispatch, pure. A job for a contact is refused when
//! the contact is gone, is marked do-not-contact on the channel, opted out of it (campaigns
//! and journeys; transactional messages and test sends ignore consent), has no address on
//! it, or when the address is on the suppression list. When the contact's frequency rule
//! allows nothing more on the channel yet, a journey's message waits and a campaign's is
//! suppressed ([`over_cap`]).

use chrono::{DateTime, Duration, Utc};
use domain::delivery::{Channel, Deferral, Request, Source, Suppression};
use projections::contacts::ContactRow;

/// What the checks decided for one job.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Send to this address.
    Send {
        address: String,
    },
    Suppress(Suppression),
    Defer {
        reason: Deferral,
        until: DateTime<Utc>,
    },
}

/// The contact's rules that apply to the job (the suppression list is checked afterwards,
/// on the address this decides).
pub fn contact_rules(request: &Request, contact: Option<&ContactRow>) -> Verdict {
    let marketing = matches!(
        request.source,
        Source::Campaign { .. } | Source::Journey { .. }
    );
    let Some(contact_id) = request.contact_id else {
        return Verdict::Send {
            address: request.to.clone(),
        };
    };
    let Some(c) = contact else {
        return Verdict::Suppress(Suppression::ContactGone);
    };
    debug_assert_eq!(c.id, contact_id);
    let channel = request.channel.as_str();
    if request.source != Source::Test {
        if let Some(dnc) = c.do_not_contact.get(channel).filter(|v| !v.is_null()) {
            return Verdict::Suppress(Suppression::DoNotContact {
                reason: dnc["reason"].as_str().unwrap_or("manual").to_owned(),
            });
        }
        if marketing && c.consent[channel]["status"].as_str() == Some("opted_out") {
            return Verdict::Suppress(Suppression::OptedOut);
        }
    }
    let address = if !request.to.is_empty() {
        Some(request.to.clone())
    } else {
        match request.channel {
            Channel::Email => Some(c.email.clone()).filter(|e| !e.is_empty()),
            Channel::Sms => c.phone.clone(),
            Channel::Push => c.fields["push_token"].as_str().map(str::to_owned),
            // The endpoint is the template's.
            Channel::Webhook => Some(String::new()),
        }
    };
    match address {
        Some(address) => Verdict::Send { address },
        None => Verdict::Suppress(Suppression::NoAddress),
    }
}

/// A contact's frequency rule on a channel: at most `max` messages per `per_days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frequency {
    pub max: u32,
    pub per_days: u32,
}

impl Frequency {
    pub fn of(contact: &ContactRow, channel: Channel) -> Option<Self> {
        let rule = &contact.frequency[channel.as_str()];
        Some(Self {
            max: u32::try_from(rule["max"].as_u64()?).ok()?,
            per_days: u32::try_from(rule["per_days"].as_u64()?).ok()?,
        })
    }

    pub fn window(self) -> Duration {
        Duration::days(i64::from(self.per_days))
    }

    /// Given the times of the messages already sent within the window (oldest first), when
    /// the next may go: `None` now, else the time the oldest leaves the window.
    pub fn next_allowed(self, sent_in_window: &[DateTime<Utc>]) -> Option<DateTime<Utc>> {
        if (sent_in_window.len() as u64) < u64::from(self.max) {
            return None;
        }
        let k = sent_in_window.len() - self.max as usize;
        Some(sent_in_window[k] + self.window())
    }
}

/// A marketing message to a contact over its frequency cap, whose rule allows the next one
/// at `until`. A campaign's is suppressed: a blast is time-bound, and a message days late
/// is worse than none. Any other (a journey step's) waits until then.
pub fn over_cap(request: &Request, until: DateTime<Utc>) -> Verdict {
    match request.source {
        Source::Campaign { .. } => Verdict::Suppress(Suppression::FrequencyCap),
        _ => Verdict::Defer {
            reason: Deferral::FrequencyCap,
            until,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn contact() -> ContactRow {
        ContactRow {
            tenant_id: Uuid::nil(),
            id: Uuid::from_u128(7),
            email: "ada@example.org".into(),
            first_name: None,
            last_name: None,
            phone: None,
            time_zone: None,
            locale: None,
            fields: serde_json::json!({}),
            tags: vec![],
            consent: serde_json::json!({}),
            do_not_contact: serde_json::json!({}),
            frequency: serde_json::json!({}),
            stage: None,
            points: 0,
            company_ids: vec![],
            primary_company_id: None,
            owner_id: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    fn request(source: Source) -> Request {
        Request {
            channel: Channel::Email,
            contact_id: Some(Uuid::from_u128(7)),
            to: String::new(),
            template_id: Uuid::from_u128(1),
            template_version: 1,
            source,
            data: serde_json::json!({}),
            from: None,
            reply_to: None,
            provider_id: None,
        }
    }

    fn campaign() -> Source {
        Source::Campaign {
            campaign_id: Uuid::from_u128(3),
            variant: None,
        }
    }

    #[test]
    fn a_contact_is_sent_to_at_its_current_address() {
        assert_eq!(
            contact_rules(&request(campaign()), Some(&contact())),
            Verdict::Send {
                address: "ada@example.org".into()
            }
        );
    }

    #[test]
    fn do_not_contact_refuses_every_message_but_a_test() {
        let mut c = contact();
        c.do_not_contact = serde_json::json!({"email": {"reason": "bounced", "note": null}});
        for source in [
            campaign(),
            Source::Transactional {
                idempotency_key: None,
            },
        ] {
            assert_eq!(
                contact_rules(&request(source), Some(&c)),
                Verdict::Suppress(Suppression::DoNotContact {
                    reason: "bounced".into()
                })
            );
        }
        assert!(matches!(
            contact_rules(&request(Source::Test), Some(&c)),
            Verdict::Send { .. }
        ));
    }

    #[test]
    fn opting_out_refuses_marketing_but_not_transactional_messages() {
        let mut c = contact();
        c.consent = serde_json::json!({"email": {"status": "opted_out"}});
        assert_eq!(
            contact_rules(&request(campaign()), Some(&c)),
            Verdict::Suppress(Suppression::OptedOut)
        );
        assert!(matches!(
            contact_rules(
                &request(Source::Transactional {
                    idempotency_key: None
                }),
                Some(&c)
            ),
            Verdict::Send { .. }
        ));
    }

    #[test]
    fn a_missing_contact_or_address_is_said_so() {
        assert_eq!(
            contact_rules(&request(campaign()), None),
            Verdict::Suppress(Suppression::ContactGone)
        );
        let mut r = request(campaign());
        r.channel = Channel::Sms;
        assert_eq!(
            contact_rules(&r, Some(&contact())),
            Verdict::Suppress(Suppression::NoAddress)
        );
    }

    #[test]
    fn the_frequency_rule_waits_until_the_oldest_message_leaves_the_window() {
        let f = Frequency {
            max: 2,
            per_days: 1,
        };
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 29, h, 0, 0).unwrap();
        assert_eq!(f.next_allowed(&[t(1)]), None);
        assert_eq!(
            f.next_allowed(&[t(1), t(5)]),
            Some(t(1) + Duration::days(1))
        );
        assert_eq!(
            f.next_allowed(&[t(1), t(5), t(6)]),
            Some(t(5) + Duration::days(1))
        );
    }

    #[test]
    fn over_the_cap_a_campaign_skips_the_contact_and_a_journey_waits() {
        let until = Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap();
        assert_eq!(
            over_cap(&request(campaign()), until),
            Verdict::Suppress(Suppression::FrequencyCap)
        );
        let journey = Source::Journey {
            journey_id: Uuid::from_u128(4),
            execution_id: Uuid::from_u128(5),
            step_id: "welcome".into(),
        };
        assert_eq!(
            over_cap(&request(journey), until),
            Verdict::Defer {
                reason: Deferral::FrequencyCap,
                until
            }
        );
    }
}
