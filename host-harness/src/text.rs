//! Untrusted text made inert for logs and terminals: control characters escaped, length
//! bounded. A leaf module, used by every layer that logs or prints what a plugin, a server or a
//! warehouse cell said.

/// `text` with every control character and bidirectional override escaped, so it prints as one
/// inert line.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cut to at most `cap` bytes on a character boundary, with a marker saying how much
/// was cut.
pub fn truncate(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_bidi_overrides_are_escaped() {
        assert_eq!(escape_controls("a\u{1b}[2Jb\u{202e}c"), "a\\u{1b}[2Jb\\u{202e}c");
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        assert_eq!(truncate("ééé", 3), "é…[truncated 4 bytes]");
    }
}
