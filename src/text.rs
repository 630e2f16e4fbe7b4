//! Recorded text shown to people: control characters and bidirectional overrides
//! escaped, so that what a recording holds can neither drive the terminal (move the
//! cursor, recolour, retitle the window, ring the bell) nor reorder what a reviewer
//! reads. Line breaks of the output itself are kept.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal or a reviewer's screen as it is.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character but the line feed, and every bidirectional
/// control, written as an escape (`\x1b`, `\u{202e}`).
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_drive_a_terminal() {
        assert_eq!(printable("plain\ntext"), "plain\ntext");
        assert_eq!(
            printable("\x1b[31mred\x1b]0;title\x07\r\0"),
            "\\x1b[31mred\\x1b]0;title\\x07\\x0d\\x00"
        );
        assert_eq!(printable("abc\u{202e}fed\u{9b}"), "abc\\u{202e}fed\\x9b");
        assert_eq!(printable("tab\there"), "tab\\x09here");
    }
}
