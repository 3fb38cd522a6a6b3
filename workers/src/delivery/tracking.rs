//! Tracking links: the open pixel, click redirects and unsubscribe links of a message carry a
//! signed token (HMAC-SHA256) naming the organization, the job and, for a click, the target.
//! A token that does not verify is refused, and a click only ever redirects to the URL its
//! token signed: no open redirect.
//!
//! Token text: `base64url(payload JSON) "." base64url(HMAC-SHA256(key, payload part))`. Keys
//! rotate: the first key signs, any key verifies.
//!
//! The same keys sign a job's mail addresses (the VERP return path `bounce+<job>.<tag>@` and
//! the mailto unsubscribe `unsubscribe+<job>.<tag>@`): short, case-insensitive tags, see
//! [`Tracker::address_local`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// What a token lets its bearer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "a")]
pub enum Action {
    #[serde(rename = "o")]
    Open,
    #[serde(rename = "c")]
    Click {
        #[serde(rename = "u")]
        url: String,
    },
    #[serde(rename = "u")]
    Unsubscribe,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    #[serde(rename = "t")]
    pub tenant_id: Uuid,
    #[serde(rename = "j")]
    pub job_id: Uuid,
    #[serde(flatten)]
    pub action: Action,
}

/// What a signed mail address of a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPurpose {
    /// The return path (envelope sender): bounces come back to it.
    Bounce,
    /// The `mailto:` of `List-Unsubscribe`: mail to it unsubscribes.
    Unsubscribe,
}

impl AddressPurpose {
    /// The local part's prefix before `+`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Bounce => "bounce",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

/// The bytes of HMAC kept in a signed address (64 bits: a forger gets one guess per message
/// it sends to us).
const ADDRESS_TAG_BYTES: usize = 8;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a tracking token")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
}

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("at least one tracking key is needed")]
    NoKey,
    #[error("rewriting the HTML: {0}")]
    Html(String),
}

/// Signs and verifies tokens, and makes a message's tracking URLs under `base_url`
/// (`https://t.example.org`, no trailing slash): `/t/o/{token}` (pixel), `/t/c/{token}`
/// (click), `/t/u/{token}` (unsubscribe: `GET` shows a page, `POST` unsubscribes, RFC 8058).
#[derive(Clone)]
pub struct Tracker {
    /// One keyed HMAC per key, cloned for each token.
    keys: Vec<HmacSha256>,
    base_url: String,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("keys", &self.keys.len())
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl Tracker {
    /// `keys`: the signing key first, then older keys still accepted.
    pub fn new(keys: Vec<Vec<u8>>, base_url: &str) -> Result<Self, TrackerError> {
        if keys.is_empty() || keys.iter().any(Vec::is_empty) {
            return Err(TrackerError::NoKey);
        }
        let keys = keys
            .iter()
            .map(|k| HmacSha256::new_from_slice(k).map_err(|_| TrackerError::NoKey))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    fn mac(key: &HmacSha256, payload: &str) -> HmacSha256 {
        let mut mac = key.clone();
        mac.update(payload.as_bytes());
        mac
    }

    pub fn sign(&self, token: &Token) -> String {
        let json = serde_json::to_vec(token).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self
            .keys
            .first()
            .map(|k| Self::mac(k, &payload).finalize().into_bytes().to_vec())
            .unwrap_or_default();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The token `text` stands for, if one of the keys signed it (compared in constant time).
    pub fn verify(&self, text: &str) -> Result<Token, TokenError> {
        let (payload, tag) = text.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let signed = self
            .keys
            .iter()
            .any(|k| Self::mac(k, payload).verify_slice(&tag).is_ok());
        if !signed {
            return Err(TokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }

    fn url(&self, kind: &str, token: &Token) -> String {
        format!("{}/t/{kind}/{}", self.base_url, self.sign(token))
    }

    pub fn open_url(&self, tenant_id: Uuid, job_id: Uuid) -> String {
        let t = Token {
            tenant_id,
            job_id,
            action: Action::Open,
        };
        self.url("o", &t)
    }

    pub fn click_url(&self, tenant_id: Uuid, job_id: Uuid, target: &str) -> String {
        let t = Token {
            tenant_id,
            job_id,
            action: Action::Click {
                url: target.to_owned(),
            },
        };
        self.url("c", &t)
    }

    pub fn unsubscribe_url(&self, tenant_id: Uuid, job_id: Uuid) -> String {
        let t = Token {
            tenant_id,
            job_id,
            action: Action::Unsubscribe,
        };
        self.url("u", &t)
    }

    /// The tag of a signed mail address: the first 8 bytes of HMAC-SHA256 over
    /// `"{purpose}:{tenant}:{job}"`, in lowercase hex (MTAs may fold the case of a local part).
    fn address_tag(
        key: &HmacSha256,
        purpose: AddressPurpose,
        tenant_id: Uuid,
        job_id: Uuid,
    ) -> HmacSha256 {
        Self::mac(key, &format!("{}:{tenant_id}:{job_id}", purpose.prefix()))
    }

    /// The local part of a signed address for job `job_id`: `bounce+<job>.<tag>` (the
    /// return path, VERP) or `unsubscribe+<job>.<tag>` (the mailto unsubscribe). The job is
    /// written as 32 hex digits and the tag as 16, so the local part stays within RFC 5321's
    /// 64 characters (56 and 61). The tag binds the organization, the job and the purpose: an
    /// address naming another job, or a bounce address used to unsubscribe, does not verify.
    pub fn address_local(&self, purpose: AddressPurpose, tenant_id: Uuid, job_id: Uuid) -> String {
        let tag = self
            .keys
            .first()
            .map(|k| {
                let full = Self::address_tag(k, purpose, tenant_id, job_id)
                    .finalize()
                    .into_bytes();
                hex::encode(&full[..ADDRESS_TAG_BYTES])
            })
            .unwrap_or_default();
        format!("{}+{}.{tag}", purpose.prefix(), job_id.simple())
    }

    /// Whether `tag` (hex, any case) is the tag of `purpose` for `job_id` of `tenant_id`
    /// under one of the keys (compared in constant time).
    pub fn verify_address(
        &self,
        purpose: AddressPurpose,
        tenant_id: Uuid,
        job_id: Uuid,
        tag: &str,
    ) -> bool {
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        tag.len() == ADDRESS_TAG_BYTES
            && self.keys.iter().any(|k| {
                Self::address_tag(k, purpose, tenant_id, job_id)
                    .verify_truncated_left(&tag)
                    .is_ok()
            })
    }

    /// `html` with every `http(s)` link of an `<a>` or `<area>` sent through a click URL
    /// (other schemes — `mailto:`, `tel:`, `#anchors` — and links marked
    /// `data-mauntic-track="off"` stay as they are), and the open pixel appended to the body
    /// (or to the document when it has no `<body>`).
    pub fn rewrite_html(
        &self,
        html: &str,
        tenant_id: Uuid,
        job_id: Uuid,
    ) -> Result<String, TrackerError> {
        use lol_html::html_content::ContentType;
        use lol_html::{element, rewrite_str, RewriteStrSettings};

        let pixel = format!(
            r#"<img src="{}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">"#,
            self.open_url(tenant_id, job_id)
        );
        let has_body = std::cell::Cell::new(false);
        let out = rewrite_str(
            html,
            RewriteStrSettings {
                element_content_handlers: vec![
                    element!("a[href], area[href]", |el| {
                        if el.get_attribute("data-mauntic-track").as_deref() == Some("off") {
                            el.remove_attribute("data-mauntic-track");
                            return Ok(());
                        }
                        if let Some(href) = el.get_attribute("href") {
                            // Attribute values come as written: decode entities first.
                            let href = html_escape::decode_html_entities(&href);
                            let target = href.trim();
                            let lower = target.to_ascii_lowercase();
                            if lower.starts_with("http://") || lower.starts_with("https://") {
                                el.set_attribute(
                                    "href",
                                    &self.click_url(tenant_id, job_id, target),
                                )?;
                            }
                        }
                        Ok(())
                    }),
                    element!("body", |el| {
                        has_body.set(true);
                        el.append(&pixel, ContentType::Html);
                        Ok(())
                    }),
                ],
                ..RewriteStrSettings::new()
            },
        )
        .map_err(|e| TrackerError::Html(e.to_string()))?;
        Ok(if has_body.get() {
            out
        } else {
            format!("{out}{pixel}")
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(vec![b"key-one".to_vec()], "https://t.example.org/").unwrap()
    }

    const TENANT: Uuid = Uuid::from_u128(1);
    const JOB: Uuid = Uuid::from_u128(2);

    fn token_of(url: &str, kind: &str) -> String {
        url.strip_prefix(&format!("https://t.example.org/t/{kind}/"))
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_signed_address_verifies_only_for_its_job_organization_and_purpose() {
        let t = tracker();
        let local = t.address_local(AddressPurpose::Bounce, TENANT, JOB);
        assert!(local.len() <= 64, "{local}");
        let (job, tag) = local
            .strip_prefix("bounce+")
            .unwrap()
            .split_once('.')
            .unwrap();
        assert_eq!(job, JOB.simple().to_string());
        assert!(t.verify_address(AddressPurpose::Bounce, TENANT, JOB, tag));
        assert!(
            t.verify_address(
                AddressPurpose::Bounce,
                TENANT,
                JOB,
                &tag.to_ascii_uppercase()
            ),
            "an MTA may fold the case"
        );
        assert!(!t.verify_address(AddressPurpose::Bounce, TENANT, Uuid::from_u128(3), tag));
        assert!(!t.verify_address(AddressPurpose::Bounce, Uuid::from_u128(9), JOB, tag));
        assert!(!t.verify_address(AddressPurpose::Unsubscribe, TENANT, JOB, tag));
        assert!(!t.verify_address(AddressPurpose::Bounce, TENANT, JOB, &tag[..8]));
        let unsub = t.address_local(AddressPurpose::Unsubscribe, TENANT, JOB);
        assert!(
            unsub.starts_with("unsubscribe+") && unsub.len() <= 64,
            "{unsub}"
        );
        // Another key does not verify; a rotated-out key still does while listed.
        let other = Tracker::new(vec![b"key-two".to_vec()], "https://t.example.org").unwrap();
        assert!(!other.verify_address(AddressPurpose::Bounce, TENANT, JOB, tag));
        let rotated = Tracker::new(
            vec![b"key-two".to_vec(), b"key-one".to_vec()],
            "https://t.example.org",
        )
        .unwrap();
        assert!(rotated.verify_address(AddressPurpose::Bounce, TENANT, JOB, tag));
    }

    #[test]
    fn a_signed_token_verifies_and_names_its_job_and_target() {
        let t = tracker();
        let click = token_of(&t.click_url(TENANT, JOB, "https://shop.example/a?b=1"), "c");
        assert_eq!(
            t.verify(&click).unwrap(),
            Token {
                tenant_id: TENANT,
                job_id: JOB,
                action: Action::Click {
                    url: "https://shop.example/a?b=1".into()
                }
            }
        );
        let open = token_of(&t.open_url(TENANT, JOB), "o");
        assert_eq!(t.verify(&open).unwrap().action, Action::Open);
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let t = tracker();
        let click = token_of(&t.click_url(TENANT, JOB, "https://shop.example/"), "c");
        let (payload, tag) = click.split_once('.').unwrap();
        // Another target under the same signature: the open redirect an attacker wants.
        let forged = Token {
            tenant_id: TENANT,
            job_id: JOB,
            action: Action::Click {
                url: "https://evil.example/".into(),
            },
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            t.verify(&format!("{forged_payload}.{tag}")),
            Err(TokenError::BadSignature)
        );
        let mut flipped = tag.to_owned().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            t.verify(&format!(
                "{payload}.{}",
                String::from_utf8(flipped).unwrap()
            )),
            Err(TokenError::BadSignature)
        );
        assert_eq!(t.verify("nodot"), Err(TokenError::Malformed));
        let other = Tracker::new(vec![b"key-two".to_vec()], "https://t.example.org").unwrap();
        assert_eq!(other.verify(&click), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_old_key_still_verifies_after_rotation_but_no_longer_signs() {
        let old = tracker();
        let token = token_of(&old.unsubscribe_url(TENANT, JOB), "u");
        let rotated = Tracker::new(
            vec![b"key-two".to_vec(), b"key-one".to_vec()],
            "https://t.example.org",
        )
        .unwrap();
        assert_eq!(rotated.verify(&token).unwrap().action, Action::Unsubscribe);
        let fresh = token_of(&rotated.unsubscribe_url(TENANT, JOB), "u");
        assert_eq!(old.verify(&fresh), Err(TokenError::BadSignature));
        assert!(Tracker::new(vec![], "https://t.example.org").is_err());
    }

    #[test]
    fn links_are_rewritten_but_not_mailto_anchors_or_opted_out_ones_and_the_pixel_ends_the_body() {
        let t = tracker();
        let html = r##"<html><body><p><a href="https://shop.example/a?x=1&amp;y=2">Shop</a>
<a href="mailto:help@example.org">Mail</a> <a href="#top">Top</a>
<a href=" HTTP://Old.example/ ">Old</a> <a data-mauntic-track="off" href="https://raw.example/">Raw</a></p></body></html>"##;
        let out = t.rewrite_html(html, TENANT, JOB).unwrap();
        let hrefs: Vec<&str> = out
            .split("href=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(hrefs.len(), 5, "{out}");
        let click = |h: &str| {
            let token = token_of(h, "c");
            match t.verify(&token).unwrap().action {
                Action::Click { url } => url,
                other => panic!("{other:?}"),
            }
        };
        // The entity is decoded: the token holds the URL the browser would have followed.
        assert_eq!(click(hrefs[0]), "https://shop.example/a?x=1&y=2");
        assert_eq!(hrefs[1], "mailto:help@example.org");
        assert_eq!(hrefs[2], "#top");
        assert_eq!(click(hrefs[3]), "HTTP://Old.example/");
        assert_eq!(hrefs[4], "https://raw.example/");
        assert!(!out.contains("data-mauntic-track"));
        let pixel = out.find("/t/o/").unwrap();
        assert!(pixel > out.find("Raw</a>").unwrap() && pixel < out.find("</body>").unwrap());
        let bare = t.rewrite_html("<p>Hi</p>", TENANT, JOB).unwrap();
        assert!(bare.starts_with("<p>Hi</p><img src=\"https://t.example.org/t/o/"));
    }
}
