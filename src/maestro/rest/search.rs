//! Maestro `search=` strings, written exactly as the Go ManifestWork source
//! client writes them (`grpcsource.ToLabelSearch` and `ToSyncSearch`), so the
//! server sees nothing it has not been tested with.
//!
//! Values are never escaped: a value that would need escaping is refused.
//! Maestro has two search parsers with different escape rules (`''` in TSL,
//! `\'` in its JSONB parser) and which one runs depends on the whole string,
//! so no single escaping is safe.

use std::collections::BTreeMap;
use std::fmt;

use crate::maestro::error::{Error, Result};
use crate::names::{ConsumerName, SourceId, check_dns1123_subdomain};

/// Where the ManifestWork labels live in a bundle row.
const LABELS_JSONB: &str = "payload->'metadata'->'labels'";

/// A search string under construction.
///
/// Consumers are taken as [`ConsumerName`]s, which cannot hold a quote, so
/// only the steps that parse text can fail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    terms: Vec<String>,
}

impl Search {
    /// An empty search, matching everything.
    pub fn new() -> Search {
        Search::default()
    }

    /// Bundles published by `source`: `source='<id>'`.
    pub fn source(source: &SourceId) -> Search {
        // A SourceId admits neither quotes nor backslashes.
        Search {
            terms: vec![format!("source='{source}'")],
        }
    }

    /// Bundles for one consumer: `consumer_name='<name>'`.
    pub fn consumer(mut self, name: &ConsumerName) -> Search {
        self.terms.push(format!("consumer_name='{name}'"));
        self
    }

    /// Bundles for any of several consumers:
    /// `(consumer_name='a' or consumer_name='b')`. An empty list is refused
    /// rather than read as "any consumer".
    pub fn consumers<'a, I>(mut self, names: I) -> Result<Search>
    where
        I: IntoIterator<Item = &'a ConsumerName>,
    {
        let alternatives: Vec<String> = names
            .into_iter()
            .map(|name| format!("consumer_name='{name}'"))
            .collect();
        if alternatives.is_empty() {
            return Err(Error::Config(
                "a search over several consumers needs at least one consumer".into(),
            ));
        }
        self.terms.push(format!("({})", alternatives.join(" or ")));
        Ok(self)
    }

    /// Bundles whose ManifestWork labels match a Kubernetes label selector
    /// such as `app=web,tier!=db,env in (prod,stage)`. An empty selector
    /// adds nothing.
    pub fn labels(self, selector: &str) -> Result<Search> {
        self.label_selector(&LabelSelector::parse(selector)?)
    }

    /// Like [`Search::labels`], for a selector already parsed.
    pub fn label_selector(mut self, selector: &LabelSelector) -> Result<Search> {
        if let Some(term) = selector.to_search()? {
            self.terms.push(term);
        }
        Ok(self)
    }

    /// The search string.
    pub fn build(&self) -> String {
        self.terms.join(" and ")
    }
}

impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.build())
    }
}

/// `name='<name>'`, the only way to find a consumer by name.
pub(super) fn consumer_name_equals(name: &ConsumerName) -> String {
    // A ConsumerName is an RFC 1123 label: nothing in it needs escaping.
    format!("name='{name}'")
}

fn refuse_unquotable(what: &str, value: &str) -> Result<(), String> {
    if value.contains('\'') || value.contains('\\') {
        return Err(format!(
            "{what} {value:?} contains a quote or backslash; Maestro's search \
             language cannot carry it safely, so it is refused rather than escaped"
        ));
    }
    Ok(())
}

/// A parsed Kubernetes label selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted and without duplicates; empty for `Exists`/`DoesNotExist`.
    pub values: Vec<String>,
    /// The term as written, for error messages.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `k=v` or `k==v`.
    Equals,
    /// `k!=v`.
    NotEquals,
    /// `k in (a,b)`.
    In,
    /// `k notin (a,b)`.
    NotIn,
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>n`.
    GreaterThan,
    /// `k<n`.
    LessThan,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement, with Kubernetes semantics.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let number = |v: &str| v.parse::<i64>().ok();
        let bound = self.values.first().and_then(|v| number(v));
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan => {
                matches!((value.and_then(|v| number(v)), bound), (Some(v), Some(b)) if v > b)
            }
            Operator::LessThan => {
                matches!((value.and_then(|v| number(v)), bound), (Some(v), Some(b)) if v < b)
            }
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        })
    }
}

impl LabelSelector {
    /// Parses the Kubernetes selector syntax:
    /// `a=b,c==d,e!=f,g,!h,i in (x,y),j notin (z),k>1,l<2`.
    pub fn parse(selector: &str) -> Result<LabelSelector> {
        let bad = |term: &str, why: String| {
            Error::Config(format!(
                "invalid label selector {selector:?}: term {:?}: {why}",
                term.trim()
            ))
        };
        let mut requirements = Vec::new();
        if selector.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for term in split_terms(selector).map_err(|why| bad(selector, why))? {
            let requirement = parse_term(term).map_err(|why| bad(term, why))?;
            requirements.push(requirement);
        }
        // Kubernetes sorts requirements by key after parsing; the Go client
        // builds its search from that order, and so do we.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement, with Kubernetes
    /// semantics. Maestro's search differs for `!=` and `notin`: there a
    /// work without the key does not match; here it does.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The search term for this selector, `None` when it selects everything.
    ///
    /// Terms are grouped as the Go client groups them: one `@>` containment
    /// for all equalities, then `in` terms, then `<>` terms (from `!=` and
    /// `notin`), then existence terms.
    pub fn to_search(&self) -> Result<Option<String>> {
        let mut equals = Vec::new();
        let mut ins = Vec::new();
        let mut not_equals = Vec::new();
        let mut exists = Vec::new();
        for r in &self.requirements {
            let key = &r.key;
            match r.operator {
                Operator::Equals => {
                    for v in &r.values {
                        equals.push(format!("\"{key}\":\"{v}\""));
                    }
                }
                Operator::NotEquals | Operator::NotIn => {
                    for v in &r.values {
                        not_equals.push(format!("{LABELS_JSONB}->>'{key}'<>'{v}'"));
                    }
                }
                Operator::In => {
                    let quoted: Vec<String> = r.values.iter().map(|v| format!("'{v}'")).collect();
                    ins.push(format!("{LABELS_JSONB}->>'{key}'in({})", quoted.join(",")));
                }
                // `null` here is Maestro's bare token, compared as a string:
                // a missing key gives SQL NULL and so fails the comparison.
                Operator::Exists => exists.push(format!("{LABELS_JSONB}->>'{key}'<>null")),
                Operator::DoesNotExist => {
                    return Err(Error::Config(format!(
                        "label selector term {:?}: 'does not exist' (!key) cannot be expressed \
                         in Maestro's search language; filter on the client instead",
                        r.text
                    )));
                }
                Operator::GreaterThan | Operator::LessThan => {
                    return Err(Error::Config(format!(
                        "label selector term {:?}: the {} operator is not supported by \
                         Maestro's search language",
                        r.text, r.operator
                    )));
                }
            }
        }
        let mut parts = Vec::new();
        if !equals.is_empty() {
            parts.push(format!("{LABELS_JSONB}@>'{{{}}}'", equals.join(",")));
        }
        parts.extend(ins);
        parts.extend(not_equals);
        parts.extend(exists);
        Ok((!parts.is_empty()).then(|| parts.join(" and ")))
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        LabelSelector::parse(s)
    }
}

/// Splits on the commas that separate terms, not those inside `( )`.
fn split_terms(selector: &str) -> Result<Vec<&str>, String> {
    let mut terms = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced ')'".to_string())?;
            }
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    terms.push(&selector[start..]);
    Ok(terms)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Op(&'a str),
    Open,
    Close,
    Comma,
}

fn is_operator_char(c: char) -> bool {
    matches!(c, '!' | '=' | '<' | '>')
}

fn tokenize(term: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    let mut rest = term;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (token, len) = match c {
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            c if is_operator_char(c) => {
                let len = rest.find(|c| !is_operator_char(c)).unwrap_or(rest.len());
                let op = &rest[..len];
                if !matches!(op, "!" | "=" | "==" | "!=" | "<" | ">") {
                    return Err(format!("unknown operator {op:?}"));
                }
                (Token::Op(op), len)
            }
            _ => {
                let len = rest
                    .find(|c: char| {
                        c.is_whitespace() || is_operator_char(c) || matches!(c, '(' | ')' | ',')
                    })
                    .unwrap_or(rest.len());
                (Token::Word(&rest[..len]), len)
            }
        };
        tokens.push(token);
        rest = &rest[len..];
    }
    Ok(tokens)
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    let tokens = tokenize(term)?;
    let text = term.trim().to_string();
    let requirement = |key: &str, operator, values: Vec<String>| -> Result<Requirement, String> {
        check_key(key)?;
        let mut values = values;
        for v in &values {
            check_value(v)?;
        }
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
            text: text.clone(),
        })
    };
    match tokens.as_slice() {
        [] => Err("empty term".into()),
        [Token::Op("!"), Token::Word(key)] => requirement(key, Operator::DoesNotExist, vec![]),
        [Token::Word(key)] if !is_keyword(key) => requirement(key, Operator::Exists, vec![]),
        [Token::Word(key), Token::Op(op), value @ ..] => {
            let operator = match *op {
                "=" | "==" => Operator::Equals,
                "!=" => Operator::NotEquals,
                ">" => Operator::GreaterThan,
                "<" => Operator::LessThan,
                other => return Err(format!("unexpected operator {other:?} after the key")),
            };
            let value = match value {
                [] => "",
                [Token::Word(v)] => v,
                _ => return Err(format!("expected one value after {op:?}")),
            };
            if matches!(operator, Operator::GreaterThan | Operator::LessThan)
                && value.parse::<i64>().is_err()
            {
                return Err(format!("{op:?} needs an integer value, not {value:?}"));
            }
            requirement(key, operator, vec![value.to_string()])
        }
        [
            Token::Word(key),
            Token::Word(set_op),
            Token::Open,
            rest @ ..,
        ] if is_keyword(set_op) => {
            let operator = if *set_op == "in" {
                Operator::In
            } else {
                Operator::NotIn
            };
            let values = parse_set(rest).map_err(|why| format!("after {set_op:?}: {why}"))?;
            requirement(key, operator, values)
        }
        [Token::Word(_), Token::Word(set_op), ..] if is_keyword(set_op) => {
            Err(format!("expected '(' after {set_op:?}"))
        }
        _ => {
            Err("expected key, key=value, key!=value, !key, key in (...) or key notin (...)".into())
        }
    }
}

fn is_keyword(word: &str) -> bool {
    matches!(word, "in" | "notin")
}

/// Parses `a, b, c)`: the values after `(` up to the closing parenthesis.
fn parse_set(tokens: &[Token<'_>]) -> Result<Vec<String>, String> {
    let Some((Token::Close, inner)) = tokens.split_last() else {
        return Err("expected the value list to end the term with ')'".into());
    };
    if inner.is_empty() {
        return Err("the value list must not be empty".into());
    }
    let mut values = Vec::new();
    let mut expect_value = true;
    for token in inner {
        match (token, expect_value) {
            (Token::Word(v), true) => {
                values.push(v.to_string());
                expect_value = false;
            }
            // Kubernetes accepts an empty element, as in `in (a,)`.
            (Token::Comma, true) => values.push(String::new()),
            (Token::Comma, false) => expect_value = true,
            (other, _) => return Err(format!("unexpected {other:?} in the value list")),
        }
    }
    if expect_value {
        values.push(String::new());
    }
    Ok(values)
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name.
fn check_key(key: &str) -> Result<(), String> {
    refuse_unquotable("label key", key)?;
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            check_dns1123_subdomain(prefix)
                .map_err(|why| format!("label key prefix {prefix:?} {why}"))?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(format!("label key {key:?} has an empty name"));
    }
    check_label_name("label key", name)
}

fn check_value(value: &str) -> Result<(), String> {
    refuse_unquotable("label value", value)?;
    if value.is_empty() {
        return Ok(());
    }
    check_label_name("label value", value)
}

/// At most 63 characters of `[A-Za-z0-9_.-]`, starting and ending
/// alphanumeric. This also keeps `"` out of the JSON in `@>` terms.
fn check_label_name(what: &str, name: &str) -> Result<(), String> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() > 63 {
        return Err(format!("{what} {name:?} is longer than 63 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || !alnum(name.chars().next())
        || !alnum(name.chars().last())
    {
        return Err(format!(
            "{what} {name:?} must be alphanumerics, '-', '_' or '.', starting and ending \
             with an alphanumeric"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
