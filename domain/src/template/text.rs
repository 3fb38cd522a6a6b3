//! An email's text part from its HTML (html2text: block layout, lists, links as footnotes,
//! tables read cell by cell).

/// Lines are not wrapped: a mail client wraps, and a wrap could split a `{{…}}` expression.
const WIDTH: usize = 100_000;

/// The text part of `html` (a Handlebars template: its expressions pass through as text).
pub fn from_html(html: &str) -> String {
    // Tables are read as one column, a cell at a time (raw mode, no borders): in email they
    // lay out the page, and a grid drawn in box characters is neither readable nor ASCII.
    let text = html2text::config::plain()
        .raw_mode(true)
        .string_from_read(html.as_bytes(), WIDTH)
        .unwrap_or_default();
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}
