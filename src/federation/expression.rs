//! Claims-matching expressions on federated identity credentials.
//!
//! Language version 1 is exactly Entra's flexible-FIC language:
//! `claims['name'] eq 'value'`, `claims['name'] matches 'glob*?'`, joined by
//! `and` — here for any issuer. Version 2 adds `or`, `not`, parentheses,
//! `in ['a', 'b']`, `startsWith`, `ne`/`gt`/`ge`/`lt`/`le`, nested claims
//! (`claims['a']['b']`), numbers and booleans. A comparison against an array
//! claim holds if it holds for any element.
//!
//! Expressions are parsed and type-checked when written (errors carry the
//! character position), and stored compiled. Evaluation is bounded: the source
//! and nesting are capped, and globs match in O(pattern × input) time with no
//! backtracking explosion.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest expression accepted.
pub const MAX_EXPRESSION_CHARS: usize = 2048;
/// Deepest nesting of parentheses / `not`.
pub const MAX_DEPTH: usize = 16;
/// Most comparisons in one expression.
pub const MAX_COMPARISONS: usize = 64;
/// Most elements of an `in` list, and segments of a claim path.
pub const MAX_LIST: usize = 64;
pub const MAX_PATH: usize = 8;

/// A compiled expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Expr {
    And { items: Vec<Expr> },
    Or { items: Vec<Expr> },
    Not { item: Box<Expr> },
    Compare { path: Vec<String>, op: Op, value: Literal },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Matches,
    StartsWith,
    In,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "value")]
pub enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    List(Vec<Literal>),
}

/// A parse or type error, with the 0-based character position it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ExpressionError {
    pub position: usize,
    pub message: String,
}

/// Parses and type-checks `source` in `language_version` (1 or 2).
pub fn compile(source: &str, language_version: i32) -> Result<Expr, ExpressionError> {
    if !(1..=2).contains(&language_version) {
        return Err(ExpressionError { position: 0, message: "languageVersion must be 1 or 2".into() });
    }
    if source.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(ExpressionError {
            position: MAX_EXPRESSION_CHARS,
            message: format!("the expression is longer than {MAX_EXPRESSION_CHARS} characters"),
        });
    }
    let tokens = lex(source)?;
    let mut parser = Parser { tokens, at: 0, version: language_version, comparisons: 0 };
    let expr = parser.or_expr(0)?;
    if let Some(token) = parser.peek() {
        return Err(parser.error_at(token.position, format!("unexpected {}", token.kind.describe())));
    }
    Ok(expr)
}

/// Does `claims` satisfy `expr`?
pub fn evaluate(expr: &Expr, claims: &Value) -> bool {
    match expr {
        Expr::And { items } => items.iter().all(|e| evaluate(e, claims)),
        Expr::Or { items } => items.iter().any(|e| evaluate(e, claims)),
        Expr::Not { item } => !evaluate(item, claims),
        Expr::Compare { path, op, value } => {
            let mut current = claims;
            for segment in path {
                match current.get(segment) {
                    Some(next) => current = next,
                    None => return false,
                }
            }
            match current {
                Value::Array(items) => items.iter().any(|item| compare(item, *op, value)),
                single => compare(single, *op, value),
            }
        }
    }
}

fn compare(actual: &Value, op: Op, expected: &Literal) -> bool {
    match (op, expected) {
        (Op::In, Literal::List(options)) => options.iter().any(|option| compare(actual, Op::Eq, option)),
        (Op::Matches, Literal::String(pattern)) => actual.as_str().is_some_and(|s| glob_match(pattern, s)),
        (Op::StartsWith, Literal::String(prefix)) => actual.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
        (Op::Eq | Op::Ne, Literal::String(text)) => actual.as_str().is_some_and(|s| s == text) == (op == Op::Eq),
        (Op::Eq | Op::Ne, Literal::Bool(flag)) => actual.as_bool().is_some_and(|b| b == *flag) == (op == Op::Eq),
        (_, Literal::Number(number)) => match actual.as_f64() {
            Some(n) => match op {
                Op::Eq => n == *number,
                Op::Ne => n != *number,
                Op::Gt => n > *number,
                Op::Ge => n >= *number,
                Op::Lt => n < *number,
                Op::Le => n <= *number,
                _ => false,
            },
            None => op == Op::Ne,
        },
        _ => false,
    }
}

/// `*` matches any run (including empty), `?` exactly one character; everything
/// else literally. Greedy with a single resumption point: O(pattern × text),
/// never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            resume = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = resume {
            pi = star + 1;
            ti = matched + 1;
            resume = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Each comparison of an expression, rendered as source, with the claim value
/// it saw and whether it held — the "each sub-expression" of an explanation.
pub fn explain_comparisons(expr: &Expr, claims: &Value) -> Vec<(String, String, bool)> {
    match expr {
        Expr::And { items } | Expr::Or { items } => items.iter().flat_map(|e| explain_comparisons(e, claims)).collect(),
        Expr::Not { item } => explain_comparisons(item, claims),
        Expr::Compare { path, .. } => {
            let actual = path
                .iter()
                .try_fold(claims, |value, segment| value.get(segment))
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(no such claim)".to_string());
            vec![(render(expr), actual, evaluate(expr, claims))]
        }
    }
}

/// A comparison as source text.
fn render(expr: &Expr) -> String {
    fn literal(value: &Literal) -> String {
        match value {
            Literal::String(s) => format!("'{}'", s.replace('\'', "''")),
            Literal::Number(n) => n.to_string(),
            Literal::Bool(b) => b.to_string(),
            Literal::List(items) => format!("[{}]", items.iter().map(literal).collect::<Vec<_>>().join(", ")),
        }
    }
    match expr {
        Expr::Compare { path, op, value } => {
            let path: String = path.iter().map(|p| format!("['{}']", p.replace('\'', "''"))).collect();
            let op = match op {
                Op::Eq => "eq",
                Op::Ne => "ne",
                Op::Gt => "gt",
                Op::Ge => "ge",
                Op::Lt => "lt",
                Op::Le => "le",
                Op::Matches => "matches",
                Op::StartsWith => "startsWith",
                Op::In => "in",
            };
            format!("claims{path} {op} {}", literal(value))
        }
        _ => String::new(),
    }
}

/// The claim paths an expression reads (for "the token has no claim …" hints).
pub fn claim_paths(expr: &Expr) -> Vec<Vec<String>> {
    match expr {
        Expr::And { items } | Expr::Or { items } => items.iter().flat_map(claim_paths).collect(),
        Expr::Not { item } => claim_paths(item),
        Expr::Compare { path, .. } => vec![path.clone()],
    }
}

/// Does the expression hold for every possible subject of an issuer? (A lint:
/// such a credential trusts the whole issuer.)
pub fn matches_everything(expr: &Expr) -> bool {
    match expr {
        Expr::And { items } => items.iter().all(matches_everything),
        Expr::Or { items } => items.iter().any(matches_everything),
        Expr::Not { .. } => false,
        Expr::Compare { op: Op::Matches, value: Literal::String(pattern), .. } => pattern.chars().all(|c| c == '*'),
        Expr::Compare { op: Op::StartsWith, value: Literal::String(prefix), .. } => prefix.is_empty(),
        Expr::Compare { .. } => false,
    }
}

// ---- lexer ----

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Claims,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Word(String),
    Str(String),
    Num(f64),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Claims => "'claims'".into(),
            Kind::LBracket => "'['".into(),
            Kind::RBracket => "']'".into(),
            Kind::LParen => "'('".into(),
            Kind::RParen => "')'".into(),
            Kind::Comma => "','".into(),
            Kind::Word(w) => format!("'{w}'"),
            Kind::Str(_) => "a string".into(),
            Kind::Num(_) => "a number".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    position: usize,
}

fn lex(source: &str) -> Result<Vec<Token>, ExpressionError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '[' => Kind::LBracket,
            ']' => Kind::RBracket,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            ',' => Kind::Comma,
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(ExpressionError { position, message: "unterminated string".into() }),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => break,
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                Kind::Str(text)
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let number = text
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| ExpressionError { position, message: format!("'{text}' is not a number") })?;
                tokens.push(Token { kind: Kind::Num(number), position });
                continue;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(Token { kind: if word == "claims" { Kind::Claims } else { Kind::Word(word) }, position });
                continue;
            }
            other => return Err(ExpressionError { position, message: format!("unexpected character '{other}'") }),
        };
        tokens.push(Token { kind, position });
        i += 1;
    }
    Ok(tokens)
}

// ---- parser ----

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    version: i32,
    comparisons: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn end_position(&self) -> usize {
        self.tokens.last().map(|t| t.position + 1).unwrap_or(0)
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> ExpressionError {
        ExpressionError { position, message: message.into() }
    }

    fn expect(&mut self, kind: Kind) -> Result<usize, ExpressionError> {
        match self.tokens.get(self.at) {
            Some(token) if token.kind == kind => {
                self.at += 1;
                Ok(token.position)
            }
            Some(token) => {
                Err(self
                    .error_at(token.position, format!("expected {}, found {}", kind.describe(), token.kind.describe())))
            }
            None => Err(self.error_at(self.end_position(), format!("expected {}, found the end", kind.describe()))),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w == word)
    }

    fn v2(&self, position: usize, what: &str) -> Result<(), ExpressionError> {
        if self.version >= 2 { Ok(()) } else { Err(self.error_at(position, format!("{what} needs languageVersion 2"))) }
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, ExpressionError> {
        let mut items = vec![self.and_expr(depth)?];
        while self.keyword("or") {
            let position = self.peek().expect("keyword").position;
            self.v2(position, "'or'")?;
            self.at += 1;
            items.push(self.and_expr(depth)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or { items } })
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, ExpressionError> {
        let mut items = vec![self.unary(depth)?];
        while self.keyword("and") {
            self.at += 1;
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And { items } })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ExpressionError> {
        let position = self.peek().map(|t| t.position).unwrap_or_else(|| self.end_position());
        if depth >= MAX_DEPTH {
            return Err(self.error_at(position, format!("nesting deeper than {MAX_DEPTH}")));
        }
        if self.keyword("not") {
            self.v2(position, "'not'")?;
            self.at += 1;
            return Ok(Expr::Not { item: Box::new(self.unary(depth + 1)?) });
        }
        if matches!(self.peek(), Some(Token { kind: Kind::LParen, .. })) {
            self.v2(position, "parentheses")?;
            self.at += 1;
            let inner = self.or_expr(depth + 1)?;
            self.expect(Kind::RParen)?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ExpressionError> {
        let start = self.expect(Kind::Claims)?;
        let mut path = Vec::new();
        while matches!(self.peek(), Some(Token { kind: Kind::LBracket, .. })) {
            let bracket = self.expect(Kind::LBracket)?;
            match self.tokens.get(self.at).cloned() {
                Some(Token { kind: Kind::Str(name), .. }) if !name.is_empty() => {
                    self.at += 1;
                    path.push(name);
                }
                _ => return Err(self.error_at(bracket + 1, "expected a claim name in quotes, e.g. claims['sub']")),
            }
            self.expect(Kind::RBracket)?;
        }
        if path.is_empty() {
            return Err(self.error_at(start, "expected claims['name']"));
        }
        if path.len() > 1 {
            self.v2(start, "a nested claim")?;
        }
        if path.len() > MAX_PATH {
            return Err(self.error_at(start, format!("a claim path deeper than {MAX_PATH}")));
        }
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(self.error_at(start, format!("more than {MAX_COMPARISONS} comparisons")));
        }
        let op = match self.tokens.get(self.at).cloned() {
            Some(Token { kind: Kind::Word(word), position }) => {
                let op = match word.as_str() {
                    "eq" => Op::Eq,
                    "matches" => Op::Matches,
                    "ne" => Op::Ne,
                    "gt" => Op::Gt,
                    "ge" => Op::Ge,
                    "lt" => Op::Lt,
                    "le" => Op::Le,
                    "startsWith" | "startswith" => Op::StartsWith,
                    "in" => Op::In,
                    other => return Err(self.error_at(position, format!("unknown operator '{other}'"))),
                };
                if !matches!(op, Op::Eq | Op::Matches) {
                    self.v2(position, &format!("'{word}'"))?;
                }
                self.at += 1;
                op
            }
            Some(token) => {
                return Err(
                    self.error_at(token.position, format!("expected an operator, found {}", token.kind.describe()))
                );
            }
            None => return Err(self.error_at(self.end_position(), "expected an operator, found the end")),
        };
        let value_position = self.peek().map(|t| t.position).unwrap_or_else(|| self.end_position());
        let value = self.literal(op == Op::In)?;
        // Type check: each operator takes the literal it can compare.
        let fits = matches!(
            (op, &value),
            (Op::Matches | Op::StartsWith, Literal::String(_))
                | (Op::In, Literal::List(_))
                | (Op::Eq | Op::Ne, Literal::String(_) | Literal::Bool(_) | Literal::Number(_))
                | (Op::Gt | Op::Ge | Op::Lt | Op::Le, Literal::Number(_))
        );
        if !fits {
            return Err(self.error_at(value_position, format!("{op:?} cannot compare with this value").to_lowercase()));
        }
        if self.version == 1 && !matches!(value, Literal::String(_)) {
            return Err(self.error_at(value_position, "languageVersion 1 compares with strings only"));
        }
        Ok(Expr::Compare { path, op, value })
    }

    fn literal(&mut self, list: bool) -> Result<Literal, ExpressionError> {
        let token = self.tokens.get(self.at).cloned();
        let Some(token) = token else {
            return Err(self.error_at(self.end_position(), "expected a value, found the end"));
        };
        self.at += 1;
        match token.kind {
            Kind::Str(text) => Ok(Literal::String(text)),
            Kind::Num(n) => Ok(Literal::Number(n)),
            Kind::Word(w) if w == "true" => Ok(Literal::Bool(true)),
            Kind::Word(w) if w == "false" => Ok(Literal::Bool(false)),
            Kind::LBracket if list => {
                let mut items = Vec::new();
                loop {
                    items.push(self.literal(false)?);
                    if items.len() > MAX_LIST {
                        return Err(self.error_at(token.position, format!("a list longer than {MAX_LIST}")));
                    }
                    match self.tokens.get(self.at) {
                        Some(Token { kind: Kind::Comma, .. }) => self.at += 1,
                        Some(Token { kind: Kind::RBracket, .. }) => {
                            self.at += 1;
                            break;
                        }
                        Some(other) => return Err(self.error_at(other.position, "expected ',' or ']' in the list")),
                        None => return Err(self.error_at(self.end_position(), "unterminated list")),
                    }
                }
                Ok(Literal::List(items))
            }
            other => Err(self.error_at(token.position, format!("expected a value, found {}", other.describe()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn github() -> Value {
        json!({
            "sub": "repo:acme/app:environment:prod-eu",
            "job_workflow_ref": "acme/workflows/.github/workflows/deploy.yml@refs/heads/main",
            "run_attempt": 2, "pr": false,
            "kubernetes.io": {"namespace": "payments"},
            "groups": ["a", "b"],
        })
    }

    #[test]
    fn version_1_is_entras_language() {
        let e = compile(
            "claims['sub'] matches 'repo:acme/*:environment:prod*' and claims['job_workflow_ref'] matches 'acme/workflows/.github/workflows/deploy.yml@*'",
            1,
        )
        .unwrap();
        assert!(evaluate(&e, &github()));
        assert!(!evaluate(&compile("claims['sub'] eq 'repo:acme/app:environment:prod'", 1).unwrap(), &github()));
        for v2_only in [
            "claims['a'] eq 'x' or claims['b'] eq 'y'",
            "not claims['a'] eq 'x'",
            "(claims['a'] eq 'x')",
            "claims['a']['b'] eq 'x'",
            "claims['a'] in ['x']",
            "claims['a'] startsWith 'x'",
            "claims['a'] eq 5",
        ] {
            let err = compile(v2_only, 1).unwrap_err();
            assert!(err.message.contains("languageVersion"), "{v2_only}: {err}");
        }
    }

    #[test]
    fn version_2_extensions() {
        let claims = github();
        for (source, expected) in [
            ("claims['sub'] eq 'x' or claims['sub'] startsWith 'repo:acme/'", true),
            ("not claims['sub'] matches '*staging*'", true),
            ("claims['kubernetes.io']['namespace'] in ['payments', 'orders']", true),
            ("claims['groups'] eq 'b'", true),
            ("claims['groups'] eq 'c'", false),
            ("claims['run_attempt'] ge 2 and claims['run_attempt'] lt 3", true),
            ("claims['pr'] eq false", true),
            ("claims['missing'] eq 'x'", false),
            ("not claims['missing'] eq 'x'", true),
            ("(claims['sub'] eq 'a' or claims['sub'] eq 'b') and claims['pr'] eq false", false),
        ] {
            assert_eq!(evaluate(&compile(source, 2).unwrap(), &claims), expected, "{source}");
        }
    }

    #[test]
    fn errors_name_their_position() {
        let err = compile("claims['sub'] equals 'x'", 1).unwrap_err();
        assert_eq!(err.position, 14);
        assert!(err.message.contains("equals"));
        let err = compile("claims['sub'] eq 'x' and", 1).unwrap_err();
        assert_eq!(err.position, 22);
        assert_eq!(compile("claims['sub'] eq 'unterminated", 1).unwrap_err().position, 17);
        assert!(compile("claims['n'] gt 'text'", 2).unwrap_err().message.contains("cannot compare"));
        assert!(compile("claims['n'] matches 5", 2).is_err());
        assert!(compile("", 1).is_err());
        assert!(compile("claims['sub'] eq 'x'", 3).is_err());
    }

    #[test]
    fn size_and_nesting_are_capped() {
        assert!(compile(&format!("claims['sub'] eq '{}'", "x".repeat(MAX_EXPRESSION_CHARS)), 2).is_err());
        let deep = format!("{}claims['a'] eq 'x'{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(compile(&deep, 2).unwrap_err().message.contains("nesting"));
        let nots = format!("{}claims['a'] eq 'x'", "not ".repeat(MAX_DEPTH + 1));
        assert!(compile(&nots, 2).is_err());
        let many = vec!["claims['a'] eq 'x'"; MAX_COMPARISONS + 1].join(" and ");
        assert!(compile(&many, 2).unwrap_err().message.contains("comparisons"));
    }

    #[test]
    fn comparisons_are_explained_one_by_one() {
        let e = compile("claims['sub'] matches 'repo:acme/*' and not claims['groups'] in ['x', 'b']", 2).unwrap();
        let parts = explain_comparisons(&e, &github());
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            (
                "claims['sub'] matches 'repo:acme/*'".to_string(),
                "\"repo:acme/app:environment:prod-eu\"".to_string(),
                true
            )
        );
        assert_eq!(parts[1].0, "claims['groups'] in ['x', 'b']");
        assert!(parts[1].2, "the comparison itself holds; the 'not' around it fails the whole");
    }

    #[test]
    fn quotes_escape_by_doubling() {
        let e = compile("claims['name'] eq 'O''Brien'", 1).unwrap();
        assert!(evaluate(&e, &json!({"name": "O'Brien"})));
    }

    #[test]
    fn adversarial_globs_stay_fast() {
        let pattern = format!("{}b", "*a".repeat(300));
        let text = "a".repeat(100_000);
        let started = std::time::Instant::now();
        assert!(!glob_match(&pattern, &text));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn matches_everything_is_detected() {
        assert!(matches_everything(&compile("claims['sub'] matches '*'", 1).unwrap()));
        assert!(!matches_everything(&compile("claims['sub'] matches 'repo:*'", 1).unwrap()));
        assert!(matches_everything(&compile("claims['sub'] eq 'x' or claims['sub'] matches '**'", 2).unwrap()));
    }

    /// A deliberately naive recursive glob, the reference for the property test.
    fn reference_glob(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some('*'), _) => reference_glob(&p[1..], t) || (!t.is_empty() && reference_glob(p, &t[1..])),
            (Some('?'), Some(_)) => reference_glob(&p[1..], &t[1..]),
            (Some(c), Some(d)) if c == d => reference_glob(&p[1..], &t[1..]),
            _ => false,
        }
    }

    #[test]
    fn glob_agrees_with_a_reference_implementation() {
        // A small deterministic generator over a tiny alphabet explores the
        // interesting cases (stars next to each other, ? at the edges, repeats).
        let alphabet = ['a', 'b', '*', '?'];
        let mut seed: u64 = 0x9E3779B97F4A7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let plen = (next() % 7) as usize;
            let tlen = (next() % 9) as usize;
            let p: String = (0..plen).map(|_| alphabet[(next() % 4) as usize]).collect();
            let t: String = (0..tlen).map(|_| alphabet[(next() % 2) as usize]).collect();
            let expected = reference_glob(&p.chars().collect::<Vec<_>>(), &t.chars().collect::<Vec<_>>());
            assert_eq!(glob_match(&p, &t), expected, "pattern {p:?} text {t:?}");
        }
    }
}
