//! JavaScript reference scanner: finds the references a fingerprinting build must rewrite in a JS file
//! (static `import … from "s"` / `import "s"`, `export … from "s"`, `import("s")`,
//! `new URL("s", import.meta.url)` and `//# sourceMappingURL=` comments) together with the exact byte
//! span of each specifier. It runs a small, non-recursive byte-level lexer over the whole file so that
//! text inside strings, template literals, comments and regular-expression literals is never taken for
//! code; the regex-versus-division ambiguity is settled from the previous significant token, in the
//! manner of es-module-lexer. Malformed input never panics: unterminated constructs simply end at the
//! end of their line or of the file, and produce no reference.

use std::ops::Range;

/// What kind of construct a [`JsRef`] was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsRefKind {
    /// `import x from "s"`, `import "s"`, `import {a} from "s"`, `import * as n from "s"`, `import x, {y} from "s"`
    /// (also `import source x from "s"` and `import defer * as n from "s"`). TypeScript's
    /// `import type … from` is not recognised, and does not disturb the scan.
    StaticImport,
    /// `export * from "s"`, `export {a} from "s"`, `export * as n from "s"`
    ExportFrom,
    /// `import("s")` / `import('s', {with:...})` with a plain string literal (or a template literal without `${}`)
    DynamicImport,
    /// `new URL("s", import.meta.url)` (Vite/webpack asset pattern)
    NewUrl,
    /// `//# sourceMappingURL=VALUE` or `//@ sourceMappingURL=VALUE` line comment (also `/*# sourceMappingURL=VALUE */`)
    SourceMap,
}

/// One reference found by [`scan_js`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsRef {
    /// Byte range in the source of the raw specifier text: for strings, the bytes between the quotes
    /// (quotes excluded); for source maps, the URL value (up to whitespace / end of line / `*/`).
    pub span: Range<usize>,
    /// The decoded value (JS string escapes like `\u0041`, `\x41`, `\'`, `\\`, line continuations resolved).
    pub value: String,
    /// The construct the reference was found in.
    pub kind: JsRefKind,
    /// The quote character used (`'`, `"` or '`'), None for SourceMap.
    pub quote: Option<char>,
}

/// Scans `src`. When `imports` is false, only SourceMap refs are returned.
/// Returns refs in source order. Never panics, runs in linear time and does not recurse.
pub fn scan_js(src: &str, imports: bool) -> Vec<JsRef> {
    let mut scanner = Scanner {
        src,
        bytes: src.as_bytes(),
        imports,
        refs: Vec::new(),
        stack: Vec::new(),
    };
    scanner.run();
    let mut refs = scanner.refs;
    // Look-aheads may record a reference before a source-map comment that precedes it; the sort is
    // stable and linear on the (almost always) already sorted vector.
    refs.sort_by_key(|r| r.span.start);
    refs
}

/// Bytes that may continue an identifier (or a number). Non-ASCII bytes count as identifier bytes;
/// Unicode whitespace is filtered separately with [`unicode_space_len`].
static IDENT: [bool; 256] = ident_table();

const fn ident_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        table[i] =
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'\\' | b'#') || c >= 0x80;
        i += 1;
    }
    table
}

/// The previous significant token, reduced to what the lexer needs to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of a statement: start of file, `;`, `{`, a block-closing `}`, `=>`, the `)` of
    /// `if (…)`/`while (…)`/`for (…)`/`with (…)`, or `else`/`do`/`try`/`finally`/`export`.
    /// A `/` starts a regex; a `{` opens a block.
    Stmt,
    /// Inside an expression, after an operator or punctuator or an operator-like keyword
    /// (`return`, `typeof`, …). A `/` starts a regex; a `{` opens an object literal.
    Expr,
    /// After `if`, `while`, `for` or `with`: the next `(` is a condition.
    Cond,
    /// After a value: identifier, number, string, template, regex, `)`, `]`, object `}`, `++`, `--`.
    /// A `/` is a division.
    Value,
    /// After `.` or `?.`: the next identifier is a property name, never a keyword.
    Dot,
    /// After `break` or `continue`: a `/` starts a regex, and so it does after a label
    /// (`break outer\n/re/.test(s)`).
    Jump,
}

impl Prev {
    fn regex_ok(self) -> bool {
        matches!(self, Prev::Stmt | Prev::Expr | Prev::Cond | Prev::Jump)
    }

    fn brace_is_block(self) -> bool {
        matches!(self, Prev::Stmt | Prev::Value)
    }
}

/// Entries of the nesting stack (brackets are not tracked: `]` is always a value end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `{` opening a block (a regex may follow its `}`).
    Block,
    /// `{` opening an object literal (a division may follow its `}`).
    Object,
    /// `(`.
    Paren,
    /// `(` right after `if`/`while`/`for`/`with` (a regex may follow its `)`).
    CondParen,
    /// `${` inside a template literal (its `}` resumes the template).
    Subst,
}

struct Scanner<'a> {
    src: &'a str,
    bytes: &'a [u8],
    imports: bool,
    refs: Vec<JsRef>,
    stack: Vec<Frame>,
}

impl Scanner<'_> {
    fn run(&mut self) {
        let b = self.bytes;
        let n = b.len();
        // A hashbang line (possibly after a byte order mark) is a comment.
        let mut i = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        if b.get(i..i + 2) == Some(b"#!") {
            i = line_end(b, i + 2);
        }
        let mut prev = Prev::Stmt;
        while i < n {
            let c = b[i];
            if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
                // Fast path for the most common token of (minified) code; a conditional branch here
                // mispredicts far less often than the `match` jump table below.
                let start = i;
                i = ident_end(b, i + 1);
                prev = self.identifier(start, i, prev);
                continue;
            }
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
                b'/' => match b.get(i + 1) {
                    Some(b'/') => {
                        let end = line_end(b, i + 2);
                        self.comment(i + 2, end);
                        i = end;
                    }
                    Some(b'*') => match block_comment_end(b, i + 2) {
                        Some(end) => {
                            self.comment(i + 2, end);
                            i = end + 2;
                        }
                        None => i = n,
                    },
                    _ if prev.regex_ok() => {
                        i = regex_end(b, i + 1);
                        prev = Prev::Value;
                    }
                    _ => {
                        i += 1;
                        prev = Prev::Expr;
                    }
                },
                b'\'' | b'"' => {
                    i = string_end(b, i + 1, c).0;
                    prev = Prev::Value;
                }
                b'`' => i = self.template(i + 1, &mut prev),
                b'{' => {
                    if prev.brace_is_block() {
                        self.stack.push(Frame::Block);
                        prev = Prev::Stmt;
                    } else {
                        self.stack.push(Frame::Object);
                        prev = Prev::Expr;
                    }
                    i += 1;
                }
                b'}' => {
                    i += 1;
                    loop {
                        match self.stack.pop() {
                            Some(Frame::Paren | Frame::CondParen) => {}
                            Some(Frame::Subst) => {
                                i = self.template(i, &mut prev);
                                break;
                            }
                            Some(Frame::Block) => {
                                prev = Prev::Stmt;
                                break;
                            }
                            Some(Frame::Object) | None => {
                                prev = Prev::Value;
                                break;
                            }
                        }
                    }
                }
                b'(' => {
                    self.stack.push(if prev == Prev::Cond {
                        Frame::CondParen
                    } else {
                        Frame::Paren
                    });
                    prev = Prev::Expr;
                    i += 1;
                }
                b')' => {
                    prev = Prev::Value;
                    match self.stack.last() {
                        Some(Frame::Paren) => {
                            self.stack.pop();
                        }
                        Some(Frame::CondParen) => {
                            self.stack.pop();
                            prev = Prev::Stmt;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                b']' => {
                    prev = Prev::Value;
                    i += 1;
                }
                b';' => {
                    prev = Prev::Stmt;
                    i += 1;
                }
                b'.' => match b.get(i + 1) {
                    Some(b'.') if b.get(i + 2) == Some(&b'.') => {
                        prev = Prev::Expr;
                        i += 3;
                    }
                    Some(b'0'..=b'9') => {
                        i = number_end(b, i + 1);
                        prev = Prev::Value;
                    }
                    _ => {
                        prev = Prev::Dot;
                        i += 1;
                    }
                },
                b'?' if b.get(i + 1) == Some(&b'.')
                    && !matches!(b.get(i + 2), Some(b'0'..=b'9')) =>
                {
                    prev = Prev::Dot;
                    i += 2;
                }
                b'=' if b.get(i + 1) == Some(&b'>') => {
                    prev = Prev::Stmt;
                    i += 2;
                }
                // `++`/`--` are taken as postfix (a value end); `++/re/` is not valid JS anyway.
                b'+' | b'-' if b.get(i + 1) == Some(&c) => {
                    prev = Prev::Value;
                    i += 2;
                }
                b'0'..=b'9' => {
                    i = number_end(b, i + 1);
                    prev = Prev::Value;
                }
                _ if IDENT[usize::from(c)] => {
                    if c >= 0x80 {
                        let w = unicode_space_len(b, i);
                        if w > 0 {
                            i += w;
                            continue;
                        }
                    }
                    let start = i;
                    i = ident_end(b, i + 1);
                    prev = self.identifier(start, i, prev);
                }
                _ => {
                    prev = Prev::Expr;
                    i += 1;
                }
            }
        }
    }

    /// Classifies the identifier `bytes[start..end]` (running the reference look-aheads for
    /// `import`, `export` and `new`) and returns the new previous-token state.
    fn identifier(&mut self, start: usize, end: usize, prev: Prev) -> Prev {
        let after_jump = if prev == Prev::Jump {
            Prev::Stmt
        } else {
            Prev::Value
        };
        if prev == Prev::Dot {
            return Prev::Value;
        }
        let word = &self.bytes[start..end];
        if word.len() > 10 || !word[0].is_ascii_lowercase() {
            return after_jump;
        }
        match word {
            b"import" => {
                if self.imports {
                    self.import(end);
                }
                Prev::Value
            }
            b"export" => {
                if self.imports {
                    self.export(end);
                }
                Prev::Stmt
            }
            b"new" => {
                if self.imports {
                    self.new_url(end);
                }
                Prev::Expr
            }
            b"return" | b"typeof" | b"instanceof" | b"in" | b"of" | b"delete" | b"void"
            | b"throw" | b"case" | b"yield" | b"await" | b"default" => Prev::Expr,
            b"do" | b"else" | b"try" | b"finally" => Prev::Stmt,
            b"if" | b"while" | b"for" | b"with" => Prev::Cond,
            b"break" | b"continue" => Prev::Jump,
            _ => after_jump,
        }
    }

    /// Scans template characters from `i` (just after '`' or after the `}` closing a `${`).
    /// Returns the position after the closing '`' or after `${` (pushing a [`Frame::Subst`]).
    fn template(&mut self, mut i: usize, prev: &mut Prev) -> usize {
        let b = self.bytes;
        let n = b.len();
        while i < n {
            match b[i] {
                b'`' => {
                    *prev = Prev::Value;
                    return i + 1;
                }
                b'\\' => i += 2,
                b'$' if b.get(i + 1) == Some(&b'{') => {
                    self.stack.push(Frame::Subst);
                    *prev = Prev::Expr;
                    return i + 2;
                }
                _ => i += 1,
            }
        }
        *prev = Prev::Value;
        n
    }

    /// Records a source map reference if the comment body `bytes[body..end]` (after `//` or `/*`,
    /// before the line end or `*/`) is `#`/`@`, optional blanks, `sourceMappingURL=VALUE`.
    fn comment(&mut self, body: usize, end: usize) {
        const KEY: &[u8] = b"sourceMappingURL=";
        let b = self.bytes;
        if !matches!(b.get(body), Some(b'#' | b'@')) {
            return;
        }
        let mut p = body + 1;
        while p < end && matches!(b[p], b' ' | b'\t') {
            p += 1;
        }
        if !b.get(p..end).is_some_and(|s| s.starts_with(KEY)) {
            return;
        }
        let start = p + KEY.len();
        let mut q = start;
        while q < end {
            let c = b[q];
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
                || (c >= 0x80 && unicode_space_len(b, q) > 0)
            {
                break;
            }
            q += 1;
        }
        if q > start
            && let Some(value) = self.src.get(start..q)
        {
            self.refs.push(JsRef {
                span: start..q,
                value: value.to_owned(),
                kind: JsRefKind::SourceMap,
                quote: None,
            });
        }
    }

    fn push_quoted(&mut self, (start, end, quote): (usize, usize, u8), kind: JsRefKind) {
        if let Some(raw) = self.src.get(start..end) {
            self.refs.push(JsRef {
                span: start..end,
                value: decode(raw, quote == b'`'),
                kind,
                quote: Some(char::from(quote)),
            });
        }
    }

    /// Look-ahead after the keyword `import` (ending at `after`). Consumes nothing: the main loop
    /// re-lexes the same bytes, so the look-aheads never change the lexer state.
    fn import(&mut self, after: usize) {
        let b = self.bytes;
        let (tok, p) = lex(b, after);
        if tok == Tok::Punct(b'(') {
            let (arg, p) = lex(b, p);
            let lit = match arg {
                Tok::Str(s, e, q) => (s, e, q),
                Tok::Template(s, e) => (s, e, b'`'),
                _ => return,
            };
            if matches!(lex(b, p).0, Tok::Punct(b')' | b',')) {
                self.push_quoted(lit, JsRefKind::DynamicImport);
            }
        } else if let Some(lit) = clause(b, tok, p, Clause::Import) {
            self.push_quoted(lit, JsRefKind::StaticImport);
        }
    }

    /// Look-ahead after the keyword `export`.
    fn export(&mut self, after: usize) {
        let (tok, p) = lex(self.bytes, after);
        if let Some(lit) = clause(self.bytes, tok, p, Clause::Export) {
            self.push_quoted(lit, JsRefKind::ExportFrom);
        }
    }

    /// Look-ahead after the keyword `new`: `URL ( literal , import . meta . url [,] )`.
    fn new_url(&mut self, after: usize) {
        let b = self.bytes;
        let (tok, p) = lex(b, after);
        if !is_word(b, tok, b"URL") {
            return;
        }
        let (tok, p) = lex(b, p);
        if tok != Tok::Punct(b'(') {
            return;
        }
        let (arg, mut p) = lex(b, p);
        let lit = match arg {
            Tok::Str(s, e, q) => (s, e, q),
            Tok::Template(s, e) => (s, e, b'`'),
            _ => return,
        };
        let pattern: [&[u8]; 6] = [b",", b"import", b".", b"meta", b".", b"url"];
        for want in pattern {
            let (tok, next) = lex(b, p);
            let ok = match tok {
                Tok::Punct(c) => want == [c],
                Tok::Ident(s, e) => &b[s..e] == want,
                _ => false,
            };
            if !ok {
                return;
            }
            p = next;
        }
        let (mut tok, p) = lex(b, p);
        if tok == Tok::Punct(b',') {
            tok = lex(b, p).0;
        }
        if tok == Tok::Punct(b')') {
            self.push_quoted(lit, JsRefKind::NewUrl);
        }
    }
}

/// Token of the look-ahead lexer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Eof,
    /// Unterminated string or template, or a template with substitutions.
    Other,
    /// Identifier, keyword or number: byte range.
    Ident(usize, usize),
    /// Terminated `'…'` or `"…"`: byte range of the contents, quote.
    Str(usize, usize, u8),
    /// Terminated template without `${`: byte range of the contents.
    Template(usize, usize),
    /// Any other single byte.
    Punct(u8),
}

/// Lexes one token of the look-ahead lexer at `i` (after skipping whitespace and comments).
/// Returns the token and the position after it.
fn lex(b: &[u8], i: usize) -> (Tok, usize) {
    let i = skip_trivia(b, i);
    let Some(&c) = b.get(i) else {
        return (Tok::Eof, i);
    };
    match c {
        b'\'' | b'"' => match string_end(b, i + 1, c) {
            (end, true) => (Tok::Str(i + 1, end - 1, c), end),
            (end, false) => (Tok::Other, end),
        },
        b'`' => {
            let mut j = i + 1;
            while j < b.len() {
                match b[j] {
                    b'`' => return (Tok::Template(i + 1, j), j + 1),
                    b'\\' => j += 2,
                    b'$' if b.get(j + 1) == Some(&b'{') => return (Tok::Other, j),
                    _ => j += 1,
                }
            }
            (Tok::Other, b.len())
        }
        _ if IDENT[usize::from(c)] => {
            let end = ident_end(b, i + 1);
            (Tok::Ident(i, end), end)
        }
        _ => (Tok::Punct(c), i + 1),
    }
}

fn is_word(b: &[u8], tok: Tok, word: &[u8]) -> bool {
    matches!(tok, Tok::Ident(s, e) if &b[s..e] == word)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Import,
    Export,
}

/// States of the import/export clause recogniser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Right after `import` / `export`.
    Start,
    /// After a default binding (or a phase modifier `source`/`defer` when `modifier`).
    Default { modifier: bool },
    /// After `import <ident> from` (the ident may have been a modifier or the binding).
    DefaultFrom { modifier: bool },
    /// After `import x,`.
    AfterComma,
    /// After `*`.
    Star,
    /// After `* as`.
    StarAs,
    /// Inside `{…}`, expecting a name or `}`.
    List,
    /// After a name in the list.
    ListName,
    /// After `name as`.
    ListAs,
    /// After `name as alias`.
    ListAlias,
    /// Expecting `from`.
    From,
    /// Expecting the module specifier.
    Source,
}

/// Recognises the rest of an import or export declaration whose first token (after the keyword) is
/// `tok`, ending at `p`. Returns the specifier literal `(start, end, quote)` on success.
/// Gives up on the first token that does not fit (including `;`).
fn clause(b: &[u8], mut tok: Tok, mut p: usize, kind: Clause) -> Option<(usize, usize, u8)> {
    let mut st = St::Start;
    loop {
        st = match (st, tok) {
            (St::Start, Tok::Str(s, e, q)) if kind == Clause::Import => return Some((s, e, q)),
            (St::Start, Tok::Ident(s, e)) if kind == Clause::Import => St::Default {
                modifier: matches!(&b[s..e], b"source" | b"defer"),
            },
            (St::Start | St::AfterComma, Tok::Punct(b'{')) => St::List,
            (St::Start | St::AfterComma, Tok::Punct(b'*')) => St::Star,
            (St::Default { .. }, Tok::Punct(b',')) => St::AfterComma,
            (St::Default { modifier }, Tok::Ident(s, e)) if &b[s..e] == b"from" => {
                St::DefaultFrom { modifier }
            }
            (St::Default { modifier: true }, Tok::Ident(..)) => St::Default { modifier: false },
            (St::Default { modifier: true }, Tok::Punct(b'*')) => St::Star,
            (St::DefaultFrom { .. }, Tok::Str(s, e, q)) => return Some((s, e, q)),
            (St::DefaultFrom { modifier: true }, Tok::Ident(s, e)) if &b[s..e] == b"from" => {
                St::Source
            }
            (St::DefaultFrom { modifier: true }, Tok::Punct(b',')) => St::AfterComma,
            (St::Star, Tok::Ident(s, e)) if &b[s..e] == b"as" => St::StarAs,
            (St::Star, Tok::Ident(s, e)) if kind == Clause::Export && &b[s..e] == b"from" => {
                St::Source
            }
            (St::StarAs, Tok::Ident(..)) => St::From,
            (St::StarAs, Tok::Str(..)) if kind == Clause::Export => St::From,
            (St::List, Tok::Punct(b'}')) => St::From,
            (St::List, Tok::Ident(..) | Tok::Str(..)) => St::ListName,
            (St::ListName, Tok::Ident(s, e)) if &b[s..e] == b"as" => St::ListAs,
            (St::ListAs, Tok::Ident(..) | Tok::Str(..)) => St::ListAlias,
            (St::ListName | St::ListAlias, Tok::Punct(b',')) => St::List,
            (St::ListName | St::ListAlias, Tok::Punct(b'}')) => St::From,
            (St::From, Tok::Ident(s, e)) if &b[s..e] == b"from" => St::Source,
            (St::Source, Tok::Str(s, e, q)) => return Some((s, e, q)),
            _ => return None,
        };
        (tok, p) = lex(b, p);
    }
}

/// Skips whitespace (ASCII and Unicode) and comments from `i`; an unterminated block comment runs to
/// the end of the input.
fn skip_trivia(b: &[u8], mut i: usize) -> usize {
    let n = b.len();
    while i < n {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b'/' => match b.get(i + 1) {
                Some(b'/') => i = line_end(b, i + 2),
                Some(b'*') => match block_comment_end(b, i + 2) {
                    Some(end) => i = end + 2,
                    None => return n,
                },
                _ => return i,
            },
            c if c >= 0x80 => match unicode_space_len(b, i) {
                0 => return i,
                w => i += w,
            },
            _ => return i,
        }
    }
    n
}

/// Length of the Unicode whitespace or line terminator (NBSP, BOM, Zs, LS, PS) starting at `i`, or 0.
fn unicode_space_len(b: &[u8], i: usize) -> usize {
    match b.get(i..).unwrap_or_default() {
        [0xC2, 0xA0, ..] => 2,
        [0xE1, 0x9A, 0x80, ..]
        | [0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF, ..]
        | [0xE2, 0x81, 0x9F, ..]
        | [0xE3, 0x80, 0x80, ..]
        | [0xEF, 0xBB, 0xBF, ..] => 3,
        _ => 0,
    }
}

/// Position of the line terminator (`\n`, `\r`, LS, PS) at or after `i`, or the end of input.
fn line_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => return i,
            0xE2 if matches!(b.get(i + 1..i + 3), Some([0x80, 0xA8 | 0xA9])) => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// Position of the `*/` closing a block comment whose body starts at `i`.
fn block_comment_end(b: &[u8], mut i: usize) -> Option<usize> {
    while i + 1 < b.len() {
        if b[i] == b'*' && b[i + 1] == b'/' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// End of a string whose body starts at `i`: `(position after the closing quote, true)`, or
/// `(position of the line break or end of input, false)` when unterminated.
fn string_end(b: &[u8], mut i: usize, quote: u8) -> (usize, bool) {
    let n = b.len();
    while i < n {
        let c = b[i];
        if c == quote {
            return (i + 1, true);
        }
        match c {
            b'\\' => {
                if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                    i += 3;
                } else {
                    i += 2;
                }
            }
            b'\n' | b'\r' => return (i, false),
            _ => i += 1,
        }
    }
    (n, false)
}

/// End of a regex literal whose body starts at `i` (after the flags), or the line end when unterminated.
fn regex_end(b: &[u8], mut i: usize) -> usize {
    let n = b.len();
    let mut class = false;
    while i < n {
        match b[i] {
            b'\\' => {
                if matches!(b.get(i + 1), Some(b'\n' | b'\r')) {
                    return i + 1;
                }
                i += 2;
            }
            b'[' => {
                class = true;
                i += 1;
            }
            b']' => {
                class = false;
                i += 1;
            }
            b'/' if !class => {
                i += 1;
                while i < n && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                return i;
            }
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    n
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        if !IDENT[usize::from(c)] || (c >= 0x80 && unicode_space_len(b, i) > 0) {
            break;
        }
        i += 1;
    }
    i
}

/// Numbers are lexed loosely (digits, letters, `_`, `.`): exponent signs split them, which does not
/// matter because the token after `+`/`-` is again a number.
fn number_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.')) {
        i += 1;
    }
    i
}

/// Decodes the raw contents of a string (or, with `template`, a substitution-free template) literal.
/// Invalid escapes are decoded leniently (the escaped character is kept); lone surrogates become U+FFFD.
fn decode(raw: &str, template: bool) -> String {
    let b = raw.as_bytes();
    if !b.iter().any(|&c| c == b'\\' || (template && c == b'\r')) {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chunk = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                out.push_str(raw.get(chunk..i).unwrap_or_default());
                i = decode_escape(raw, i + 1, &mut out);
                chunk = i;
            }
            b'\r' if template => {
                // Template values normalise CR and CRLF to LF.
                out.push_str(raw.get(chunk..i).unwrap_or_default());
                out.push('\n');
                i += if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                chunk = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(raw.get(chunk..).unwrap_or_default());
    out
}

/// Decodes the escape sequence whose body (after `\`) starts at `j`; returns the position after it.
fn decode_escape(raw: &str, j: usize, out: &mut String) -> usize {
    let b = raw.as_bytes();
    let Some(&c) = b.get(j) else {
        return j;
    };
    let simple = match c {
        b'n' => Some('\n'),
        b't' => Some('\t'),
        b'r' => Some('\r'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'v' => Some('\u{b}'),
        _ => None,
    };
    if let Some(ch) = simple {
        out.push(ch);
        return j + 1;
    }
    match c {
        b'0'..=b'7' => {
            // `\0` and legacy octal escapes (at most `\377`).
            let max = if c <= b'3' { 3 } else { 2 };
            let mut value = 0u32;
            let mut k = j;
            while k < b.len() && k - j < max && matches!(b[k], b'0'..=b'7') {
                value = value * 8 + u32::from(b[k] - b'0');
                k += 1;
            }
            out.push(char::from_u32(value).unwrap_or('\u{FFFD}'));
            k
        }
        b'x' => match hex_fixed(b, j + 1, 2) {
            Some(value) => {
                out.push(char::from_u32(value).unwrap_or('\u{FFFD}'));
                j + 3
            }
            None => {
                out.push('x');
                j + 1
            }
        },
        b'u' => match unicode_escape(b, j + 1) {
            Some((cp, mut k)) => {
                let ch = if (0xD800..0xDC00).contains(&cp) {
                    // A high surrogate combines with an immediately following `\u` low surrogate.
                    match b.get(k..k + 2) {
                        Some(b"\\u") => match unicode_escape(b, k + 2) {
                            Some((low, next)) if (0xDC00..0xE000).contains(&low) => {
                                k = next;
                                char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00))
                            }
                            _ => None,
                        },
                        _ => None,
                    }
                } else {
                    char::from_u32(cp)
                };
                out.push(ch.unwrap_or('\u{FFFD}'));
                k
            }
            None => {
                out.push('u');
                j + 1
            }
        },
        // Line continuations.
        b'\r' if b.get(j + 1) == Some(&b'\n') => j + 2,
        b'\r' | b'\n' => j + 1,
        _ => match raw.get(j..).and_then(|s| s.chars().next()) {
            Some(ch @ ('\u{2028}' | '\u{2029}')) => j + ch.len_utf8(),
            Some(ch) => {
                out.push(ch);
                j + ch.len_utf8()
            }
            None => j + 1,
        },
    }
}

/// `count` hex digits at `i`.
fn hex_fixed(b: &[u8], i: usize, count: usize) -> Option<u32> {
    let digits = b.get(i..i + count)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + char::from(d).to_digit(16)?))
}

/// The body of a `\u` escape at `i`: `XXXX` or `{X…}` (at most U+10FFFF). Returns the code point
/// (possibly a surrogate) and the position after the escape.
fn unicode_escape(b: &[u8], i: usize) -> Option<(u32, usize)> {
    if b.get(i) != Some(&b'{') {
        return hex_fixed(b, i, 4).map(|cp| (cp, i + 4));
    }
    let mut k = i + 1;
    let mut cp = 0u32;
    while let Some(d) = b.get(k).and_then(|&d| char::from(d).to_digit(16)) {
        cp = cp * 16 + d;
        if cp > 0x10FFFF {
            return None;
        }
        k += 1;
    }
    (k > i + 1 && b.get(k) == Some(&b'}')).then_some((cp, k + 1))
}

#[cfg(test)]
mod tests {
    use super::JsRefKind::{DynamicImport as Dyn, ExportFrom as Exp, NewUrl as Url};
    use super::JsRefKind::{SourceMap as Map, StaticImport as Imp};
    use super::*;

    /// Checks the invariants every reference must satisfy.
    fn validate(src: &str, r: &JsRef) {
        assert!(
            r.span.start <= r.span.end && r.span.end <= src.len(),
            "{r:?}"
        );
        assert!(
            src.is_char_boundary(r.span.start) && src.is_char_boundary(r.span.end),
            "{r:?}"
        );
        let raw = &src[r.span.clone()];
        match r.quote {
            Some(q) => {
                assert_ne!(r.kind, Map);
                assert_eq!(src[..r.span.start].chars().next_back(), Some(q), "{r:?}");
                assert_eq!(src[r.span.end..].chars().next(), Some(q), "{r:?}");
                assert_eq!(decode(raw, q == '`'), r.value);
                if !raw.contains(['\\', '\r']) {
                    assert_eq!(raw, r.value);
                }
            }
            None => {
                assert_eq!(r.kind, Map);
                assert_eq!(raw, r.value);
                assert!(!raw.is_empty());
            }
        }
    }

    fn check(src: &str, imports: bool, expected: &[(JsRefKind, &str)]) {
        let refs = scan_js(src, imports);
        let got: Vec<(JsRefKind, &str)> = refs.iter().map(|r| (r.kind, r.value.as_str())).collect();
        assert_eq!(got, expected, "source: {src:?}");
        for r in &refs {
            validate(src, r);
        }
        assert!(refs.windows(2).all(|w| w[0].span.start <= w[1].span.start));
    }

    type Case = (&'static str, bool, &'static [(JsRefKind, &'static str)]);

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // --- static imports ---
            ("import x from './a.js';", true, &[(Imp, "./a.js")]),
            ("import \"./side.js\"", true, &[(Imp, "./side.js")]),
            ("import'./side.js'", true, &[(Imp, "./side.js")]),
            ("import {\n  a,\n  b as c,\n  default as d,\n} from \"m\"", true, &[(Imp, "m")]),
            ("import {\"a-b\" as c, 'x' as y} from \"m\"", true, &[(Imp, "m")]),
            ("import * as ns from '/abs/x.js'", true, &[(Imp, "/abs/x.js")]),
            ("import x, {y} from 'react'", true, &[(Imp, "react")]),
            ("import x, * as n from 'https://cdn.example/x.js'", true, &[(Imp, "https://cdn.example/x.js")]),
            ("import {} from './empty.js'", true, &[(Imp, "./empty.js")]),
            ("import as from './as.js'; import from from './from.js'", true, &[(Imp, "./as.js"), (Imp, "./from.js")]),
            ("import /* c */ x /* d */ from // e\n './c.js'", true, &[(Imp, "./c.js")]),
            ("import j from './a.json' with { type: 'json' }; import('./b.js')", true, &[(Imp, "./a.json"), (Dyn, "./b.js")]),
            ("import source wasm from './m.wasm'; import defer * as ns from './d.js'", true, &[(Imp, "./m.wasm"), (Imp, "./d.js")]),
            ("import source from './src.js'", true, &[(Imp, "./src.js")]),
            ("import type T from './t'; import {type U} from './u'; import './v.js'", true, &[(Imp, "./v.js")]),
            ("import x from y; import x from;", true, &[]),
            ("import x\nfoo('./no.js')", true, &[]),
            ("import {a; b} from './no.js'", true, &[]),
            // --- minified ---
            ("import{a as b}from\"./x.js\";export*from\"./y.js\"", true, &[(Imp, "./x.js"), (Exp, "./y.js")]),
            ("import*as n from\"./n.js\";export{x as y}from'./z.js';const q=import(\"./d.js\")", true,
                &[(Imp, "./n.js"), (Exp, "./z.js"), (Dyn, "./d.js")]),
            // --- exports ---
            ("export * from './all.js'", true, &[(Exp, "./all.js")]),
            ("export {a, b as default} from \"./ab.js\"", true, &[(Exp, "./ab.js")]),
            ("export * as ns from './ns.js'; export * as \"s-s\" from './s.js'", true, &[(Exp, "./ns.js"), (Exp, "./s.js")]),
            ("export { a }; export {b as c}; export default 'x.js'; export const y = './no.js'", true, &[]),
            ("export {a}\nfrom('./no.js')", true, &[]),
            // --- dynamic imports ---
            ("import('./d.js'); import(\"./e.js\", { with: { type: 'json' } })", true, &[(Dyn, "./d.js"), (Dyn, "./e.js")]),
            ("import(`./t.js`)", true, &[(Dyn, "./t.js")]),
            ("import(`./${x}.js`); import('./a' + x); import(x); import(); import('./a'.concat(b))", true, &[]),
            ("await import ( /* c */ './spaced.js' /* d */ )", true, &[(Dyn, "./spaced.js")]),
            ("`${import('./in-subst.js')}`", true, &[(Dyn, "./in-subst.js")]),
            // --- not the import keyword ---
            ("foo.import('./no.js'); foo?.import('./no.js'); foo.\n import('./no.js')", true, &[]),
            ("import.meta.url; import.meta.resolve('./no.js')", true, &[]),
            ("x = { import: 1, import(a) {}, import };", true, &[]),
            ("reimport('./no.js'); import_x('./no.js'); $import('./no.js'); this.#import('./no.js')", true, &[]),
            // Not valid JS (a method parameter cannot be a string); documents that it is not special-cased.
            ("class A { static import('./invalid.js') }", true, &[(Dyn, "./invalid.js")]),
            // --- new URL ---
            ("new URL('./a.png', import.meta.url)", true, &[(Url, "./a.png")]),
            ("const u = new URL(\"./b.svg\" , import . meta . url , ).href", true, &[(Url, "./b.svg")]),
            ("new URL(`./c.png`, import.meta.url)", true, &[(Url, "./c.png")]),
            ("new URL('./no.png'); new URL('./no.png', base); new URL('./a' + b, import.meta.url);\
              new URL(x, import.meta.url); new URL('./no.png', import.meta.url.x); new URL('./no.png', import.meta.href)", true, &[]),
            ("x.new URL('./no.png', import.meta.url); new.target; new Url('./no.png', import.meta.url)", true, &[]),
            // --- source maps ---
            ("a()\n//# sourceMappingURL=a.js.map", true, &[(Map, "a.js.map")]),
            ("a()\n//@ sourceMappingURL=old.map\n", true, &[(Map, "old.map")]),
            ("a()\n/*# sourceMappingURL=data:application/json;base64,eyJ9 */", true, &[(Map, "data:application/json;base64,eyJ9")]),
            ("/*#sourceMappingURL=tight.map*/", true, &[(Map, "tight.map")]),
            ("//#\t sourceMappingURL=x.map  \r\nfoo()", true, &[(Map, "x.map")]),
            ("// sourceMappingURL=no.map\n// # sourceMappingURL=no.map\n//#sourceMappingURL=\n//# sourceMappingUrl=no.map", true, &[]),
            ("s = '//# sourceMappingURL=no.map'; t = `\n//# sourceMappingURL=no.map\n`", true, &[]),
            ("/*# sourceMappingURL=unterminated.map", true, &[]),
            ("import './a.js'; //# sourceMappingURL=x.map", false, &[(Map, "x.map")]),
            ("import '/*# sourceMappingURL=no.map */'; import /*# sourceMappingURL=c.map */ './a.js'", true,
                &[(Imp, "/*# sourceMappingURL=no.map */"), (Map, "c.map"), (Imp, "./a.js")]),
            // --- decoys in strings, comments, regexes, templates ---
            ("s = \"import x from './a.js'\"; t = 'export * from \"./b.js\"'", true, &[]),
            ("// import('./x.js')\n/* import x from './y.js' */", true, &[]),
            ("x = /import('.\\/x.js')/; y = /[/]import('x')/g", true, &[]),
            ("`import x from './a.js' ${'`'} import('./b.js')`", true, &[]),
            ("`${`${\"import('./no.js')\"}`}`; import('./yes.js')", true, &[(Dyn, "./yes.js")]),
            ("`a${ {b: `c${'}'}`}.b }d` + import('./after.js')", true, &[(Dyn, "./after.js")]),
            ("`\\${\"import('./no.js')\"}` + import('./yes.js')", true, &[(Dyn, "./yes.js")]),
            // --- regex versus division ---
            ("x = a / 2; y = \"/\"; import('./div.js')", true, &[(Dyn, "./div.js")]),
            ("x = y / 2 // import('./no.js')\nimport('./yes.js')", true, &[(Dyn, "./yes.js")]),
            ("a / b / c; s = '/'; import('./abc.js')", true, &[(Dyn, "./abc.js")]),
            ("if (x) /\"/.test(y); import('./if.js')", true, &[(Dyn, "./if.js")]),
            ("f(x) / \"/\"; import('./call.js')", true, &[(Dyn, "./call.js")]),
            ("return /'/g; import('./ret.js')", true, &[(Dyn, "./ret.js")]),
            ("function f(){} /'/.test(s); import('./blk.js')", true, &[(Dyn, "./blk.js")]),
            ("x = {a: 1}.a / 2 / '/'; import('./obj.js')", true, &[(Dyn, "./obj.js")]),
            ("x = a[0] / 2, s = '/', import('./idx.js')", true, &[(Dyn, "./idx.js")]),
            ("i++ / 2; s = '/'; import('./inc.js')", true, &[(Dyn, "./inc.js")]),
            ("x = /a\\/'b[/']/gi; import('./esc.js')", true, &[(Dyn, "./esc.js")]),
            ("x = a.return / 2; s = '/'; import('./prop.js')", true, &[(Dyn, "./prop.js")]),
            ("x = typeof /'/; y = a ? /'/ : /\"/; import('./ops.js')", true, &[(Dyn, "./ops.js")]),
            ("x = 1.5e+3 / 2; s = '/'; y = .5 / 1; import('./num.js')", true, &[(Dyn, "./num.js")]),
            ("x = `t` / 2; s = '/'; import('./tpl.js')", true, &[(Dyn, "./tpl.js")]),
            ("x = () => {}\n/'/.test(s); import('./arrow.js')", true, &[(Dyn, "./arrow.js")]),
            // --- escapes and unicode ---
            ("import('./\\u0041\\x42\\'\\\\c.js')", true, &[(Dyn, "./AB'\\c.js")]),
            ("import './a\\\nb.js'; import './c\\\r\nd.js'", true, &[(Imp, "./ab.js"), (Imp, "./cd.js")]),
            ("import '\\u{1F600}\\uD83D\\uDE00\\uD800\\uDC00x\\u{110000}\\0\\101\\8\\n'", true,
                &[(Imp, "\u{1F600}\u{1F600}\u{10000}xu{110000}\0A8\n")]),
            ("import '\\uD800'; import '\\uDFFF\\xZZ\\u12'", true, &[(Imp, "\u{FFFD}"), (Imp, "\u{FFFD}xZZu12")]),
            ("import('./ünï.js'); const é = 1 / 2; s = '/'; import(\"./日本.js\")", true,
                &[(Dyn, "./ünï.js"), (Dyn, "./日本.js")]),
            ("return\u{a0}/'/; import('./nbsp.js')", true, &[(Dyn, "./nbsp.js")]),
            ("// c\u{2028}import('./ls.js')", true, &[(Dyn, "./ls.js")]),
            ("\u{feff}import './bom.js'", true, &[(Imp, "./bom.js")]),
            ("import(`a\r\nb`)", true, &[(Dyn, "a\nb")]),
            // --- hashbang, html comments, jsx ---
            ("#!/usr/bin/env node import('./no.js')\nimport './yes.js'", true, &[(Imp, "./yes.js")]),
            ("\u{feff}#!/usr/bin/env node import('./no.js')\r\nimport './bom-yes.js'", true, &[(Imp, "./bom-yes.js")]),
            ("x; #!y; import('./yes.js')", true, &[(Dyn, "./yes.js")]),
            ("<!-- x\nimport('./html.js') -->", true, &[(Dyn, "./html.js")]),
            ("const a = <div>it's</div>;", true, &[]),
            // --- unterminated everything ---
            ("import './unterminated.js", true, &[]),
            ("import('./unterminated.js", true, &[]),
            ("import('./no-close-paren.js'", true, &[]),
            ("import {a, b", true, &[]),
            ("import x from", true, &[]),
            ("x = `abc ${ import('./no.js'", true, &[]),
            ("x = `abc", true, &[]),
            ("/* import('./no.js')", true, &[]),
            ("x = /abc[", true, &[]),
            ("new URL('./no.png', import.meta", true, &[]),
            ("'\\", true, &[]),
            ("import 'a\nimport('./next-line.js')", true, &[(Dyn, "./next-line.js")]),
            ("x = /ab\nimport('./after-regex.js')", true, &[(Dyn, "./after-regex.js")]),
            ("", true, &[]),
            ("   \n\t ", true, &[]),
            (")))}}}]]]", true, &[]),
        ];
        assert!(cases.len() >= 40);
        for (src, imports, expected) in cases {
            check(src, *imports, expected);
        }
    }

    /// Regex/division and template edge cases in the style of es-module-lexer's unit tests; each ends
    /// with a sentinel reference that is only found if the lexer is still in sync.
    #[test]
    fn regex_division_stress() {
        let src = r#"
            /as)df/; x();
            a / 2; '  /  '
            while (true)
              /test'/
            x-/a'/g
            try {}
            finally{}/a'/g
            (x);{f()}/d'export * from "./no1.js"/g
            ;{}/e'/g;
            {}/f'/g
            a / 'b' / c;
            /a'/ - /b'/;
            +{} /g -'/g'
            ('a')/h -'/g'
            if //x
            ('a')/i'/g;
            /asdf/ / /as'df/; // '
            p = `${/test/ + 5}`;
            /regex/ / x;
            function m() {
              return /*asdf8*// 5/;
            }
            x: while (true) {
              if (foo) break
              /import("./no2.js")/.test(bar) || baz()
              if (foo) continue
              /import("./no3.js")/.test(bar) || baz()
              if (foo) break x
              /import("./no4.js")/.test(bar) || baz()
              if (foo) continue x
              /import("./no5.js")/.test(bar) || baz()
            }
            if(g>=0){u[g++]=m}else{u.push(m)}/^(DBG|TICK): '/.test(r)||t(o.slice(0,200));
            tick++/fetti;f=(1)+")";
            const x = num / /'/.exec(l)[0].slice(1, -1)//'"
            const y = 5. / 10; class N {} /"/.exec(z); class a{}const Ti=a/yi;
            export * from './end.js';
        "#;
        check(src, true, &[(Exp, "./end.js")]);

        let src = r#"
            `$`
            import 'a';
            ``
            export { b };
            `a$b`
            import(`$`);
            `{$}`
            "";
            `
              ${
                import(`test/${ import(b)}`); /*
                    `  }
                */
              }
            `
            export * from './end.js';
        "#;
        check(src, true, &[(Imp, "a"), (Dyn, "$"), (Exp, "./end.js")]);

        let src = r#"
            export { " right-curlybrace} " } from './m0.js';
            export { ' {left-curlybrace ' as "x}" } from './m1.js';
            export { ' quote\' ' as foo1, " slash\\ " } from './m2.js'
            import {"~123" as a, 'ab cd' as b} from "./m3.js";
            await import (await import  ('foo'))
            import(
            "./statehash\u1011.js"
            )
            import './\x61\x62\x63.js'; import('./\u{20204}.js' + dyn); import('./\u{20204}.js' ());
        "#;
        check(
            src,
            true,
            &[
                (Exp, "./m0.js"),
                (Exp, "./m1.js"),
                (Exp, "./m2.js"),
                (Imp, "./m3.js"),
                (Dyn, "foo"),
                (Dyn, "./statehash\u{1011}.js"),
                (Imp, "./abc.js"),
            ],
        );
    }

    #[test]
    fn spans_and_quotes() {
        let src = "import {x} from './a\\u0041.js'; import(\"b\"); new URL(`c`, import.meta.url)\n//# sourceMappingURL=m.map";
        let refs = scan_js(src, true);
        let got: Vec<(&str, Option<char>)> = refs
            .iter()
            .map(|r| (&src[r.span.clone()], r.quote))
            .collect();
        assert_eq!(
            got,
            [
                ("./a\\u0041.js", Some('\'')),
                ("b", Some('"')),
                ("c", Some('`')),
                ("m.map", None)
            ]
        );
        assert_eq!(refs[0].value, "./aA.js");
        assert_eq!(refs[0].span, 17..29);
    }

    #[test]
    fn imports_false_returns_only_source_maps() {
        let src = "import a from './a.js';export*from'./b.js';import('./c.js');new URL('./d', import.meta.url)\n//# sourceMappingURL=e.map";
        assert_eq!(scan_js(src, true).len(), 5);
        check(src, false, &[(Map, "e.map")]);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 200_000;
        let mut src = "`${".repeat(depth);
        src.push_str("import('./deep.js')");
        src.push_str(&"}`".repeat(depth));
        src.push_str("; import('./after.js')");
        check(&src, true, &[(Dyn, "./deep.js"), (Dyn, "./after.js")]);
        for open in ["{", "(", "[", "`${", "${", "\\u{"] {
            let src = open.repeat(depth);
            assert!(scan_js(&src, true).is_empty());
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        const PIECES: &[&str] = &[
            "'",
            "\"",
            "`",
            "/",
            "\\",
            "*",
            "{",
            "}",
            "(",
            ")",
            "$",
            "\n",
            " ",
            "import",
            "from",
            "import ",
            " from ",
            "export",
            "new URL(",
            "import.meta.url",
            ",",
            ".",
            "./a.js",
            "#",
            "@",
            "sourceMappingURL=",
            "//# sourceMappingURL=x.map",
            "ü",
            "\u{2028}",
            "\r",
            "[",
            "]",
            ";",
            "x",
            "if",
            "return",
            "\\u{",
            "\\uD800",
            "${",
            "=>",
            "++",
            "as",
            "*/",
            "/*",
            "\u{a0}",
            "日",
        ];
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
        let mut total = 0;
        for _ in 0..1000 {
            let len = rng.random_range(0..120);
            let src: String = (0..len)
                .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                .collect();
            let refs = scan_js(&src, true);
            for r in &refs {
                validate(&src, r);
            }
            assert!(refs.windows(2).all(|w| w[0].span.start <= w[1].span.start));
            // Look-aheads never change the lexer state, so the source maps found do not depend on
            // `imports`.
            let maps: Vec<JsRef> = refs.iter().filter(|r| r.kind == Map).cloned().collect();
            assert_eq!(scan_js(&src, false), maps, "{src:?}");
            total += refs.len();
        }
        assert!(total > 0);
        // Arbitrary bytes, made valid UTF-8.
        for _ in 0..1000 {
            let bytes: Vec<u8> = (0..rng.random_range(0..200))
                .map(|_| rng.random::<u8>())
                .collect();
            let src = String::from_utf8_lossy(&bytes);
            for r in &scan_js(&src, true) {
                validate(&src, r);
            }
        }
    }
}
