//! Flat `<xml>…</xml>` documents as Pay v2 uses them. Hostile input is refused: DOCTYPE,
//! entity declarations, unknown entities, nesting and oversized bodies.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Why a v2 XML body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum XmlError {
    #[error("body too large ({0} bytes)")]
    TooLarge(usize),
    #[error("DOCTYPE / ENTITY declarations are refused")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// Parses `<xml><k>v</k>…</xml>` into a map (text and CDATA values; last duplicate wins).
pub(crate) fn parse_flat(body: &[u8], max: usize) -> Result<BTreeMap<String, String>, XmlError> {
    if body.len() > max {
        return Err(XmlError::TooLarge(body.len()));
    }
    let lower = body.to_ascii_lowercase();
    if contains(&lower, b"<!doctype") || contains(&lower, b"<!entity") {
        return Err(XmlError::Doctype);
    }
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut out = BTreeMap::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut key: Option<String> = None;
    let mut value = String::new();
    let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    loop {
        match reader.read_event_into(&mut buf) {
            Err(e) => return Err(malformed(&e)),
            Ok(Event::Eof) => break,
            Ok(Event::DocType(_)) => return Err(XmlError::Doctype),
            Ok(Event::Decl(_)) | Ok(Event::Comment(_)) | Ok(Event::PI(_)) => {}
            Ok(Event::Start(e)) => {
                let name =
                    String::from_utf8(e.name().as_ref().to_vec()).map_err(|e| malformed(&e))?;
                depth += 1;
                match depth {
                    1 => {
                        if seen_root || name != "xml" {
                            return Err(XmlError::Malformed(format!("unexpected root <{name}>")));
                        }
                        seen_root = true;
                    }
                    2 => {
                        key = Some(name);
                        value.clear();
                    }
                    _ => {
                        return Err(XmlError::Malformed(format!(
                            "nested element <{name}> is not allowed"
                        )))
                    }
                }
            }
            Ok(Event::Empty(e)) => {
                let name =
                    String::from_utf8(e.name().as_ref().to_vec()).map_err(|e| malformed(&e))?;
                match depth {
                    1 => {
                        out.insert(name, String::new());
                    }
                    0 if !seen_root && name == "xml" => seen_root = true,
                    _ => return Err(XmlError::Malformed(format!("unexpected <{name}/>"))),
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|e| malformed(&e))?;
                if depth == 2 {
                    value.push_str(&text);
                } else if !text.trim().is_empty() {
                    return Err(XmlError::Malformed("text outside of a field".into()));
                }
            }
            Ok(Event::CData(c)) => {
                if depth != 2 {
                    return Err(XmlError::Malformed("CDATA outside of a field".into()));
                }
                value.push_str(std::str::from_utf8(&c).map_err(|e| malformed(&e))?);
            }
            Ok(Event::End(_)) => {
                if depth == 2 {
                    if let Some(k) = key.take() {
                        out.insert(k, std::mem::take(&mut value));
                    }
                }
                depth = depth.saturating_sub(1);
            }
        }
        buf.clear();
    }
    if !seen_root || depth != 0 {
        return Err(XmlError::Malformed("missing or unclosed <xml> root".into()));
    }
    Ok(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Builds `<xml>` with CDATA values (plain digits unwrapped, as WeChat writes amounts).
pub(crate) fn build<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    build_root("xml", fields)
}

/// [`build`] under another root element (`<root>`: a v2 refund notification's `req_info`).
pub(crate) fn build_root<'a>(
    root: &str,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut s = format!("<{root}>");
    for (k, v) in fields {
        s.push('<');
        s.push_str(k);
        s.push('>');
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            s.push_str(v);
        } else {
            s.push_str("<![CDATA[");
            s.push_str(&v.replace("]]>", "]]]]><![CDATA[>"));
            s.push_str("]]>");
        }
        s.push_str("</");
        s.push_str(k);
        s.push('>');
    }
    s.push_str(&format!("</{root}>"));
    s
}

/// Same as [`build`] from a map.
pub(crate) fn build_map(fields: &BTreeMap<String, String>) -> String {
    build(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cdata_text_and_escapes() {
        let m = parse_flat(
            b"<?xml version=\"1.0\"?><xml><a><![CDATA[x<y]]></a><b>1&amp;2</b><c/></xml>",
            1000,
        )
        .unwrap();
        assert_eq!(m["a"], "x<y");
        assert_eq!(m["b"], "1&2");
        assert_eq!(m["c"], "");
    }

    #[test]
    fn refuses_hostile_xml() {
        let xxe = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><a>&e;</a></xml>";
        assert_eq!(parse_flat(xxe, 10_000), Err(XmlError::Doctype));
        assert!(parse_flat(b"<xml><a>&e;</a></xml>", 1000).is_err());
        assert!(parse_flat(b"<xml><a><b>1</b></a></xml>", 1000).is_err());
        assert!(parse_flat(b"<root><a>1</a></root>", 1000).is_err());
        assert!(parse_flat(b"<xml><a>1</a>", 1000).is_err());
        assert_eq!(parse_flat(&[b' '; 20], 10), Err(XmlError::TooLarge(20)));
    }

    #[test]
    fn builds_round_trip() {
        let x = build([("a", "1"), ("b", "x]]>y"), ("c", "中文")]);
        let m = parse_flat(x.as_bytes(), 1000).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x]]>y");
        assert_eq!(m["c"], "中文");
    }
}
