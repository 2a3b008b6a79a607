//! Python's `fnmatch.fnmatchcase`, ported from `fnmatch.translate` (CPython 3.12).
//!
//! The process filters are shell globs as Python reads them: `*` matches any run of
//! characters including `/`, `?` any one character, `[seq]` one character in `seq` (with
//! `a-z` ranges) and `[!seq]` one not in it; a `[` without a closing `]` is a literal, and a
//! backslash is an ordinary character. Matching is case-sensitive (POSIX `normcase` is the
//! identity) and covers the whole command line.
//!
//! Not the `glob`/`globset`/`wildmatch` crates: they treat `\` as an escape, `[^...]` as a
//! negation or `{a,b}` as alternation, and Python does none of these. Existing filter
//! settings on robots must keep selecting the same processes, so the translation rules,
//! quirks included, follow CPython's code step by step.

use std::fmt;

/// A compiled fnmatch pattern. Every string is a valid pattern, as in Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`, or a set that Python reduces to "any character" (`[!b-a]`).
    Any,
    /// A run of `*`.
    Star,
    Set {
        negated: bool,
        /// Inclusive ranges; a single character is `(c, c)`.
        ranges: Vec<(char, char)>,
    },
    /// A set that can never match (`[b-a]`): Python translates it to `(?!)`.
    Never,
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::Any => true,
            Token::Set { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Token::Never | Token::Star => false,
        }
    }
}

/// One element of a bracket expression after Python's chunking: a character, or the
/// unescaped `-` that joins two chunks into a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetItem {
    Char(char),
    RangeDash,
}

impl Pattern {
    /// Compiles `source`.
    pub fn new(source: &str) -> Pattern {
        Pattern {
            source: source.to_owned(),
            tokens: translate(source),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches (`fnmatch.fnmatchcase(text, pattern)`).
    pub fn matches(&self, text: &str) -> bool {
        let toks = &self.tokens;
        let (mut p, mut t) = (0usize, 0usize);
        // Where to resume after the last `*`: token after it, and the text position it
        // has absorbed up to. Every other token takes exactly one character, so retrying
        // only the most recent star is enough (no exponential backtracking).
        let mut star: Option<(usize, usize)> = None;
        loop {
            if let Some(tok) = toks.get(p) {
                if *tok == Token::Star {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                if let Some(c) = text[t..].chars().next() {
                    if tok.matches(c) {
                        p += 1;
                        t += c.len_utf8();
                        continue;
                    }
                }
            } else if t == text.len() {
                return true;
            }
            match star {
                Some((sp, st)) => match text[st..].chars().next() {
                    Some(c) => {
                        let nt = st + c.len_utf8();
                        star = Some((sp, nt));
                        p = sp;
                        t = nt;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn translate(pattern: &str) -> Vec<Token> {
    let pat: Vec<char> = pattern.chars().collect();
    let n = pat.len();
    let mut res = Vec::new();
    let mut i = 0;
    while i < n {
        let c = pat[i];
        i += 1;
        match c {
            '*' => {
                if res.last() != Some(&Token::Star) {
                    res.push(Token::Star);
                }
            }
            '?' => res.push(Token::Any),
            '[' => {
                let mut j = i;
                if j < n && pat[j] == '!' {
                    j += 1;
                }
                if j < n && pat[j] == ']' {
                    j += 1;
                }
                while j < n && pat[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    res.push(Token::Literal('['));
                } else {
                    res.push(bracket(&pat, i, j));
                    i = j + 1;
                }
            }
            other => res.push(Token::Literal(other)),
        }
    }
    res
}

/// The set `pat[i..j]` (between `[` and `]`), following `fnmatch._translate`'s chunking:
/// hyphens split the set into chunks, a hyphen right after the opening (or after `!`) or
/// right after a range is literal, reversed ranges are removed, and a trailing hyphen is
/// literal.
fn bracket(pat: &[char], i: usize, j: usize) -> Token {
    let stuff = &pat[i..j];
    let mut chunks: Vec<Vec<char>> = Vec::new();
    if !stuff.contains(&'-') {
        chunks.push(stuff.to_vec());
    } else {
        let mut start = i;
        let mut k = if pat[i] == '!' { i + 2 } else { i + 1 };
        while let Some(dash) = (k..j).find(|&x| pat[x] == '-') {
            chunks.push(pat[start..dash].to_vec());
            start = dash + 1;
            k = dash + 3;
        }
        let last = &pat[start..j];
        if !last.is_empty() {
            chunks.push(last.to_vec());
        } else if let Some(prev) = chunks.last_mut() {
            prev.push('-');
        }
        // Remove empty ranges (`z-a`), which are invalid in a regex.
        for k in (1..chunks.len()).rev() {
            if let (Some(&hi), Some(&lo)) = (chunks[k - 1].last(), chunks[k].first()) {
                if hi > lo {
                    let tail: Vec<char> = chunks[k][1..].to_vec();
                    chunks[k - 1].pop();
                    chunks[k - 1].extend(tail);
                    chunks.remove(k);
                }
            }
        }
    }
    let mut items: Vec<SetItem> = Vec::new();
    for (idx, chunk) in chunks.iter().enumerate() {
        if idx > 0 {
            items.push(SetItem::RangeDash);
        }
        items.extend(chunk.iter().map(|&c| SetItem::Char(c)));
    }
    if items.is_empty() {
        return Token::Never;
    }
    if items == [SetItem::Char('!')] {
        return Token::Any;
    }
    // As in Python, negation is decided on the final text, so a removed range can expose a
    // `!` at the front (`[z-a!b]` is `[^b]`).
    let negated = items[0] == SetItem::Char('!');
    let body = if negated { &items[1..] } else { &items[..] };
    let mut ranges = Vec::new();
    let mut p = 0;
    while p < body.len() {
        match (body.get(p), body.get(p + 1), body.get(p + 2)) {
            (Some(SetItem::Char(lo)), Some(SetItem::RangeDash), Some(SetItem::Char(hi))) => {
                ranges.push((*lo, *hi));
                p += 3;
            }
            (Some(SetItem::Char(c)), _, _) => {
                ranges.push((*c, *c));
                p += 1;
            }
            // A dash without a character on both sides cannot come out of the chunking;
            // reading it as a literal keeps this total anyway.
            _ => {
                ranges.push(('-', '-'));
                p += 1;
            }
        }
    }
    Token::Set { negated, ranges }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).matches(text)
    }

    #[test]
    fn default_filters() {
        assert!(m(
            "/opt/opentrons*",
            "/opt/opentrons-robot-server/bin/python -m x"
        ));
        assert!(m("python3*", "python3 -m robot_server"));
        assert!(!m("python3*", "/usr/bin/python3 -m robot_server"));
        assert!(!m("/opt/opentrons*", "/opt/Opentrons"));
    }

    #[test]
    fn star_matches_slashes_newlines_and_nothing() {
        assert!(m("*", ""));
        assert!(m("a*b", "a/x/y\nz/b"));
        assert!(m("a**b", "ab"));
        assert!(m("*a*a*a*", "xaxaxa"));
        assert!(!m("*a*a*a*", "xaxax"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "a/c"));
        assert!(m("a?c", "aéc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
    }

    #[test]
    fn case_sensitive_and_whole_string() {
        assert!(!m("Python3*", "python3"));
        assert!(!m("python", "python3"));
        assert!(!m("ython3", "python3"));
    }

    #[test]
    fn bracket_sets_ranges_and_negation() {
        assert!(m("[abc]x", "bx"));
        assert!(!m("[abc]x", "dx"));
        assert!(m("[a-c]", "b"));
        assert!(!m("[a-c]", "d"));
        assert!(m("[!a-c]", "d"));
        assert!(!m("[!a-c]", "b"));
        assert!(m("[0-9][0-9]", "42"));
    }

    #[test]
    fn python_bracket_quirks() {
        // `]` first is literal; `[` without `]` is literal; `^` is not negation.
        assert!(m("[]a]", "]"));
        assert!(m("[!]a]", "b"));
        assert!(!m("[!]a]", "]"));
        assert!(m("a[b", "a[b"));
        assert!(m("[^a]", "^"));
        assert!(!m("[^a]", "b"));
        // Leading and trailing `-` are literal.
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
        assert!(m("[!-a]", "b"));
        assert!(!m("[!-a]", "-"));
        // After a range the next `-` is literal: `[a-c-e]` is a-c, `-`, `e`.
        assert!(m("[a-c-e]", "-"));
        assert!(m("[a-c-e]", "e"));
        assert!(!m("[a-c-e]", "d"));
        // A reversed range never matches; negated, it matches anything.
        assert!(!m("[b-a]", "a"));
        assert!(!m("[b-a]", "b"));
        assert!(m("[!b-a]", "x"));
        // Removing the reversed range can expose `!` (Python's `[z-a!b]` is `[^b]`).
        assert!(m("[z-a!b]", "c"));
        assert!(!m("[z-a!b]", "b"));
        // A backslash is an ordinary character.
        assert!(m("a\\*", "a\\xyz"));
        assert!(m("[\\]", "\\"));
        // Range from `-` to `0`.
        assert!(m("[--0]", "."));
    }

    #[test]
    fn display_is_the_source() {
        assert_eq!(Pattern::new("python3*").to_string(), "python3*");
    }
}
