//! One CSV record → a validated contact, with the same checks as the contact API: the row's
//! standard fields become the API's own `CreateContact` body and go through its `validate`;
//! each custom field's text is read and checked by its definition (as the API checks it).

use std::collections::BTreeMap;

use domain::contact::{FieldKey, Fields, NewContact};
use encoding_rs::WINDOWS_1252;

use super::options::{Plan, Target};
use crate::contacts::body::CreateContact;

/// A record's fields as text: UTF-8 if the whole record is, else Windows-1252.
pub fn decode(record: &csv::ByteRecord) -> Vec<String> {
    if let Ok(fields) = record
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<Vec<&str>, _>>()
    {
        return fields.into_iter().map(str::to_owned).collect();
    }
    record
        .iter()
        .map(|f| WINDOWS_1252.decode_without_bom_handling(f).0.into_owned())
        .collect()
}

/// Splits a tags cell on `,` and `;`.
fn tags_of(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split([',', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

impl Plan {
    /// The contact a record describes (tags of the options included), or why it cannot be
    /// imported: every problem, as `field: reason` joined by `; `.
    pub fn contact(&self, record: &[String]) -> Result<NewContact, String> {
        if record.len() != self.width {
            return Err(format!(
                "expected {} columns, found {}",
                self.width,
                record.len()
            ));
        }
        let mut problems: Vec<String> = Vec::new();
        let mut body = CreateContact {
            email: String::new(),
            first_name: None,
            last_name: None,
            phone: None,
            time_zone: None,
            locale: None,
            fields: serde_json::Map::new(),
            tags: self.tags.iter().map(|t| t.as_str().to_owned()).collect(),
        };
        let mut typed: Fields = BTreeMap::new();
        for (i, target) in &self.columns {
            let cell = record.get(*i).map(|c| c.trim()).unwrap_or("");
            if cell.is_empty() {
                continue;
            }
            let text = Some(cell.to_owned());
            match target {
                Target::Email => body.email = cell.to_owned(),
                Target::FirstName => body.first_name = text,
                Target::LastName => body.last_name = text,
                Target::Phone => body.phone = text,
                Target::TimeZone => body.time_zone = text,
                Target::Locale => body.locale = text,
                Target::Tags => body.tags.extend(tags_of(cell)),
                Target::Field(d) => {
                    let value = d.value_from_text(cell).and_then(|v| d.check(&v));
                    let key = FieldKey::parse(&d.key).map_err(|e| e.to_string());
                    match key.and_then(|k| value.map(|v| (k, v))) {
                        Ok((k, v)) => {
                            typed.insert(k, v);
                        }
                        Err(why) => problems.push(format!("fields.{}: {why}", d.key)),
                    }
                }
            }
        }
        if body.email.is_empty() {
            problems.insert(0, "email: required".to_owned());
        }
        let new = match body.validate() {
            Ok(new) if problems.is_empty() => Some(new),
            Ok(_) => None,
            Err(p) => {
                let given_email = !body_email_missing(&problems);
                problems.extend(
                    p.0.into_iter()
                        .filter(|e| given_email || e.field != "email")
                        .map(|e| format!("{}: {}", e.field, e.reason)),
                );
                None
            }
        };
        match new {
            Some(mut new) if problems.is_empty() => {
                new.fields = typed;
                Ok(new)
            }
            _ => Err(problems.join("; ")),
        }
    }
}

fn body_email_missing(problems: &[String]) -> bool {
    problems.first().is_some_and(|p| p == "email: required")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use domain::field::FieldSchema;

    use super::*;
    use crate::imports::ImportOptions;

    fn plan(header: &[&str], mapping: &[(&str, &str)]) -> Plan {
        let options = ImportOptions {
            mapping: mapping
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>(),
            tags: vec!["imported".into()],
            update_existing: true,
            segment_id: None,
        };
        let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        options.plan(&FieldSchema::default(), &header).unwrap()
    }

    #[test]
    fn a_record_that_is_not_utf8_is_read_as_windows_1252() {
        let latin = csv::ByteRecord::from(vec![&b"M\xFCller"[..], b"x"]);
        assert_eq!(decode(&latin), vec!["Müller", "x"]);
        let utf8 = csv::ByteRecord::from(vec!["Zoë", "€"]);
        assert_eq!(decode(&utf8), vec!["Zoë", "€"]);
    }

    #[test]
    fn tags_come_from_the_options_and_a_tags_column_split_on_commas_and_semicolons() {
        let p = plan(&["E", "T"], &[("E", "email"), ("T", "tags")]);
        let new = p
            .contact(&["A@Example.org".into(), "vip; early,b".into()])
            .unwrap();
        assert_eq!(new.email.as_str(), "a@example.org");
        let tags: Vec<&str> = new.tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(tags, ["b", "early", "imported", "vip"]);
    }

    #[test]
    fn every_problem_of_a_row_is_named() {
        let p = plan(&["E", "P"], &[("E", "email"), ("P", "phone")]);
        assert_eq!(
            p.contact(&["".into(), "12".into()]).unwrap_err(),
            "email: required; phone: an international number: + country code and number, e.g. +4915123456789"
        );
        assert_eq!(
            p.contact(&["a@example.org".into()]).unwrap_err(),
            "expected 2 columns, found 1"
        );
    }
}
