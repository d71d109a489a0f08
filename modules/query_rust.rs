// A WAGI handler in Rust (std only): parses the query string and answers a small HTML page
// listing its parameters, built with format! and String. Build: see modules/build.sh.
use std::env;
use std::fmt::Write;

/// Decodes `%XX` escapes and `+` (a space) in a query string part.
fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn main() {
    let query = env::var("QUERY_STRING").unwrap_or_default();
    let mut rows = String::new();
    let mut count = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        count += 1;
        let _ = write!(rows, "<tr><td>{}</td><td>{}</td></tr>", escape(&decode(name)), escape(&decode(value)));
    }
    let path = env::var("PATH_INFO").unwrap_or_default();
    let body = format!(
        "<!doctype html><title>query</title><h1>{} parameters for {}</h1><table>{}</table>\n",
        count,
        escape(&path),
        rows
    );
    print!("Content-Type: text/html; charset=utf-8\nContent-Length: {}\n\n{}", body.len(), body);
}
