//! Label selectors as the API server parses `?labelSelector=`: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`, `k gt 1`, `k lt 1`, joined by commas. A selector the API server
//! cannot parse is refused (400), never read as "match nothing": a "no pods left" check with a
//! typo in its selector must fail, not pass vacuously. Keys and values are checked as label
//! keys and values are (qualified names, 63 characters, alphanumerics with `-_.`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Open,
    Close,
    Comma,
    Gt,
    Lt,
    End,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Bang => "!".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Comma => ",".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::End => String::new(),
        }
    }
}

fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let special = |c: char| matches!(c, '!' | '=' | '(' | ')' | ',' | '>' | '<');
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (token, len) = match (c, next) {
            ('!', Some('=')) => (Token::NotEq, 2),
            ('=', Some('=')) => (Token::DoubleEq, 2),
            ('!', _) => (Token::Bang, 1),
            ('=', _) => (Token::Eq, 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            (',', _) => (Token::Comma, 1),
            ('>', _) => (Token::Gt, 1),
            ('<', _) => (Token::Lt, 1),
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !special(chars[i]) {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
                continue;
            }
        };
        out.push(token);
        i += len;
    }
    out.push(Token::End);
    out
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn found(t: &Token, expected: &str) -> String {
        format!("found '{}', expected: {expected}", t.text())
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = *self.peek() == Token::Bang;
        if negated {
            self.next();
        }
        let key = match self.next() {
            Token::Ident(k) => k,
            t if negated => return Err(Self::found(&t, "identifier after '!'")),
            t => return Err(Self::found(&t, "!, identifier, or 'end of string'")),
        };
        check_key(&key)?;
        if negated {
            return Ok(Requirement::NotExists(key));
        }
        match self.peek().clone() {
            Token::End | Token::Comma => return Ok(Requirement::Exists(key)),
            _ => {}
        }
        let op = self.next();
        match op {
            Token::Eq | Token::DoubleEq | Token::NotEq => {
                let value = match self.peek().clone() {
                    Token::End | Token::Comma => String::new(),
                    Token::Ident(v) => {
                        self.next();
                        v
                    }
                    t => return Err(Self::found(&t, "identifier")),
                };
                check_value(&key, &value)?;
                Ok(if op == Token::NotEq { Requirement::NotEq(key, value) } else { Requirement::Eq(key, value) })
            }
            Token::Gt | Token::Lt => self.numeric(key, op == Token::Gt),
            Token::Ident(word) if word == "gt" || word == "lt" => self.numeric(key, word == "gt"),
            Token::Ident(word) if word == "in" || word == "notin" => {
                let open = self.next();
                if open != Token::Open {
                    return Err(Self::found(&open, "'('"));
                }
                let mut values = Vec::new();
                loop {
                    match self.next() {
                        Token::Ident(v) => {
                            check_value(&key, &v)?;
                            values.push(v);
                            match self.next() {
                                Token::Comma => {}
                                Token::Close => break,
                                t => return Err(Self::found(&t, "',' or ')'")),
                            }
                        }
                        Token::Close if values.is_empty() => {
                            return Err(format!(
                                "values: Required value: for 'in', 'notin' operators, values set can't be empty (key {key})"
                            ));
                        }
                        t => return Err(Self::found(&t, "',', ')' or identifier")),
                    }
                }
                Ok(if word == "in" { Requirement::In(key, values) } else { Requirement::NotIn(key, values) })
            }
            t => Err(Self::found(&t, "in, notin, =, ==, !=, gt, lt")),
        }
    }

    fn numeric(&mut self, key: String, greater: bool) -> Result<Requirement, String> {
        match self.next() {
            Token::Ident(v) => {
                let n = v.parse::<i64>().map_err(|_| {
                    format!("values[0]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer")
                })?;
                Ok(if greater { Requirement::Gt(key, n) } else { Requirement::Lt(key, n) })
            }
            t => Err(Self::found(&t, "identifier")),
        }
    }
}

const NAME_RULE: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn is_name(s: &str) -> bool {
    let ok_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    ok_edge(s.chars().next())
        && ok_edge(s.chars().last())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// A label key: `[prefix/]name`, the name at most 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let invalid = |why: &str| format!("key: Invalid value: \"{key}\": {why}");
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        return Err(invalid(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    if name.is_empty() {
        return Err(invalid("name part must be non-empty"));
    }
    if name.len() > 63 {
        return Err(invalid("name part must be no more than 63 characters"));
    }
    if !is_name(name) {
        return Err(invalid(&format!("name part {NAME_RULE}")));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the name alphabet.
fn check_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let invalid = |why: &str| format!("values[0][{key}]: Invalid value: \"{value}\": {why}");
    if value.len() > 63 {
        return Err(invalid("must be no more than 63 characters"));
    }
    if !is_name(value) {
        return Err(invalid(&format!("a valid label {NAME_RULE}")));
    }
    Ok(())
}

impl Selector {
    /// Parses as the API server does; the error is the API server's message.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut parser = Parser { tokens: lex(text), at: 0 };
        let mut reqs = Vec::new();
        if *parser.peek() == Token::End {
            return Ok(Selector(reqs));
        }
        loop {
            let r = parser.requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
            reqs.push(r);
            match parser.next() {
                Token::End => break,
                Token::Comma => {}
                t => return Err(format!("found '{}', expected: ',' or 'end of string'", t.text())),
            }
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        let number = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Gt(k, n) => number(k).is_some_and(|x| x > *n),
            Requirement::Lt(k, n) => number(k).is_some_and(|x| x < *n),
        })
    }
}

/// A workload's `spec.selector` (matchLabels and matchExpressions) in the string form.
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = selector["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> =
                e["values"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_and_equality_requirements() {
        let labels = json!({"app": "runtime", "tier": "backend"});
        assert!(Selector::parse("app=runtime,tier in (backend, web)").unwrap().matches(&labels));
        assert!(!Selector::parse("app=runtime,tier notin (backend)").unwrap().matches(&labels));
        assert!(Selector::parse("app,!missing").unwrap().matches(&labels));
        assert!(!Selector::parse("app!=runtime").unwrap().matches(&labels));
        assert!(Selector::parse("").unwrap().matches(&labels));
        assert!(Selector::parse("app in runtime").is_err());
        assert!(Selector::parse("app gt 3").unwrap().matches(&json!({"app": "4"})));
    }

    #[test]
    fn what_the_api_server_cannot_parse_is_an_error_not_an_empty_match() {
        for bad in [
            "app=a=b",
            "app in (a",
            "app in ()",
            "=x",
            "a b",
            "app=x y",
            "app!",
            "app=runtime,,",
            "bad key=x",
            "app=-x",
            "UPPER/k=v",
            "k=(x)",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad} parsed");
        }
        let e = Selector::parse("app==x==y").unwrap_err();
        assert!(e.contains("found '=='"), "{e}");
        assert!(Selector::parse("app.kubernetes.io/name=ac-runtime, tier in (a,b) ,!gone,x=").is_ok());
    }

    #[test]
    fn workload_selector_round_trips() {
        let sel = json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]});
        let s = selector_string(&sel);
        assert!(Selector::parse(&s).unwrap().matches(&json!({"app": "x", "t": "b"})));
        assert!(!Selector::parse(&s).unwrap().matches(&json!({"app": "x", "t": "c"})));
    }
}
