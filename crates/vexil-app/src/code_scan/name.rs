//! The name a read asks for: the argument of `os.getenv(…)`, `ENV[…]` or
//! `process.env[…]`, lexed from the source text far enough to tell a literal
//! `"FLAG_X"` from a name built at run time (`f"FLAG_{key}"`, `"FLAG_" + key`,
//! `` `FLAG_${k}` ``, `"FLAG_%s" % k`), across lines, past comments and nested
//! brackets, and through each language's strings (prefixes, triple quotes, raw
//! strings, interpolation).
//!
//! The lexer is small on purpose: it knows where strings, comments and brackets
//! begin and end, which is all a call's first argument needs, and gives up (`None`)
//! rather than guess when an argument does not end where a real one would.

use vexil_core::env_var::PREFIX;

use super::Language;

/// What a read's argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Name {
    /// A plain string literal: the variable is known.
    Literal(String),
    /// An expression with a string part that holds `FLAG_`: the name is built at run
    /// time. Shown as that part up to where the run-time part begins, then `{…}`
    /// (`FLAG_{…}`, `FLAG_CONSOLE_{…}`).
    Built(String),
    /// An expression with no `FLAG_` in sight: the identifiers it uses (not those
    /// after a `.`), to trace to an assignment in the same file; `alone` when the
    /// expression is one identifier and nothing else (`os.getenv(name)`).
    Opaque { idents: Vec<String>, alone: bool },
}

/// A read's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Argument {
    /// `None` when there is no expression at all: `os.environ.get()`, or prose such as
    /// `os.environ.get(...)`.
    pub(super) name: Option<Name>,
    /// The byte offset where the argument ends (at the `,` or bracket after it).
    pub(super) end: usize,
}

/// Where an argument ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// A call's or subscript's first argument: at a top-level `,` or `;`, or the
    /// bracket that closes the call. Line breaks are spaces.
    Closer,
    /// An argument without brackets (`ENV.fetch "FLAG_X"`), an assignment's right
    /// side, or a read inside a line comment: as [`Until::Closer`], and at the end of
    /// the line.
    LineEnd,
}

/// How far an argument may run before the lexer gives up on it: a real call's name
/// fits in far less, and prose that opens a parenthesis and never closes it must not
/// drag the rest of the file in.
const MAX_ARGUMENT_BYTES: usize = 2_000;

/// Stands for an interpolated part inside a string's text; never a name character.
const HOLE: char = '\u{fffc}';

/// The argument that starts at byte `start` of `text` (just after `os.getenv(`), or
/// `None` when it does not end within [`MAX_ARGUMENT_BYTES`] (a string or bracket
/// left open, the end of the file).
pub(super) fn argument(
    language: Language,
    text: &str,
    start: usize,
    until: Until,
) -> Option<Argument> {
    let mut lexer = Lexer {
        language,
        text,
        pos: start,
        limit: (start + MAX_ARGUMENT_BYTES).min(text.len()),
    };
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    loop {
        if lexer.pos >= lexer.limit {
            return None;
        }
        let rest = lexer.rest();
        let c = rest.chars().next()?;
        if c == '\n' && until == Until::LineEnd && depth == 0 {
            break;
        }
        if c.is_whitespace() {
            lexer.bump();
            continue;
        }
        if rest.starts_with(language.line_comment()) {
            lexer.pos += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if language.block_comments() && rest.starts_with("/*") {
            lexer.pos += rest.find("*/")? + 2;
            continue;
        }
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                lexer.bump();
                tokens.push(Token::Punct(c));
            }
            ')' | ']' | '}' if depth == 0 => break,
            ')' | ']' | '}' => {
                depth -= 1;
                lexer.bump();
                tokens.push(Token::Punct(c));
            }
            ',' | ';' if depth == 0 => break,
            c if is_quote(language, c) => tokens.push(lexer.string("")?),
            c if is_word_char(c) => {
                let word = lexer.word();
                tokens.push(match lexer.rest().chars().next() {
                    Some(next) if is_prefix(language, word, next) => lexer.string(word)?,
                    _ => Token::Word(word.to_owned()),
                });
            }
            c => {
                lexer.bump();
                tokens.push(Token::Punct(c));
            }
        }
    }
    Some(Argument {
        name: name_of(&tokens),
        end: lexer.pos,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A string literal: its constant text, with [`HOLE`] for each interpolated part.
    Str {
        text: String,
        built: bool,
    },
    Word(String),
    Punct(char),
}

/// What the tokens of an argument name.
fn name_of(tokens: &[Token]) -> Option<Name> {
    if let [Token::Str { text, built: false }] = tokens {
        return Some(Name::Literal(text.clone()));
    }
    for token in tokens {
        if let Token::Str { text, .. } = token
            && let Some(at) = prefix_at(text)
        {
            return Some(Name::Built(shown(&text[at..])));
        }
    }
    let mut idents = Vec::new();
    let mut after_dot = false;
    for token in tokens {
        if let Token::Word(word) = token
            && !after_dot
            && !word.starts_with(|c: char| c.is_ascii_digit())
        {
            idents.push(word.clone());
        }
        after_dot = matches!(token, Token::Punct('.'));
    }
    let alone = matches!(tokens, [Token::Word(_)]);
    (!idents.is_empty()).then_some(Name::Opaque { idents, alone })
}

/// Where a name part starts with `FLAG_` in a string's text: at its start or right
/// after an interpolated part, in any case (`"flag_" + key` upper-cased later names a
/// flag's variable too). `MY_FLAG_` is no flag's prefix.
fn prefix_at(text: &str) -> Option<usize> {
    let starts = |at: usize| {
        text.get(at..at + PREFIX.len())
            .is_some_and(|part| part.eq_ignore_ascii_case(PREFIX))
    };
    if starts(0) {
        return Some(0);
    }
    text.match_indices(HOLE)
        .map(|(at, hole)| at + hole.len())
        .find(|&at| starts(at))
}

/// A built name as shown: `FLAG_` and the name characters after it, then `{…}` for
/// the part that is known only at run time.
pub(super) fn shown(from_prefix: &str) -> String {
    let end = from_prefix
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(from_prefix.len());
    format!("{}{{…}}", &from_prefix[..end])
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Whether `c` opens a string in `language`. Rust's `'` is left out: it opens
/// lifetimes as often as characters, and no variable name is a `char`.
fn is_quote(language: Language, c: char) -> bool {
    match language {
        Language::Python | Language::Ruby => matches!(c, '"' | '\''),
        Language::JavaScript | Language::Go => matches!(c, '"' | '\'' | '`'),
        Language::Java => matches!(c, '"' | '\''),
        Language::Rust => c == '"',
    }
}

/// Whether `word`, right before `next`, is a string prefix: Python's `f"…"`, `rb'…'`,
/// Rust's `r"…"`, `r#"…"#`, `b"…"`.
fn is_prefix(language: Language, word: &str, next: char) -> bool {
    match language {
        Language::Python => {
            matches!(next, '"' | '\'')
                && word.len() <= 2
                && word.chars().all(|c| "rRbBuUfF".contains(c))
        }
        Language::Rust => matches!(word, "r" | "b" | "br") && matches!(next, '"' | '#'),
        _ => false,
    }
}

/// How a string's text marks a part computed at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interpolation {
    None,
    /// Python's f-strings: `{expr}`, with `{{` a literal brace.
    Brace,
    /// JavaScript's template literals: `${expr}`.
    Dollar,
    /// Ruby's double-quoted strings: `#{expr}`.
    Hash,
}

struct Lexer<'a> {
    language: Language,
    text: &'a str,
    pos: usize,
    limit: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// The string that starts here (at its quote, or at a Rust raw string's first
    /// `#`), `prefix` being the letters before it; `None` when it does not close.
    fn string(&mut self, prefix: &str) -> Option<Token> {
        let language = self.language;
        let raw_rust = language == Language::Rust && prefix.contains('r');
        let mut hashes = 0;
        if raw_rust {
            while self.rest().starts_with('#') {
                hashes += 1;
                self.pos += 1;
            }
        }
        let quote = self.bump()?;
        let triple = matches!(language, Language::Python | Language::Java)
            && self.rest().starts_with([quote, quote])
            && (language == Language::Python || quote == '"');
        if triple {
            self.pos += 2;
        }
        let raw = raw_rust
            || (language == Language::Python && prefix.contains(['r', 'R']))
            || (language == Language::Go && quote == '`');
        let interpolation = match (language, quote) {
            (Language::Python, _) if prefix.contains(['f', 'F']) => Interpolation::Brace,
            (Language::JavaScript, '`') => Interpolation::Dollar,
            (Language::Ruby, '"') => Interpolation::Hash,
            _ => Interpolation::None,
        };
        // Which strings may run over a line break.
        let multiline =
            triple || quote == '`' || matches!(language, Language::Rust | Language::Ruby);
        let closing: String = std::iter::repeat_n(quote, if triple { 3 } else { 1 })
            .chain(std::iter::repeat_n('#', hashes))
            .collect();
        let mut text = String::new();
        let mut built = false;
        loop {
            if self.pos >= self.limit {
                return None;
            }
            if self.rest().starts_with(&closing) {
                self.pos += closing.len();
                return Some(Token::Str { text, built });
            }
            let c = self.bump()?;
            let rest = self.rest();
            match c {
                '\\' if !raw => text.extend(self.bump()),
                '\n' if !multiline => return None,
                '{' | '}' if interpolation == Interpolation::Brace && rest.starts_with(c) => {
                    self.pos += 1;
                    text.push(c);
                }
                '{' if interpolation == Interpolation::Brace => {
                    self.skip_interpolation()?;
                    text.push(HOLE);
                    built = true;
                }
                '$' | '#'
                    if rest.starts_with('{')
                        && interpolation
                            == (if c == '$' {
                                Interpolation::Dollar
                            } else {
                                Interpolation::Hash
                            }) =>
                {
                    self.pos += 1;
                    self.skip_interpolation()?;
                    text.push(HOLE);
                    built = true;
                }
                c => text.push(c),
            }
        }
    }

    /// Past the `}` that closes an interpolation whose `{` was just read, strings
    /// inside it included.
    fn skip_interpolation(&mut self) -> Option<()> {
        let mut depth = 1;
        while depth > 0 {
            if self.pos >= self.limit {
                return None;
            }
            let c = self.rest().chars().next()?;
            if is_quote(self.language, c) {
                self.string("")?;
                continue;
            }
            self.bump();
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name of the argument that follows `opener` in `source`.
    #[track_caller]
    fn check(language: Language, source: &str, expected: Option<Name>) {
        let start = source.find('(').or_else(|| source.find('[')).unwrap() + 1;
        let found = argument(language, source, start, Until::Closer).map(|a| a.name);
        assert_eq!(found, Some(expected), "in {source:?}");
    }

    fn literal(name: &str) -> Option<Name> {
        Some(Name::Literal(name.to_owned()))
    }

    fn built(shown: &str) -> Option<Name> {
        Some(Name::Built(shown.to_owned()))
    }

    fn opaque(idents: &[&str]) -> Option<Name> {
        Some(Name::Opaque {
            idents: idents.iter().map(|i| (*i).to_owned()).collect(),
            alone: false,
        })
    }

    fn alone(ident: &str) -> Option<Name> {
        Some(Name::Opaque {
            idents: vec![ident.to_owned()],
            alone: true,
        })
    }

    #[test]
    fn python_names() {
        use Language::Python;
        check(Python, r#"get("FLAG_A")"#, literal("FLAG_A"));
        check(Python, "get('FLAG_A', '0')", literal("FLAG_A"));
        check(Python, "get(r'FLAG_A')", literal("FLAG_A"));
        check(Python, "get('''FLAG_A''')", literal("FLAG_A"));
        check(
            Python,
            "get(\n    # the flag\n    'FLAG_A',\n)",
            literal("FLAG_A"),
        );
        check(Python, r#"get(f"FLAG_{key.upper()}")"#, built("FLAG_{…}"));
        check(
            Python,
            r#"get(f"FLAG_CONSOLE_{k}", "0")"#,
            built("FLAG_CONSOLE_{…}"),
        );
        check(Python, r#"get(f"FLAG_{d['k']}")"#, built("FLAG_{…}"));
        check(Python, r#"get(f"FLAG_{{X}}")"#, literal("FLAG_{X}"));
        check(
            Python,
            r#"get("FLAG_" + key.upper(), "0")"#,
            built("FLAG_{…}"),
        );
        check(Python, r#"get("FLAG_%s" % key.upper())"#, built("FLAG_{…}"));
        check(Python, r#"get("FLAG_{}".format(key))"#, built("FLAG_{…}"));
        check(Python, r#"get("flag_x".upper())"#, built("flag_x{…}"));
        check(Python, r#"get(f"{ns}FLAG_{k}")"#, built("FLAG_{…}"));
        check(Python, r#"get("MY_FLAG_" + k)"#, opaque(&["k"]));
        check(Python, "get(name, 'FLAG_X')", alone("name"));
        check(Python, "get(self.name)", opaque(&["self"]));
        check(Python, "get(name)", alone("name"));
        check(Python, "get()", None);
        check(Python, "get(...)", None);
    }

    #[test]
    fn other_languages_names() {
        check(Language::JavaScript, "[`FLAG_${k}`]", built("FLAG_{…}"));
        check(Language::JavaScript, "[`FLAG_A`]", literal("FLAG_A"));
        check(Language::JavaScript, "['FLAG_' + k]", built("FLAG_{…}"));
        check(Language::JavaScript, "[key /* FLAG_ */]", alone("key"));
        check(
            Language::Ruby,
            r#"["FLAG_#{key.upcase}"]"#,
            built("FLAG_{…}"),
        );
        check(Language::Ruby, "['FLAG_#{key}']", literal("FLAG_#{key}"));
        check(
            Language::Go,
            r#"(fmt.Sprintf("FLAG_%s", k))"#,
            built("FLAG_{…}"),
        );
        check(Language::Go, "(`FLAG_A`)", literal("FLAG_A"));
        check(Language::Rust, r##"(r#"FLAG_A"#)"##, literal("FLAG_A"));
        check(
            Language::Rust,
            r#"(&format!("FLAG_{}", k))"#,
            built("FLAG_{…}"),
        );
        check(Language::Rust, "(name.as_str())", opaque(&["name"]));
        check(
            Language::Java,
            r#"("FLAG_" + key.toUpperCase())"#,
            built("FLAG_{…}"),
        );
    }

    #[test]
    fn an_argument_that_never_ends_is_none() {
        // A string left open at the end of its line, a bracket never closed.
        check_none(Language::Python, "get('FLAG_A\n')");
        check_none(Language::Python, "get(name");
        let long = format!("get({}", "x + ".repeat(1_000));
        check_none(Language::Python, &long);
    }

    #[track_caller]
    fn check_none(language: Language, source: &str) {
        let start = source.find('(').unwrap() + 1;
        assert_eq!(argument(language, source, start, Until::Closer), None);
    }

    #[test]
    fn line_end_stops_at_the_line() {
        let source = "fetch 'FLAG_A'\nfoo(1)";
        let arg = argument(Language::Ruby, source, 5, Until::LineEnd).unwrap();
        assert_eq!(arg.name, literal("FLAG_A"));
        assert_eq!(&source[arg.end..arg.end + 1], "\n");
    }
}
