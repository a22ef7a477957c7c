//! The OData list features Batch clients use: `$filter` (a subset: `eq ne gt
//! ge lt le`, `and`, `or`, `not`, parentheses, `startswith(prop,'x')`, paths
//! like `executionInfo/result`), `$select` of top-level properties, and
//! paging by `maxresults` with an `odata.nextLink` carrying `$skiptoken`.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug)]
pub(crate) enum Filter {
    Cmp(Vec<String>, String, Value),
    StartsWith(Vec<String>, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let st = i;
                i += 1;
                while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                    i += 1;
                }
                let t: String = cs[st..i].iter().collect();
                out.push(Tok::Num(t.parse().map_err(|_| format!("bad number {t}"))?));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let st = i;
                while i < cs.len() && (cs[i].is_alphanumeric() || matches!(cs[i], '_' | '/' | '$'))
                {
                    i += 1;
                }
                let word: String = cs[st..i].iter().collect();
                // DateTime'2020-01-01T00:00:00Z' compares as a string.
                if word.eq_ignore_ascii_case("datetime") && cs.get(i) == Some(&'\'') {
                    continue;
                }
                out.push(Tok::Ident(word));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!("expected {t:?}, found {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut l = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut l = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            l = Filter::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::LParen) => {
                let f = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(f)
            }
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("startswith") => {
                self.expect(Tok::LParen)?;
                let Some(Tok::Ident(p)) = self.next() else {
                    return Err("startswith needs a property".into());
                };
                self.expect(Tok::Comma)?;
                let Some(Tok::Str(s)) = self.next() else {
                    return Err("startswith needs a string".into());
                };
                self.expect(Tok::RParen)?;
                Ok(Filter::StartsWith(split(&p), s))
            }
            Some(Tok::Ident(p)) => {
                let Some(Tok::Ident(op)) = self.next() else {
                    return Err(format!("expected an operator after {p}"));
                };
                let op = op.to_ascii_lowercase();
                if !matches!(op.as_str(), "eq" | "ne" | "gt" | "ge" | "lt" | "le") {
                    return Err(format!("unsupported operator {op}"));
                }
                let v = match self.next() {
                    Some(Tok::Str(s)) => json!(s),
                    Some(Tok::Num(n)) => json!(n),
                    Some(Tok::Ident(w)) if w == "true" || w == "false" => json!(w == "true"),
                    Some(Tok::Ident(w)) if w == "null" => Value::Null,
                    other => return Err(format!("expected a literal, found {other:?}")),
                };
                Ok(Filter::Cmp(split(&p), op, v))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

fn split(p: &str) -> Vec<String> {
    p.split('/').map(str::to_owned).collect()
}

pub(crate) fn parse_filter(s: &str) -> Result<Filter, String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err("trailing tokens".into());
    }
    Ok(f)
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[k.as_str()])
}

impl Filter {
    pub(crate) fn matches(&self, v: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(v) && b.matches(v),
            Filter::Or(a, b) => a.matches(v) || b.matches(v),
            Filter::Not(a) => !a.matches(v),
            Filter::StartsWith(p, s) => lookup(v, p)
                .as_str()
                .is_some_and(|x| x.starts_with(s.as_str())),
            Filter::Cmp(p, op, lit) => {
                let x = lookup(v, p);
                let ord = match (x, lit) {
                    (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
                    (Value::Number(a), Value::Number(b)) => a
                        .as_f64()
                        .zip(b.as_f64())
                        .and_then(|(a, b)| a.partial_cmp(&b)),
                    (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
                    (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
                    _ => None,
                };
                use std::cmp::Ordering::*;
                match (op.as_str(), ord) {
                    ("eq", Some(o)) => o == Equal,
                    ("ne", o) => o != Some(Equal),
                    ("gt", Some(o)) => o == Greater,
                    ("ge", Some(o)) => o != Less,
                    ("lt", Some(o)) => o == Less,
                    ("le", Some(o)) => o != Greater,
                    _ => false,
                }
            }
        }
    }
}

/// Keeps only the `$select`ed top-level properties.
pub(crate) fn select(v: Value, fields: Option<&[String]>) -> Value {
    let (Some(fields), Value::Object(m)) = (fields, &v) else {
        return v;
    };
    let kept = m
        .iter()
        .filter(|(k, _)| fields.iter().any(|f| f == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// List query options taken from the query string.
pub(crate) struct ListQuery {
    pub filter: Option<Filter>,
    pub select: Option<Vec<String>>,
    pub max: usize,
    pub skiptoken: Option<String>,
}

impl ListQuery {
    pub(crate) fn from_query(q: &[(String, String)]) -> Result<Self, crate::response::BatchError> {
        let get = |n: &str| {
            q.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        let filter = match get("$filter") {
            Some(f) => Some(parse_filter(f).map_err(|e| crate::spec::bad_query("$filter", f, &e))?),
            None => None,
        };
        let select = get("$select").map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
        let max = get("maxresults")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1000);
        Ok(ListQuery {
            filter,
            select,
            max,
            skiptoken: get("$skiptoken").map(str::to_owned),
        })
    }
}

/// Builds one page of a list. `items` are (id, rendered entity) sorted by id;
/// the skiptoken is the last id returned, so pages stay stable while tasks
/// are added.
pub(crate) fn page(
    items: impl Iterator<Item = (String, Value)>,
    lq: &ListQuery,
    self_url: &str,
    query: &[(String, String)],
    metadata: &str,
) -> Value {
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    let mut more = false;
    for (id, v) in items {
        if lq.skiptoken.as_deref().is_some_and(|t| id.as_str() <= t) {
            continue;
        }
        if lq.filter.as_ref().is_some_and(|f| !f.matches(&v)) {
            continue;
        }
        if out.len() == lq.max {
            more = true;
            break;
        }
        last = Some(id);
        out.push(select(v, lq.select.as_deref()));
    }
    let mut body = json!({"odata.metadata": metadata, "value": out});
    if let (true, Some(last)) = (more, last) {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
        {
            ser.append_pair(k, v);
        }
        ser.append_pair("$skiptoken", &last);
        body["odata.nextLink"] = json!(format!("{self_url}?{}", ser.finish()));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let t = json!({"id": "t-1", "state": "completed", "executionInfo": {"result": "failure", "exitCode": 3}});
        let yes = [
            "state eq 'completed'",
            "executionInfo/result eq 'failure' and state eq 'completed'",
            "state eq 'active' or executionInfo/exitCode gt 2",
            "startswith(id,'t-')",
            "not (state eq 'active')",
        ];
        for f in yes {
            assert!(parse_filter(f).unwrap().matches(&t), "{f}");
        }
        assert!(!parse_filter("state ne 'completed'").unwrap().matches(&t));
        assert!(parse_filter("state eq").is_err());
        assert!(parse_filter("state like 'x'").is_err());
    }
}
