//! One strict Handlebars registry, the helpers a marketer needs, checking a version when it
//! is saved, and rendering one. Pure: no IO.
//!
//! # The render context
//!
//! ```json
//! {
//!   "contact": {
//!     "id": "…", "email": "ada@example.org", "first_name": "Ada", "last_name": "Lovelace",
//!     "phone": "+4915…", "time_zone": "Europe/Berlin", "locale": "de-DE",
//!     "fields": {"plan": "pro", "renews_at": "2026-12-01T09:00:00Z", …},
//!     "tags": ["vip"], "stage": "lead", "points": 10
//!   },
//!   "organization": {"id": "…", "name": "Acme", "time_zone": "UTC", "locale": "en"},
//!   "message": {…}
//! }
//! ```
//!
//! A contact without its own time zone or locale has the organization's there.
//! Every field the organization defines is present under `contact.fields` (null when the
//! contact has no value), so `{{contact.fields.plan}}` renders for every contact. `message`
//! is what the sender adds (campaign, unsubscribe link, …); its keys are not checked.
//!
//! Strict mode: a path the context lacks is an error, at save time (checked against the
//! paths above and the field definitions) and at render time.
//!
//! # Helpers
//!
//! Besides `if`, `unless`, `each`, `with`, `lookup`:
//! - `{{default contact.first_name "there"}}`: the value, or the fallback when it is null,
//!   empty or missing.
//! - `{{upper x}}`, `{{lower x}}`, `{{title x}}` (first letter of each word upper case).
//! - `{{date x "%d.%m.%Y %H:%M"}}`: a date (`YYYY-MM-DD`, as is) or an instant (RFC 3339,
//!   shown in `contact.time_zone`, UTC without one; `tz="…"` overrides) in a strftime
//!   format (default `%Y-%m-%d`, or `%Y-%m-%d %H:%M` for instants).
//! - `{{number x decimals=2}}`: grouping and decimal marks of `contact.locale` (`locale="…"`
//!   overrides): en `1,234.50`; de, es, it, nl, pt `1.234,50`; fr `1 234,50` (narrow
//!   no-break space, U+202F); others as en. Decimals default to 0 for integers, 2 otherwise.
//! - `{{url_encode x}}`: percent-encodes all but `A-Z a-z 0-9 - _ . ~`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, Utc};
use handlebars::template::{HelperTemplate, Parameter, Template as Ast, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, Path, RenderContext, RenderError,
    RenderErrorReason,
};
use serde::Serialize;
use serde_json::Value as Json;

use super::content::{CheckedContent, Content};

/// What the render context provides beyond its fixed shape: the organization's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub fields: BTreeSet<String>,
}

/// What is wrong with one part of a version, and where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartError {
    pub part: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// A rendered version: each part's text, by part name (`subject`, `html`, `text`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub parts: BTreeMap<String, String>,
}

const CONTACT_KEYS: &[&str] = &[
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "time_zone",
    "locale",
    "fields",
    "tags",
    "stage",
    "points",
];
const ORGANIZATION_KEYS: &[&str] = &["id", "name", "time_zone", "locale"];
const BUILT_IN: &[&str] = &["if", "unless", "each", "with", "lookup"];
const OURS: &[&str] = &[
    "default",
    "upper",
    "lower",
    "title",
    "date",
    "number",
    "url_encode",
];

/// The registry for HTML parts (values escaped) or for text parts (as is).
fn registry(html: bool) -> &'static Handlebars<'static> {
    static HTML: OnceLock<Handlebars<'static>> = OnceLock::new();
    static TEXT: OnceLock<Handlebars<'static>> = OnceLock::new();
    let cell = if html { &HTML } else { &TEXT };
    cell.get_or_init(|| {
        let mut r = Handlebars::new();
        r.set_strict_mode(true);
        if !html {
            r.register_escape_fn(handlebars::no_escape);
        }
        r.register_helper("default", Box::new(default_helper));
        r.register_helper("upper", Box::new(upper));
        r.register_helper("lower", Box::new(lower));
        r.register_helper("title", Box::new(title));
        r.register_helper("date", Box::new(date));
        r.register_helper("number", Box::new(number));
        r.register_helper("url_encode", Box::new(url_encode));
        r
    })
}

/// Compiles every part of `content` and checks that it refers only to what the render
/// context provides; every problem found, with its part and place.
pub fn check(content: Content, known: &Known) -> Result<CheckedContent, Vec<PartError>> {
    let mut errors = Vec::new();
    for (part, source, _) in content.parts() {
        match Ast::compile(source) {
            Err(e) => {
                let pos = e.pos();
                errors.push(PartError {
                    part,
                    line: pos.map(|p| p.0),
                    column: pos.map(|p| p.1),
                    message: e.reason().to_string(),
                })
            }
            Ok(ast) => {
                let mut found = Vec::new();
                walk(&ast, Some(&[]), known, &mut found);
                errors.extend(found.into_iter().map(|(pos, message)| PartError {
                    part: part.clone(),
                    line: pos.map(|p| p.0),
                    column: pos.map(|p| p.1),
                    message,
                }));
            }
        }
    }
    // A derived text part repeats the HTML's problems; name them once, where they were made.
    if matches!(
        content,
        Content::Email {
            text_derived: true,
            ..
        }
    ) && errors.iter().any(|e| e.part == "html")
    {
        errors.retain(|e| e.part != "text");
    }
    if errors.is_empty() {
        Ok(CheckedContent(content))
    } else {
        Err(errors)
    }
}

/// Renders every part of `content` against `context` (see the module doc for its shape).
pub fn render(content: &Content, context: &Json) -> Result<Rendered, Vec<PartError>> {
    Prepared::new(content)?.render(context.clone())
}

/// A version's parts compiled once, to be rendered for many recipients (the delivery
/// worker keeps one per template version: versions never change).
#[derive(Debug, Clone)]
pub struct Prepared {
    parts: Vec<(String, Ast, bool)>,
}

impl Prepared {
    pub fn new(content: &Content) -> Result<Self, Vec<PartError>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        for (part, source, html) in content.parts() {
            match Ast::compile(source) {
                Ok(ast) => parts.push((part, ast, html)),
                Err(e) => {
                    let pos = e.pos();
                    errors.push(PartError {
                        part,
                        line: pos.map(|p| p.0),
                        column: pos.map(|p| p.1),
                        message: e.reason().to_string(),
                    })
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { parts })
        } else {
            Err(errors)
        }
    }

    /// Every part rendered against `context`.
    pub fn render(&self, context: Json) -> Result<Rendered, Vec<PartError>> {
        use handlebars::Renderable;
        let context = Context::from(context);
        let mut parts = BTreeMap::new();
        let mut errors = Vec::new();
        for (part, ast, html) in &self.parts {
            let mut rc = RenderContext::new(None);
            let mut out = handlebars::StringOutput::new();
            let rendered = ast
                .render(registry(*html), &context, &mut rc, &mut out)
                .and_then(|()| out.into_string().map_err(RenderError::from));
            match rendered {
                Ok(text) => {
                    parts.insert(part.clone(), text);
                }
                Err(e) => errors.push(PartError {
                    part: part.clone(),
                    line: e.line_no,
                    column: e.column_no,
                    message: e.reason().to_string(),
                }),
            }
        }
        if errors.is_empty() {
            Ok(Rendered { parts })
        } else {
            Err(errors)
        }
    }
}

/// Puts every known field under `contact.fields` (null where the contact has no value), so
/// strict rendering accepts a field a contact has not filled in.
pub fn fill_fields(context: &mut Json, known: &Known) {
    let Some(contact) = context.get_mut("contact").and_then(Json::as_object_mut) else {
        return;
    };
    let fields = contact
        .entry("fields")
        .or_insert_with(|| Json::Object(Default::default()));
    if let Some(fields) = fields.as_object_mut() {
        for key in &known.fields {
            fields.entry(key.clone()).or_insert(Json::Null);
        }
    }
}

type Found = Vec<(Option<(usize, usize)>, String)>;

/// Checks the paths of `ast`; `scope` is the absolute path `this` stands for (`None` inside
/// `each`, where it is an element of a list).
fn walk(ast: &Ast, scope: Option<&[String]>, known: &Known, found: &mut Found) {
    for (i, element) in ast.elements.iter().enumerate() {
        let pos = ast.mapping.get(i).map(|m| (m.0, m.1));
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                expression(h, pos, scope, known, found)
            }
            TemplateElement::HelperBlock(h) => {
                let name = helper_name(&h.name);
                match name.as_deref() {
                    Some(n) if BUILT_IN.contains(&n) || OURS.contains(&n) => {}
                    _ => found.push((pos, format!("unknown block helper {}", shown(&h.name)))),
                }
                for p in h.params.iter().chain(h.hash.values()) {
                    parameter(p, pos, scope, known, found);
                }
                let inner: Option<Vec<String>> = match (name.as_deref(), h.params.first()) {
                    (Some("with"), Some(Parameter::Path(p))) => {
                        scope.and_then(|s| absolute(p, s)).map(|(abs, _)| abs)
                    }
                    (Some("each" | "with"), _) => None,
                    _ => scope.map(<[String]>::to_vec),
                };
                if let Some(t) = &h.template {
                    walk(t, inner.as_deref(), known, found);
                }
                if let Some(t) = &h.inverse {
                    walk(t, scope, known, found);
                }
            }
            // Decorators and partials (and whatever a later handlebars adds).
            _ => found.push((pos, "partials and decorators are not supported".to_owned())),
        }
    }
}

fn expression(
    h: &HelperTemplate,
    pos: Option<(usize, usize)>,
    scope: Option<&[String]>,
    known: &Known,
    found: &mut Found,
) {
    let name = helper_name(&h.name);
    let is_helper = name
        .as_deref()
        .is_some_and(|n| BUILT_IN.contains(&n) || OURS.contains(&n));
    if h.params.is_empty() && h.hash.is_empty() && !is_helper {
        parameter(&h.name, pos, scope, known, found);
        return;
    }
    if !is_helper {
        found.push((pos, format!("unknown helper {}", shown(&h.name))));
    }
    for p in h.params.iter().chain(h.hash.values()) {
        parameter(p, pos, scope, known, found);
    }
}

fn parameter(
    p: &Parameter,
    pos: Option<(usize, usize)>,
    scope: Option<&[String]>,
    known: &Known,
    found: &mut Found,
) {
    match p {
        Parameter::Literal(_) => {}
        Parameter::Name(n) => {
            if let Some(s) = scope {
                let mut abs = s.to_vec();
                abs.push(n.clone());
                if let Err(why) = provided(&abs, known) {
                    found.push((pos, why));
                }
            }
        }
        Parameter::Path(path) => {
            let Some(s) = scope else {
                // Inside `each`: only paths from the root can be checked.
                if let Path::Relative((_, raw)) = path {
                    if raw.starts_with("@root") {
                        if let Some((abs, _)) = absolute(path, &[]) {
                            if let Err(why) = provided(&abs, known) {
                                found.push((pos, why));
                            }
                        }
                    }
                }
                return;
            };
            if let Some((abs, _)) = absolute(path, s) {
                if let Err(why) = provided(&abs, known) {
                    found.push((pos, why));
                }
            }
        }
        Parameter::Subexpression(sub) => {
            if let TemplateElement::Expression(h) = sub.element.as_ref() {
                expression(h, pos, scope, known, found);
            }
        }
        _ => {}
    }
}

/// The absolute path `path` names from `scope`, and its text; `None` for locals (`@index`)
/// and paths that climb out of the root.
fn absolute(path: &Path, scope: &[String]) -> Option<(Vec<String>, String)> {
    let Path::Relative((segs, raw)) = path else {
        return None;
    };
    let mut abs: Vec<String> = if raw.starts_with("@root") {
        Vec::new()
    } else {
        scope.to_vec()
    };
    for seg in segs {
        match seg {
            handlebars::PathSeg::Named(n) => abs.push(n.clone()),
            ruled if format!("{ruled:?}").contains("path_up") => {
                abs.pop()?;
            }
            _ => {}
        }
    }
    Some((abs, raw.clone()))
}

/// Whether the render context provides the absolute path `abs`.
fn provided(abs: &[String], known: &Known) -> Result<(), String> {
    let shown = abs.join(".");
    let unknown = |what: &str| Err(format!("{shown}: {what}"));
    match abs
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["message", ..] => Ok(()),
        ["contact"] | ["organization"] => Ok(()),
        ["contact", "fields"] => Ok(()),
        ["contact", "fields", key, ..] => {
            if known.fields.contains(*key) {
                Ok(())
            } else {
                unknown("no such custom field")
            }
        }
        ["contact", "tags", ..] => Ok(()),
        ["contact", key] if CONTACT_KEYS.contains(key) => Ok(()),
        ["contact", ..] => unknown("a contact has no such value"),
        ["organization", key] if ORGANIZATION_KEYS.contains(key) => Ok(()),
        ["organization", ..] => unknown("an organization has no such value"),
        _ => unknown("not in the render context (contact, organization, message)"),
    }
}

fn helper_name(p: &Parameter) -> Option<String> {
    match p {
        Parameter::Name(n) => Some(n.clone()),
        Parameter::Path(Path::Relative((_, raw))) => Some(raw.clone()),
        _ => None,
    }
}

fn shown(p: &Parameter) -> String {
    helper_name(p).unwrap_or_else(|| "?".to_owned())
}

// ---- helpers ----

fn text_of(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn write(r: &Handlebars, rc: &RenderContext, out: &mut dyn Output, text: &str) -> HelperResult {
    if rc.is_disable_escape() {
        out.write(text)?;
    } else {
        out.write(&r.get_escape_fn()(text))?;
    }
    Ok(())
}

fn other(why: impl Into<String>) -> RenderError {
    RenderErrorReason::Other(why.into()).into()
}

/// The value of parameter `i`, refused when absent (strict mode).
fn required<'a>(h: &'a Helper, name: &'static str, i: usize) -> Result<&'a Json, RenderError> {
    match h.param(i) {
        Some(p) if !p.is_value_missing() => Ok(p.value()),
        Some(p) => Err(RenderError::strict_error(p.relative_path())),
        None => Err(RenderErrorReason::ParamNotFoundForIndex(name, i).into()),
    }
}

fn default_helper(
    h: &Helper,
    r: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let fallback = required(h, "default", 1)?;
    let value = h
        .param(0)
        .filter(|p| !p.is_value_missing())
        .map(|p| p.value())
        .filter(|v| !matches!(v, Json::Null) && !text_of(v).is_empty());
    write(r, rc, out, &text_of(value.unwrap_or(fallback)))
}

fn map_text(
    h: &Helper,
    r: &Handlebars,
    rc: &RenderContext,
    out: &mut dyn Output,
    name: &'static str,
    f: fn(&str) -> String,
) -> HelperResult {
    let v = required(h, name, 0)?;
    write(r, rc, out, &f(&text_of(v)))
}

fn upper(
    h: &Helper,
    r: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    map_text(h, r, rc, out, "upper", str::to_uppercase)
}

fn lower(
    h: &Helper,
    r: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    map_text(h, r, rc, out, "lower", str::to_lowercase)
}

fn title(
    h: &Helper,
    r: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    map_text(h, r, rc, out, "title", title_case)
}

/// First letter of each word upper case, the rest lower case.
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = !(c == '\'' || c == '’');
        }
    }
    out
}

/// A text value of the root context at `path` (e.g. the contact's time zone).
fn root_text<'a>(ctx: &'a Context, path: &[&str]) -> Option<&'a str> {
    let mut v = ctx.data();
    for p in path {
        v = v.get(p)?;
    }
    v.as_str()
}

fn hash_text<'a>(h: &'a Helper, key: &str) -> Option<&'a str> {
    h.hash_get(key).and_then(|v| v.value().as_str())
}

fn date(
    h: &Helper,
    r: &Handlebars,
    ctx: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = required(h, "date", 0)?;
    let raw = match value {
        Json::Null => return Ok(()),
        Json::String(s) => s.as_str(),
        other => return Err(self::other(format!("date: not a date: {other}"))),
    };
    let format = h.param(1).and_then(|p| p.value().as_str());
    let text = if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        formatted(&d, format.unwrap_or("%Y-%m-%d"))?
    } else if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        let zone = hash_text(h, "tz")
            .or_else(|| root_text(ctx, &["contact", "time_zone"]))
            .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(chrono_tz::UTC);
        let local = t.with_timezone(&Utc).with_timezone(&zone);
        formatted(&local, format.unwrap_or("%Y-%m-%d %H:%M"))?
    } else {
        return Err(other(format!(
            "date: {raw:?} is neither YYYY-MM-DD nor RFC 3339"
        )));
    };
    write(r, rc, out, &text)
}

/// Something chrono formats with strftime items.
trait Formattable {
    fn with_items<'a>(
        &self,
        items: std::slice::Iter<'a, Item<'a>>,
    ) -> Result<String, std::fmt::Error>;
}

impl Formattable for NaiveDate {
    fn with_items<'a>(
        &self,
        items: std::slice::Iter<'a, Item<'a>>,
    ) -> Result<String, std::fmt::Error> {
        use std::fmt::Write;
        let mut s = String::new();
        write!(s, "{}", self.format_with_items(items))?;
        Ok(s)
    }
}

impl Formattable for DateTime<chrono_tz::Tz> {
    fn with_items<'a>(
        &self,
        items: std::slice::Iter<'a, Item<'a>>,
    ) -> Result<String, std::fmt::Error> {
        use std::fmt::Write;
        let mut s = String::new();
        write!(s, "{}", self.format_with_items(items))?;
        Ok(s)
    }
}

fn formatted(value: &impl Formattable, format: &str) -> Result<String, RenderError> {
    let items: Vec<Item> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(other(format!("date: bad format {format:?}")));
    }
    value
        .with_items(items.iter())
        .map_err(|_| other(format!("date: format {format:?} does not fit this value")))
}

fn number(
    h: &Helper,
    r: &Handlebars,
    ctx: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = required(h, "number", 0)?;
    let (n, integral) = match value {
        Json::Null => return Ok(()),
        Json::Number(n) => (n.as_f64().unwrap_or(0.0), n.is_i64() || n.is_u64()),
        Json::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => (n, !s.contains('.')),
            Err(_) => return Err(other(format!("number: not a number: {s:?}"))),
        },
        other => return Err(self::other(format!("number: not a number: {other}"))),
    };
    let decimals = match h.hash_get("decimals").map(|d| d.value()) {
        None => {
            if integral {
                0
            } else {
                2
            }
        }
        Some(d) => match d.as_u64() {
            Some(d) if d <= 10 => d as usize,
            _ => return Err(other("number: decimals is 0 to 10")),
        },
    };
    let locale = hash_text(h, "locale")
        .or_else(|| root_text(ctx, &["contact", "locale"]))
        .unwrap_or("en");
    write(r, rc, out, &format_number(n, decimals, locale))
}

/// `n` with `decimals` decimals and the grouping and decimal marks of `locale` (BCP 47).
pub fn format_number(n: f64, decimals: usize, locale: &str) -> String {
    let language = locale
        .split(['-', '_'])
        .next()
        .unwrap_or("en")
        .to_ascii_lowercase();
    let (group, point) = match language.as_str() {
        "de" | "es" | "it" | "nl" | "pt" => (".", ","),
        "fr" => ("\u{202f}", ","),
        _ => (",", "."),
    };
    let fixed = format!("{:.*}", decimals, n.abs());
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(group);
        }
        grouped.push(c);
    }
    let sign = if n < 0.0 && fixed.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}{point}{frac}")
    }
}

fn url_encode(
    h: &Helper,
    r: &Handlebars,
    _: &Context,
    rc: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    map_text(h, r, rc, out, "url_encode", percent_encode)
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
