//! JSON values printed the way ZooKeeper's AdminServer prints them (Jackson's
//! `INDENT_OUTPUT` pretty printer), and Java's number formatting.
//!
//! - Objects: `{` then one `"key" : value` per line, two spaces per object
//!   level, `}` on its own line; an empty object is `{ }`.
//! - Arrays: on one line, `[ a, b ]`; an empty array is `[ ]`; arrays do not
//!   add an indentation level (an object inside one is indented as its parent).
//! - Numbers: longs as integers, doubles as Java's `Double.toString`.
//! - No trailing newline.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::Str(s.to_owned())
    }
}
impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::Str(s)
    }
}
impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Self {
        Json::Long(v)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Self {
        Json::Long(v.min(i64::MAX as u64) as i64)
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Self {
        Json::Long(v as i64)
    }
}
impl From<usize> for Json {
    fn from(v: usize) -> Self {
        Json::Long(v.min(i64::MAX as usize) as i64)
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Self {
        Json::Double(v)
    }
}

/// An ordered object under construction (Java's `LinkedHashMap`: putting an
/// existing key replaces its value in place).
#[derive(Debug, Default, Clone)]
pub struct ObjectBuilder(pub Vec<(String, Json)>);

impl ObjectBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, key: &str, value: impl Into<Json>) -> &mut Self {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
        self
    }
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    pub fn build(self) -> Json {
        Json::Object(self.0)
    }
}

impl Json {
    /// Jackson's pretty printing, as ZooKeeper's `JsonOutputter` writes it.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        write_value(self, 0, &mut out);
        out
    }
}

fn indent(level: usize, out: &mut String) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_value(v: &Json, level: usize, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Long(n) => {
            let _ = write!(out, "{n}");
        }
        Json::Double(d) => {
            // Jackson writes NaN and infinities as Java prints them (quoted
            // only with QUOTE_NON_NUMERIC_NUMBERS, on by default).
            if d.is_finite() {
                out.push_str(&java_double(*d));
            } else {
                write_string(&java_double(*d), out);
            }
        }
        Json::Str(s) => write_string(s, out),
        Json::Array(items) => {
            if items.is_empty() {
                out.push_str("[ ]");
                return;
            }
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, level, out);
            }
            out.push_str(" ]");
        }
        Json::Object(fields) => {
            if fields.is_empty() {
                out.push_str("{ }");
                return;
            }
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(level + 1, out);
                write_string(k, out);
                out.push_str(" : ");
                write_value(v, level + 1, out);
            }
            out.push('\n');
            indent(level, out);
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Java's `Double.toString`: the shortest decimal that round-trips, always
/// with a fraction part, in scientific notation (`1.0E7`, `1.0E-4`) outside
/// [1e-3, 1e7).
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let a = v.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust: "1.5e7" / "1e-4"; Java: "1.5E7" / "1.0E-4".
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_owned() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exp}")
    }
}

/// ZooKeeper's averages: rounded half-up to 4 decimal places.
pub fn round4(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    (v * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackson_layout() {
        let mut b = ObjectBuilder::new();
        b.put("command", "ruok").put("error", Json::Null);
        assert_eq!(b.build().pretty(), "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}");
        let v = Json::Object(vec![
            ("a".into(), Json::Array(vec![Json::Long(1), Json::Long(2)])),
            ("b".into(), Json::Array(vec![])),
            ("c".into(), Json::Object(vec![])),
            ("d".into(), Json::Array(vec![Json::Object(vec![("x".into(), Json::Long(1))]), Json::Object(vec![])])),
            ("e".into(), Json::Object(vec![("y".into(), Json::Double(0.0))])),
        ]);
        assert_eq!(
            v.pretty(),
            "{\n  \"a\" : [ 1, 2 ],\n  \"b\" : [ ],\n  \"c\" : { },\n  \"d\" : [ {\n    \"x\" : 1\n  }, { } ],\n  \"e\" : {\n    \"y\" : 0.0\n  }\n}"
        );
    }

    #[test]
    fn put_replaces_in_place() {
        let mut b = ObjectBuilder::new();
        b.put("error", "boom").put("command", "leader").put("error", "again");
        assert_eq!(b.0[0], ("error".to_owned(), Json::from("again")));
    }

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.7289), "1.7289");
        assert_eq!(java_double(12.0), "12.0");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.5e7), "1.5E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(f64::NAN), "NaN");
        assert_eq!(round4(1.728_94), 1.7289);
    }

    #[test]
    fn escapes() {
        assert_eq!(Json::from("a\"b\\c\n\u{1}").pretty(), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
