//! Druid's expression language, as plywood writes it for virtual columns, `expression` filters
//! and aggregator inputs, and post-aggregators: parsed here and translated into a DataFusion
//! expression, so DataFusion evaluates it like any other.
//!
//! Grammar (loosest first): `||`, `&&`, comparisons (`== != < <= > >=`), `+ -`, `* / %`, `^`
//! (right-associative), unary `- !`, then literals (`null`, numbers, `'text'`), columns (`"name"`
//! with JSON escapes, or a bare name) and calls `f(…)`. Types follow Druid: whole numbers stay
//! whole (`5 / 2` is 2), a double anywhere makes the result a double, `+` with text joins text,
//! comparisons and logic give booleans, and a whole-number division by zero gives null rather
//! than failing the query.

use std::ops::Not;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{Expr, Operator, binary_expr, cast, lit, try_cast, when};
use datafusion::prelude::{coalesce, nullif};

use crate::druid::native::context::Resolver;
use crate::query::statement::MAX_DEPTH;
use crate::{Error, Result};

/// How deep parentheses and unary operators may nest while parsing.
const MAX_PARSE_DEPTH: usize = 128;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    /// `null`.
    Null,
    /// A whole number.
    Long(i64),
    /// A floating-point number.
    Double(f64),
    /// `'text'`.
    Text(String),
    /// A column: `"name"` or `name`.
    Column(String),
    /// `-x`, `!x`.
    Unary(char, Box<Ast>),
    /// `a op b`.
    Binary(&'static str, Box<Ast>, Box<Ast>),
    /// `f(args…)`.
    Call(String, Vec<Ast>),
    /// `[a, b, …]`.
    Array(Vec<Ast>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(String),
    Text(String),
    Quoted(String),
    Name(String),
    Op(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let bad = |why: String| Error::InvalidQuery(format!("invalid expression {text:?}: {why}"));
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                // An exponent's sign belongs to the number.
                if matches!(chars[i], 'e' | 'E') && matches!(chars.get(i + 1), Some('+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
            continue;
        }
        if c == '\'' || c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else { return Err(bad(format!("unterminated {c}"))) };
                i += 1;
                if d == c {
                    break;
                }
                if d == '\\' {
                    let Some(&e) = chars.get(i) else { return Err(bad("a lone backslash".into())) };
                    i += 1;
                    value.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'u' => {
                            let hex: String =
                                chars.get(i..i + 4).ok_or_else(|| bad("a short \\u escape".into()))?.iter().collect();
                            i += 4;
                            let code = u32::from_str_radix(&hex, 16).map_err(|_| bad(format!("bad escape \\u{hex}")))?;
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        other => other,
                    });
                } else {
                    value.push(d);
                }
            }
            out.push(if c == '\'' { Token::Text(value) } else { Token::Quoted(value) });
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = ["==", "!=", "<=", ">=", "&&", "||"].into_iter().find(|o| *o == two);
        if let Some(op) = op {
            out.push(Token::Op(op));
            i += 2;
            continue;
        }
        let op = ["+", "-", "*", "/", "%", "^", "<", ">", "!", "(", ")", ",", "[", "]"].into_iter().find(|o| o.starts_with(c));
        match op {
            Some(op) => out.push(Token::Op(op)),
            None => return Err(bad(format!("unexpected character {c:?}"))),
        }
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn bad(&self, why: &str) -> Error {
        Error::InvalidQuery(format!("invalid expression {:?}: {why}", self.text))
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some(Token::Op(op)) => Some(op),
            _ => None,
        }
    }

    fn expect(&mut self, op: &str) -> Result<()> {
        if self.peek_op() == Some(op) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.bad(&format!("expected {op:?}")))
        }
    }

    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.bad(&format!("nested deeper than {MAX_PARSE_DEPTH} levels")));
        }
        let out = parse(self);
        self.depth -= 1;
        out
    }

    /// Binary operators by level, loosest first.
    fn level(&mut self, level: usize) -> Result<Ast> {
        const LEVELS: [&[&str]; 5] = [&["||"], &["&&"], &["==", "!=", "<", "<=", ">", ">="], &["+", "-"], &["*", "/", "%"]];
        if level == LEVELS.len() {
            return self.power();
        }
        let mut left = self.level(level + 1)?;
        while let Some(op) = self.peek_op().filter(|op| LEVELS[level].contains(op)) {
            self.at += 1;
            let right = self.level(level + 1)?;
            left = Ast::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn power(&mut self) -> Result<Ast> {
        let base = self.unary()?;
        if self.peek_op() == Some("^") {
            self.at += 1;
            let exponent = self.nested(Self::power)?;
            return Ok(Ast::Binary("^", Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Ast> {
        match self.peek_op() {
            Some(op @ ("-" | "!")) => {
                self.at += 1;
                let inner = self.nested(Self::unary)?;
                Ok(match (op, inner) {
                    ("-", Ast::Long(n)) => Ast::Long(n.checked_neg().ok_or_else(|| self.bad("number out of range"))?),
                    ("-", Ast::Double(d)) => Ast::Double(-d),
                    (op, inner) => Ast::Unary(op.chars().next().unwrap_or('-'), Box::new(inner)),
                })
            }
            _ => self.primary(),
        }
    }

    fn list(&mut self, close: &str) -> Result<Vec<Ast>> {
        let mut items = Vec::new();
        if self.peek_op() == Some(close) {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.nested(|p| p.level(0))?);
            match self.peek_op() {
                Some(",") => self.at += 1,
                Some(op) if op == close => {
                    self.at += 1;
                    return Ok(items);
                }
                _ => return Err(self.bad(&format!("expected ',' or {close:?}"))),
            }
        }
    }

    fn primary(&mut self) -> Result<Ast> {
        let token = self.tokens.get(self.at).cloned().ok_or_else(|| self.bad("it ends too early"))?;
        self.at += 1;
        match token {
            Token::Number(n) => {
                if let Ok(v) = n.parse::<i64>() {
                    Ok(Ast::Long(v))
                } else {
                    n.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .map(Ast::Double)
                        .ok_or_else(|| self.bad(&format!("bad number {n}")))
                }
            }
            Token::Text(s) => Ok(Ast::Text(s)),
            Token::Quoted(s) => Ok(Ast::Column(s)),
            Token::Name(name) => {
                if self.peek_op() == Some("(") {
                    self.at += 1;
                    let args = self.nested(|p| p.list(")"))?;
                    return Ok(Ast::Call(name.to_ascii_lowercase(), args));
                }
                Ok(match name.as_str() {
                    "null" | "NULL" => Ast::Null,
                    _ => Ast::Column(name),
                })
            }
            Token::Op("(") => {
                let inner = self.nested(|p| p.level(0))?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Op("[") => Ok(Ast::Array(self.nested(|p| p.list("]"))?)),
            Token::Op(op) => Err(self.bad(&format!("unexpected {op:?}"))),
        }
    }
}

/// Parses a Druid expression.
pub(crate) fn parse(text: &str) -> Result<Ast> {
    if text.len() > 64 * 1024 {
        return Err(Error::InvalidQuery(format!("an expression of {} bytes is too long (at most 64 KiB)", text.len())));
    }
    let mut parser = Parser { text, tokens: tokenize(text)?, at: 0, depth: 0 };
    let ast = parser.level(0)?;
    if parser.at != parser.tokens.len() {
        return Err(parser.bad("unexpected text after the expression"));
    }
    if depth(&ast) > MAX_DEPTH {
        return Err(parser.bad(&format!("it nests deeper than {MAX_DEPTH} levels")));
    }
    Ok(ast)
}

/// How deep `ast` nests (its operator chains parse without recursion but build deep trees).
fn depth(ast: &Ast) -> usize {
    // Iterative, so a long chain cannot overflow the stack while it is measured.
    let mut deepest = 0;
    let mut stack = vec![(ast, 1usize)];
    while let Some((node, d)) = stack.pop() {
        deepest = deepest.max(d);
        match node {
            Ast::Unary(_, a) => stack.push((a, d + 1)),
            Ast::Binary(_, a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
            }
            Ast::Call(_, args) | Ast::Array(args) => stack.extend(args.iter().map(|a| (a, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// A translated expression with its Druid type.
#[derive(Debug, Clone)]
pub(crate) struct Typed {
    pub(crate) expr: Expr,
    pub(crate) ty: Ty,
}

/// Druid's expression types (booleans are Druid's 1/0 longs, kept apart until needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Long,
    Double,
    Text,
    Bool,
    Null,
}

impl Typed {
    fn new(expr: Expr, ty: Ty) -> Self {
        Self { expr, ty }
    }

    /// As a number: booleans become 1/0, text is parsed (null when it is not a number).
    pub(crate) fn number(self) -> Typed {
        match self.ty {
            Ty::Long | Ty::Double => self,
            Ty::Bool => Typed::new(cast(self.expr, DataType::Int64), Ty::Long),
            Ty::Text => Typed::new(try_cast(self.expr, DataType::Float64), Ty::Double),
            Ty::Null => Typed::new(cast(self.expr, DataType::Int64), Ty::Long),
        }
    }

    fn double(self) -> Expr {
        cast(self.number().expr, DataType::Float64)
    }

    /// As a condition: numbers are true when not zero, text when it reads as a non-zero number
    /// or as `true`.
    pub(crate) fn truth(self) -> Expr {
        match self.ty {
            Ty::Bool => self.expr,
            Ty::Long | Ty::Double => self.expr.not_eq(lit(0)),
            Ty::Null => lit(ScalarValue::Boolean(None)),
            Ty::Text => {
                let lowered = f::lower(self.expr.clone());
                lowered.eq(lit("true")).or(try_cast(self.expr, DataType::Float64).not_eq(lit(0.0)))
            }
        }
    }

    /// As text (numbers in their usual text form).
    pub(crate) fn text(self) -> Expr {
        match self.ty {
            Ty::Text => self.expr,
            Ty::Bool => when(self.expr.clone(), lit("true")).when(self.expr.not(), lit("false")).end().unwrap_or(lit("false")),
            _ => cast(self.expr, DataType::Utf8),
        }
    }
}

/// The period argument of `timestamp_floor`/`timestamp_shift` etc.
fn text_arg(args: &[Ast], i: usize, name: &str) -> Result<Option<String>> {
    match args.get(i) {
        None | Some(Ast::Null) => Ok(None),
        Some(Ast::Text(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::InvalidQuery(format!("{name}: argument {} must be a text literal", i + 1))),
    }
}

/// Translates `ast` over the columns `resolver` knows.
pub(crate) fn translate(ast: &Ast, resolver: &dyn Resolver) -> Result<Typed> {
    let t = |a: &Ast| translate(a, resolver);
    Ok(match ast {
        Ast::Null => Typed::new(lit(ScalarValue::Null), Ty::Null),
        Ast::Long(n) => Typed::new(lit(*n), Ty::Long),
        Ast::Double(d) => Typed::new(lit(*d), Ty::Double),
        Ast::Text(s) => Typed::new(lit(s.clone()), Ty::Text),
        Ast::Column(name) => resolver.expression_column(name)?,
        Ast::Array(_) => {
            return Err(Error::Unsupported("array expressions are not supported: Oriel's columns hold one value".into()));
        }
        Ast::Unary('!', a) => Typed::new(t(a)?.truth().not(), Ty::Bool),
        Ast::Unary(_, a) => {
            let a = t(a)?.number();
            Typed::new(Expr::Negative(Box::new(a.expr)), a.ty)
        }
        Ast::Binary(op, a, b) => binary(op, t(a)?, t(b)?),
        Ast::Call(name, args) => call(name, args, resolver)?,
    })
}

fn binary(op: &str, a: Typed, b: Typed) -> Typed {
    match op {
        "||" => Typed::new(a.truth().or(b.truth()), Ty::Bool),
        "&&" => Typed::new(a.truth().and(b.truth()), Ty::Bool),
        "==" | "!=" | "<" | "<=" | ">" | ">=" => {
            let operator = match op {
                "==" => Operator::Eq,
                "!=" => Operator::NotEq,
                "<" => Operator::Lt,
                "<=" => Operator::LtEq,
                ">" => Operator::Gt,
                _ => Operator::GtEq,
            };
            // Text against text compares text; anything numeric compares as numbers.
            let (x, y) = if a.ty == Ty::Text && b.ty == Ty::Text {
                (a.expr, b.expr)
            } else if matches!(a.ty, Ty::Text | Ty::Null) && matches!(b.ty, Ty::Text | Ty::Null) {
                (a.text(), b.text())
            } else {
                (a.double(), b.double())
            };
            Typed::new(binary_expr(x, operator, y), Ty::Bool)
        }
        "+" if a.ty == Ty::Text || b.ty == Ty::Text => Typed::new(f::concat(vec![a.text(), b.text()]), Ty::Text),
        "^" => Typed::new(f::power(a.double(), b.double()), Ty::Double),
        _ => {
            let (a, b) = (a.number(), b.number());
            let long = a.ty == Ty::Long && b.ty == Ty::Long;
            let (x, y) = if long { (a.expr, b.expr) } else { (cast(a.expr, DataType::Float64), cast(b.expr, DataType::Float64)) };
            let expr = match op {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                // A whole-number division by zero is null instead of an error for the query.
                "/" if long => x / nullif(y, lit(0i64)),
                "/" => x / y,
                _ if long => x % nullif(y, lit(0i64)),
                _ => x % y,
            };
            Typed::new(expr, if long { Ty::Long } else { Ty::Double })
        }
    }
}

fn call(name: &str, args: &[Ast], resolver: &dyn Resolver) -> Result<Typed> {
    let arity = |min: usize, max: usize| -> Result<()> {
        if args.len() < min || args.len() > max {
            return Err(Error::InvalidQuery(format!("{name}() takes {min} to {max} arguments, not {}", args.len())));
        }
        Ok(())
    };
    let t = |i: usize| translate(&args[i], resolver);
    let udf = |udf_name: &str, call_args: Vec<Expr>| -> Result<Expr> { Ok(resolver.udf(udf_name)?.call(call_args)) };
    let millis_to_ts = |e: Expr| udf("millis_to_timestamp", vec![cast(e, DataType::Int64)]);
    let ts_to_millis = |e: Expr| udf("timestamp_to_millis", vec![e]);
    let opt_text = |i: usize| -> Result<Expr> {
        Ok(match text_arg(args, i, name)? {
            Some(s) => lit(s),
            None => lit(ScalarValue::Utf8(None)),
        })
    };
    Ok(match name {
        "if" => {
            arity(3, 3)?;
            let (c, a, b) = (t(0)?, t(1)?, t(2)?);
            let ty = unify(a.ty, b.ty);
            Typed::new(when(c.truth(), conform(a, ty)).otherwise(conform(b, ty))?, ty)
        }
        "nvl" => {
            arity(2, 2)?;
            let (a, b) = (t(0)?, t(1)?);
            let ty = unify(a.ty, b.ty);
            Typed::new(coalesce(vec![conform(a, ty), conform(b, ty)]), ty)
        }
        "isnull" | "notnull" => {
            arity(1, 1)?;
            let a = t(0)?.expr;
            Typed::new(if name == "isnull" { a.is_null() } else { a.is_not_null() }, Ty::Bool)
        }
        "cast" => {
            arity(2, 2)?;
            let a = t(0)?;
            match text_arg(args, 1, name)?.unwrap_or_default().to_ascii_uppercase().as_str() {
                "DOUBLE" | "FLOAT" => Typed::new(a.double(), Ty::Double),
                "LONG" => Typed::new(try_cast(a.number().expr, DataType::Int64), Ty::Long),
                "STRING" => Typed::new(a.text(), Ty::Text),
                other => return Err(Error::InvalidQuery(format!("cast() to {other:?}: use DOUBLE, LONG or STRING"))),
            }
        }
        "abs" | "floor" | "ceil" | "round" | "sqrt" | "exp" | "log" | "log10" | "signum" => {
            arity(1, 1)?;
            let a = t(0)?.number();
            let ty = if matches!(name, "abs" | "signum") { a.ty } else { Ty::Double };
            let x = if ty == Ty::Double { cast(a.expr, DataType::Float64) } else { a.expr };
            let expr = match name {
                "abs" => f::abs(x),
                "floor" => f::floor(x),
                "ceil" => f::ceil(x),
                "round" => f::round(vec![x]),
                "sqrt" => f::sqrt(x),
                "exp" => f::exp(x),
                "log" => f::ln(x),
                "log10" => f::log10(x),
                _ => f::signum(x),
            };
            Typed::new(expr, ty)
        }
        "pow" => {
            arity(2, 2)?;
            Typed::new(f::power(t(0)?.double(), t(1)?.double()), Ty::Double)
        }
        "div" => {
            arity(2, 2)?;
            let (a, b) = (t(0)?.number(), t(1)?.number());
            Typed::new(try_cast(a.expr, DataType::Int64) / nullif(try_cast(b.expr, DataType::Int64), lit(0i64)), Ty::Long)
        }
        "greatest" | "least" | "max" | "min" if !args.is_empty() => {
            let values = (0..args.len()).map(t).collect::<Result<Vec<_>>>()?;
            let ty = values.iter().fold(Ty::Null, |acc, v| unify(acc, v.ty));
            let exprs = values.into_iter().map(|v| conform(v, ty)).collect();
            Typed::new(if matches!(name, "greatest" | "max") { f::greatest(exprs) } else { f::least(exprs) }, ty)
        }
        "concat" => Typed::new(f::concat((0..args.len()).map(|i| Ok(t(i)?.text())).collect::<Result<Vec<_>>>()?), Ty::Text),
        "strlen" => {
            arity(1, 1)?;
            Typed::new(cast(f::character_length(t(0)?.text()), DataType::Int64), Ty::Long)
        }
        "lower" | "upper" | "trim" | "ltrim" | "rtrim" | "reverse" => {
            arity(1, 1)?;
            let a = t(0)?.text();
            Typed::new(
                match name {
                    "lower" => f::lower(a),
                    "upper" => f::upper(a),
                    "trim" => f::btrim(vec![a]),
                    "ltrim" => f::ltrim(vec![a]),
                    "rtrim" => f::rtrim(vec![a]),
                    _ => f::reverse(a),
                },
                Ty::Text,
            )
        }
        "substring" => {
            // Druid's positions count from 0.
            arity(2, 3)?;
            let s = t(0)?.text();
            let from = t(1)?.number().expr + lit(1i64);
            let expr = match args.get(2) {
                Some(_) => f::substring(s, from, t(2)?.number().expr),
                None => f::substr(s, from),
            };
            Typed::new(expr, Ty::Text)
        }
        "left" | "right" => {
            arity(2, 2)?;
            let (s, n) = (t(0)?.text(), t(1)?.number().expr);
            Typed::new(if name == "left" { f::left(s, n) } else { f::right(s, n) }, Ty::Text)
        }
        "strpos" => {
            arity(2, 3)?;
            if args.len() == 3 {
                return Err(Error::Unsupported("strpos() with a start position is not supported".into()));
            }
            Typed::new(cast(f::strpos(t(0)?.text(), t(1)?.text()), DataType::Int64) - lit(1i64), Ty::Long)
        }
        "contains_string" | "icontains_string" => {
            arity(2, 2)?;
            let (s, needle) = (t(0)?.text(), t(1)?.text());
            let (s, needle) = if name == "icontains_string" { (f::lower(s), f::lower(needle)) } else { (s, needle) };
            Typed::new(f::strpos(s, needle).gt(lit(0)), Ty::Bool)
        }
        "replace" => {
            arity(3, 3)?;
            Typed::new(resolver.udf("replace")?.call(vec![t(0)?.text(), t(1)?.text(), t(2)?.text()]), Ty::Text)
        }
        "like" => {
            arity(2, 3)?;
            let pattern = text_arg(args, 1, name)?.unwrap_or_default();
            let escape = text_arg(args, 2, name)?.and_then(|e| e.chars().next());
            Typed::new(
                Expr::Like(datafusion::logical_expr::Like::new(
                    false,
                    Box::new(t(0)?.text()),
                    Box::new(lit(pattern)),
                    escape,
                    false,
                )),
                Ty::Bool,
            )
        }
        "regexp_extract" => {
            arity(2, 3)?;
            let mut call_args = vec![t(0)?.text(), opt_text(1)?];
            if args.len() == 3 {
                call_args.push(t(2)?.number().expr);
            }
            Typed::new(udf("regexp_extract", call_args)?, Ty::Text)
        }
        "regexp_like" => {
            arity(2, 2)?;
            Typed::new(f::regexp_like(t(0)?.text(), opt_text(1)?, None), Ty::Bool)
        }
        "timestamp" | "timestamp_parse" => {
            arity(1, 3)?;
            let a = t(0)?;
            let parsed = match a.ty {
                Ty::Long | Ty::Double => return Ok(Typed::new(a.number().expr, Ty::Long)),
                _ => udf("time_parse", vec![a.text(), opt_text(1)?, opt_text(2)?])?,
            };
            Typed::new(ts_to_millis(parsed)?, Ty::Long)
        }
        "timestamp_floor" | "timestamp_ceil" => {
            arity(2, 4)?;
            let origin = match args.get(2) {
                None | Some(Ast::Null) => lit(ScalarValue::Utf8(None)),
                Some(_) => udf("time_format", vec![millis_to_ts(t(2)?.number().expr)?])?,
            };
            let function = if name == "timestamp_floor" { "time_floor" } else { "time_ceil" };
            let floored = udf(function, vec![millis_to_ts(t(0)?.number().expr)?, opt_text(1)?, origin, opt_text(3)?])?;
            Typed::new(ts_to_millis(floored)?, Ty::Long)
        }
        "timestamp_shift" => {
            arity(3, 4)?;
            let shifted =
                udf("time_shift", vec![millis_to_ts(t(0)?.number().expr)?, opt_text(1)?, t(2)?.number().expr, opt_text(3)?])?;
            Typed::new(ts_to_millis(shifted)?, Ty::Long)
        }
        "timestamp_extract" => {
            arity(2, 3)?;
            Typed::new(udf("time_extract", vec![millis_to_ts(t(0)?.number().expr)?, opt_text(1)?, opt_text(2)?])?, Ty::Long)
        }
        "timestamp_format" => {
            arity(1, 3)?;
            Typed::new(udf("time_format", vec![millis_to_ts(t(0)?.number().expr)?, opt_text(1)?, opt_text(2)?])?, Ty::Text)
        }
        "case_searched" => {
            if args.len() < 2 {
                return Err(Error::InvalidQuery("case_searched() needs a condition and a value".into()));
            }
            let pairs: Vec<(Typed, Typed)> = args
                .chunks_exact(2)
                .map(|p| Ok((translate(&p[0], resolver)?, translate(&p[1], resolver)?)))
                .collect::<Result<_>>()?;
            let otherwise = if args.len() % 2 == 1 { Some(t(args.len() - 1)?) } else { None };
            case(pairs, otherwise)?
        }
        "case_simple" => {
            if args.len() < 3 {
                return Err(Error::InvalidQuery("case_simple() needs a value, a match and a result".into()));
            }
            let subject = t(0)?;
            let rest = &args[1..];
            let pairs: Vec<(Typed, Typed)> = rest
                .chunks_exact(2)
                .map(|p| Ok((binary("==", subject.clone(), translate(&p[0], resolver)?), translate(&p[1], resolver)?)))
                .collect::<Result<_>>()?;
            let otherwise = if rest.len() % 2 == 1 { Some(translate(&rest[rest.len() - 1], resolver)?) } else { None };
            case(pairs, otherwise)?
        }
        "lookup" => return Err(Error::InvalidQuery("lookup(): Oriel has no registered lookups".into())),
        "array_contains" | "array_overlap" | "array" | "array_length" | "mv_contains" | "mv_overlap" => {
            return Err(Error::Unsupported(format!("{name}(): Oriel's columns hold one value each; arrays are not supported")));
        }
        other => return Err(Error::Unsupported(format!("the expression function {other}() is not supported"))),
    })
}

fn case(pairs: Vec<(Typed, Typed)>, otherwise: Option<Typed>) -> Result<Typed> {
    let ty = pairs.iter().map(|(_, v)| v.ty).chain(otherwise.iter().map(|o| o.ty)).fold(Ty::Null, unify);
    let mut iter = pairs.into_iter();
    let Some((c, v)) = iter.next() else { return Err(Error::InvalidQuery("a case needs a branch".into())) };
    let mut builder = when(c.truth(), conform(v, ty));
    for (c, v) in iter {
        builder = builder.when(c.truth(), conform(v, ty));
    }
    let expr = match otherwise {
        Some(o) => builder.otherwise(conform(o, ty))?,
        None => builder.end()?,
    };
    Ok(Typed::new(expr, ty))
}

/// The type two branches share.
fn unify(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (Ty::Null, x) | (x, Ty::Null) => x,
        (x, y) if x == y => x,
        (Ty::Text, _) | (_, Ty::Text) => Ty::Text,
        (Ty::Double, _) | (_, Ty::Double) => Ty::Double,
        _ => Ty::Long,
    }
}

/// `value` as type `ty`.
fn conform(value: Typed, ty: Ty) -> Expr {
    match ty {
        Ty::Text => value.text(),
        Ty::Double => value.double(),
        Ty::Long => match value.ty {
            Ty::Long => value.expr,
            _ => try_cast(value.number().expr, DataType::Int64),
        },
        Ty::Bool => value.truth(),
        Ty::Null => value.expr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_plywood_writes() {
        let ast = parse(r#"if("visitors"!=0,(cast("count",'DOUBLE')/"visitors"),null)"#).unwrap();
        let Ast::Call(name, args) = ast else { panic!() };
        assert_eq!(name, "if");
        assert_eq!(args[2], Ast::Null);
        assert_eq!(
            parse(r#"("a"+"b")*2"#).unwrap(),
            Ast::Binary(
                "*",
                Box::new(Ast::Binary("+", Box::new(Ast::Column("a".into())), Box::new(Ast::Column("b".into())))),
                Box::new(Ast::Long(2))
            )
        );
        assert_eq!(parse(r#""\u0021T_0""#).unwrap(), Ast::Column("!T_0".into()));
        assert_eq!(
            parse("-2 ^ 3 ^ 2").unwrap(),
            Ast::Binary("^", Box::new(Ast::Long(-2)), Box::new(Ast::Binary("^", Box::new(Ast::Long(3)), Box::new(Ast::Long(2)))))
        );
        assert_eq!(parse("a && !b || c").unwrap().clone(), parse("(a && (!b)) || c").unwrap());
        assert_eq!(parse("1.5e3").unwrap(), Ast::Double(1500.0));
        assert_eq!(parse("'it\\'s'").unwrap(), Ast::Text("it's".into()));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in ["", "(", "1 +", "f(1,", "'open", "a b", "1 = 2", "\"x", "#"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).unwrap_err().to_string().contains("nested deeper"));
        let long = vec!["1"; 1000].join("+");
        assert!(parse(&long).unwrap_err().to_string().contains("deeper than"));
        assert!(parse(&vec!["1"; 100].join("+")).is_ok());
    }
}
