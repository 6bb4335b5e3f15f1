//! What both charts of `bench-report` use: their text, escaped for SVG.

/// `s` escaped for the text of an SVG (XML) document.
pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
