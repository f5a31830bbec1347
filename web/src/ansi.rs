//! ANSI escape sequences in console lines, turned into styled spans. Only colours and text
//! attributes (SGR) are kept; every other sequence (cursor moves, erasing, titles, hyperlinks)
//! and control character is dropped. The spans are rendered as text nodes, never as HTML.

/// A colour: one of the 16 named ones (0-15, shown by CSS classes so that themes can tune them)
/// or an exact one from the 256-colour or true-colour forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Named(u8),
    Rgb(u8, u8, u8),
}

/// The look of a run of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub fg: Option<Colour>,
    pub bg: Option<Colour>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

/// The most parameters read from one sequence; the rest are ignored.
const MAX_PARAMS: usize = 32;

/// Splits a line into styled spans.
pub fn parse(line: &str) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    let flush = |text: &mut String, style: Style, spans: &mut Vec<Span>| {
        if !text.is_empty() {
            match spans.last_mut() {
                Some(last) if last.style == style => last.text.push_str(text),
                _ => spans.push(Span { text: std::mem::take(text), style }),
            }
            text.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    let mut body = String::new();
                    let mut fin = None;
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            fin = Some(c);
                            break;
                        }
                        if body.len() < 256 {
                            body.push(c);
                        }
                    }
                    if fin == Some('m') {
                        flush(&mut text, style, &mut spans);
                        apply_sgr(&mut style, &body);
                    }
                }
                // OSC (titles, hyperlinks): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Any other escape: the one character after ESC is its whole body.
                _ => {}
            },
            '\t' => text.push_str("    "),
            c if c.is_control() => {}
            c => text.push(c),
        }
    }
    flush(&mut text, style, &mut spans);
    spans
}

fn apply_sgr(style: &mut Style, body: &str) {
    let params: Vec<u16> = body.split([';', ':']).take(MAX_PARAMS).map(|p| p.parse::<u16>().unwrap_or(0)).collect();
    let params = if params.is_empty() { vec![0] } else { params };
    let mut i = 0;
    while i < params.len() {
        let p = params[i];
        match p {
            0 => *style = Style::default(),
            1 => style.bold = true,
            2 => style.dim = true,
            3 => style.italic = true,
            4 => style.underline = true,
            22 => {
                style.bold = false;
                style.dim = false;
            }
            23 => style.italic = false,
            24 => style.underline = false,
            30..=37 => style.fg = Some(Colour::Named((p - 30) as u8)),
            39 => style.fg = None,
            40..=47 => style.bg = Some(Colour::Named((p - 40) as u8)),
            49 => style.bg = None,
            90..=97 => style.fg = Some(Colour::Named((p - 90 + 8) as u8)),
            100..=107 => style.bg = Some(Colour::Named((p - 100 + 8) as u8)),
            38 | 48 => {
                let (colour, used) = extended(&params[i + 1..]);
                if let Some(colour) = colour {
                    if p == 38 {
                        style.fg = Some(colour);
                    } else {
                        style.bg = Some(colour);
                    }
                }
                i += used;
            }
            _ => {}
        }
        i += 1;
    }
}

/// `5;n` (256 colours) or `2;r;g;b`: the colour and how many parameters it used.
fn extended(rest: &[u16]) -> (Option<Colour>, usize) {
    match rest {
        [5, n, ..] => (Some(palette_256(*n)), 2),
        [2, r, g, b, ..] => {
            let c = |v: u16| v.min(255) as u8;
            (Some(Colour::Rgb(c(*r), c(*g), c(*b))), 4)
        }
        [5] | [2, ..] => (None, rest.len()),
        _ => (None, 0),
    }
}

fn palette_256(n: u16) -> Colour {
    let n = n.min(255) as u8;
    match n {
        0..=15 => Colour::Named(n),
        16..=231 => {
            let i = n - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            Colour::Rgb(level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let grey = 8 + (n - 232) * 10;
            Colour::Rgb(grey, grey, grey)
        }
    }
}

impl Style {
    /// CSS classes for the named colours and attributes.
    pub fn classes(&self) -> String {
        let mut out = Vec::new();
        if let Some(Colour::Named(n)) = self.fg {
            out.push(format!("fg{n}"));
        }
        if let Some(Colour::Named(n)) = self.bg {
            out.push(format!("bg{n}"));
        }
        for (on, class) in [(self.bold, "b"), (self.dim, "dim"), (self.italic, "i"), (self.underline, "u")] {
            if on {
                out.push(class.to_owned());
            }
        }
        out.join(" ")
    }

    /// An inline style for exact colours (numbers only: nothing from the line reaches CSS).
    pub fn inline(&self) -> String {
        let mut out = String::new();
        if let Some(Colour::Rgb(r, g, b)) = self.fg {
            out.push_str(&format!("color:rgb({r},{g},{b});"));
        }
        if let Some(Colour::Rgb(r, g, b)) = self.bg {
            out.push_str(&format!("background:rgb({r},{g},{b});"));
        }
        out
    }
}

/// The line's text without any sequence, for searching.
pub fn plain(line: &str) -> String {
    parse(line).into_iter().map(|s| s.text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(spans: &[Span]) -> Vec<&str> {
        spans.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn colours_and_attributes_become_styles() {
        let spans = parse("\u{1b}[1;31mERROR\u{1b}[0m: disk \u{1b}[92mok\u{1b}[39m done");
        assert_eq!(texts(&spans), ["ERROR", ": disk ", "ok", " done"]);
        assert_eq!(spans[0].style, Style { fg: Some(Colour::Named(1)), bold: true, ..Style::default() });
        assert_eq!(spans[1].style, Style::default());
        assert_eq!(spans[2].style.fg, Some(Colour::Named(10)));
        assert_eq!(spans[0].style.classes(), "fg1 b");
        let exact = parse("\u{1b}[38;2;255;0;10mred\u{1b}[48;5;196mon red");
        assert_eq!(exact[0].style.fg, Some(Colour::Rgb(255, 0, 10)));
        assert_eq!(exact[1].style.bg, Some(Colour::Rgb(255, 0, 0)));
        assert_eq!(exact[0].style.inline(), "color:rgb(255,0,10);");
        assert_eq!(parse("\u{1b}[mplain")[0].style, Style::default(), "ESC[m resets");
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        assert_eq!(plain("\u{1b}[2J\u{1b}[1;1Hcleared\u{1b}[K"), "cleared");
        assert_eq!(plain("\u{1b}]0;evil title\u{7}after"), "after");
        assert_eq!(plain("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\"), "link");
        assert_eq!(plain("bell\u{7} back\u{8}space\r"), "bell backspace");
        assert_eq!(plain("a\tb"), "a    b");
        assert_eq!(plain("\u{1b}(Bcharset"), "Bcharset", "ESC ( drops one character only");
    }

    #[test]
    fn hostile_sequences_cannot_hurt() {
        // HTML stays text: the page renders spans as text nodes.
        assert_eq!(plain("<script>alert(1)</script>"), "<script>alert(1)</script>");
        // Unterminated sequences end the line quietly.
        assert_eq!(plain("text\u{1b}[31"), "text");
        assert_eq!(plain("text\u{1b}]0;never ends"), "text");
        assert_eq!(plain("text\u{1b}"), "text");
        // Huge parameter lists and numbers are capped.
        let long = format!("\u{1b}[{}mX", "1;".repeat(100_000));
        assert_eq!(plain(&long), "X");
        assert_eq!(parse("\u{1b}[38;2;999;99999;-1mX")[0].style.fg, Some(Colour::Rgb(255, 0, 0)));
        assert_eq!(parse("\u{1b}[38;5mX")[0].style.fg, None);
        assert_eq!(parse("\u{1b}[38;2;1mX")[0].style.fg, None);
        // Styles never leak CSS from the line.
        let s = parse("\u{1b}[38;2;1;2;3m\u{1b}[48;2;4;5;6mX");
        assert_eq!(s[0].style.inline(), "color:rgb(1,2,3);background:rgb(4,5,6);");
    }

    #[test]
    fn neighbours_in_one_style_merge() {
        let spans = parse("a\u{1b}[0mb\u{1b}[1m\u{1b}[22mc");
        assert_eq!(texts(&spans), ["abc"]);
        assert!(parse("").is_empty());
    }
}
