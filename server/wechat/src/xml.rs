//! WeChat Pay v2 XML: flat `<xml><key>value</key>…</xml>` documents, read defensively.
//!
//! Input from the network is hostile (XXE, billion laughs). The reader:
//! 1. refuses bodies larger than the cap **before** parsing;
//! 2. refuses any `<!DOCTYPE …>` (so no entity can ever be declared) and any entity reference other
//!    than the five predefined ones and character references;
//! 3. accepts only the flat shape WeChat uses — root `<xml>`, leaf children, text or CDATA — and
//!    refuses nesting, duplicate fields, processing instructions and trailing content.
//!
//! Writing uses `quick-xml`'s serde serializer (proper escaping).
use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Default cap for a v2 body (answers and notifications are ~1–3 KiB).
pub const MAX_XML_BYTES: usize = 64 * 1024;
/// Most fields accepted in one document.
pub const MAX_FIELDS: usize = 256;

/// Why an XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Larger than the cap (checked before parsing).
    #[error("XML body of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Body size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// A `<!DOCTYPE>` declaration (XXE / entity expansion attempt).
    #[error("XML DOCTYPE refused")]
    DoctypeRefused,
    /// An entity reference that is not predefined (`&xxe;`).
    #[error("XML entity reference refused")]
    EntityRefused,
    /// Not UTF-8.
    #[error("XML is not UTF-8")]
    NotUtf8,
    /// A field appears twice (ambiguous: which one was signed?).
    #[error("duplicate XML field <{0}>")]
    DuplicateField(String),
    /// Anything else that is not WeChat's flat shape, or not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(String),
}

fn malformed(s: impl Into<String>) -> XmlError {
    XmlError::Malformed(s.into())
}

fn map_qx(e: quick_xml::Error) -> XmlError {
    match e {
        quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(..)) => {
            XmlError::EntityRefused
        }
        quick_xml::Error::Encoding(_) => XmlError::NotUtf8,
        other => malformed(other.to_string().chars().take(120).collect::<String>()),
    }
}

/// Parses a flat WeChat XML document into its fields (see the [module docs](self)).
pub fn parse_flat(body: &[u8], limit: usize) -> Result<BTreeMap<String, String>, XmlError> {
    parse_flat_root(body, limit, "xml")
}

/// [`parse_flat`] for a document whose root element is `root` (the decrypted `req_info` of a v2
/// refund notification is `<root>…</root>`), with the same refusals.
pub(crate) fn parse_flat_root(
    body: &[u8],
    limit: usize,
    root: &str,
) -> Result<BTreeMap<String, String>, XmlError> {
    if body.len() > limit {
        return Err(XmlError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;

    let mut fields = BTreeMap::new();
    // 0 = before root, 1 = inside <xml>, 2 = inside a field, 3 = after root.
    let mut depth = 0u8;
    let mut current: Option<(String, String)> = None;
    loop {
        let ev = reader.read_event().map_err(map_qx)?;
        match ev {
            Event::DocType(_) => return Err(XmlError::DoctypeRefused),
            Event::PI(_) => return Err(malformed("processing instruction")),
            Event::Decl(_) => {
                if depth != 0 {
                    return Err(malformed("misplaced XML declaration"));
                }
            }
            Event::Comment(_) => {}
            Event::Start(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| XmlError::NotUtf8)?
                    .to_owned();
                match depth {
                    0 => {
                        if name != root {
                            return Err(malformed(format!("root element must be <{root}>")));
                        }
                        depth = 1;
                    }
                    1 => {
                        if fields.contains_key(&name) {
                            return Err(XmlError::DuplicateField(name));
                        }
                        current = Some((name, String::new()));
                        depth = 2;
                    }
                    2 => return Err(malformed("nested element")),
                    _ => return Err(malformed("content after the root element")),
                }
            }
            Event::Empty(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| XmlError::NotUtf8)?
                    .to_owned();
                match depth {
                    0 if name == root => depth = 3,
                    0 => return Err(malformed(format!("root element must be <{root}>"))),
                    1 => {
                        if fields.contains_key(&name) {
                            return Err(XmlError::DuplicateField(name));
                        }
                        fields.insert(name, String::new());
                        if fields.len() > MAX_FIELDS {
                            return Err(malformed("too many fields"));
                        }
                    }
                    2 => return Err(malformed("nested element")),
                    _ => return Err(malformed("content after the root element")),
                }
            }
            Event::Text(t) => {
                let value = t.unescape().map_err(map_qx)?;
                if depth == 2 {
                    if let Some((_, v)) = current.as_mut() {
                        v.push_str(&value);
                    }
                } else if !value.trim().is_empty() {
                    return Err(malformed("text outside a field"));
                }
            }
            Event::CData(c) => {
                if depth != 2 {
                    return Err(malformed("CDATA outside a field"));
                }
                let raw = std::str::from_utf8(c.as_ref()).map_err(|_| XmlError::NotUtf8)?;
                if let Some((_, v)) = current.as_mut() {
                    v.push_str(raw);
                }
            }
            Event::End(_) => match depth {
                2 => {
                    if let Some((k, v)) = current.take() {
                        fields.insert(k, v);
                        if fields.len() > MAX_FIELDS {
                            return Err(malformed("too many fields"));
                        }
                    }
                    depth = 1;
                }
                1 => depth = 3,
                _ => return Err(malformed("unbalanced end tag")),
            },
            Event::Eof => {
                if depth != 3 {
                    return Err(malformed("truncated document"));
                }
                return Ok(fields);
            }
        }
    }
}

/// Serializes fields as `<xml><k>v</k>…</xml>` (text escaped).
pub fn to_xml(fields: &BTreeMap<String, String>) -> Result<String, XmlError> {
    quick_xml::se::to_string_with_root("xml", fields).map_err(|e| malformed(e.to_string()))
}

/// Wraps a value in CDATA, splitting any `]]>` so the section cannot be closed early.
pub(crate) fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BTreeMap<String, String>, XmlError> {
        parse_flat(s.as_bytes(), MAX_XML_BYTES)
    }

    #[test]
    fn parses_wechat_answer() {
        let m = parse(
            "<?xml version=\"1.0\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>1</total_fee><attach><![CDATA[a]]]]><![CDATA[>b]]></attach><body>x &amp; y &#x4E2D;</body><empty/><e2></e2>\n</xml>\n",
        )
        .expect("parse");
        assert_eq!(m["return_code"], "SUCCESS");
        assert_eq!(m["total_fee"], "1");
        assert_eq!(m["attach"], "a]]>b");
        assert_eq!(m["body"], "x & y 中");
        assert_eq!(m["empty"], "");
        assert_eq!(m["e2"], "");
    }

    #[test]
    fn refuses_xxe_and_friends() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><a>&xxe;</a></xml>";
        assert_eq!(parse(xxe), Err(XmlError::DoctypeRefused));
        let lol = "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><xml><a>&lol2;</a></xml>";
        assert_eq!(parse(lol), Err(XmlError::DoctypeRefused));
        assert_eq!(
            parse("<xml><a>&xxe;</a></xml>"),
            Err(XmlError::EntityRefused)
        );
        assert_eq!(
            parse("<xml><!DOCTYPE x><a>1</a></xml>"),
            Err(XmlError::DoctypeRefused)
        );
        assert!(matches!(
            parse("<xml><a><b>1</b></a></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<xml><a>1</a><a>2</a></xml>"),
            Err(XmlError::DuplicateField(_))
        ));
        assert!(matches!(
            parse("<xml><a>1</a></xml><xml/>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<xml><a>1</a>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<root><a>1</a></root>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<?php x?><xml/>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<xml>text<a>1</a></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(parse(""), Err(XmlError::Malformed(_))));
        assert_eq!(parse_flat(&[0xff, 0xfe], 10), Err(XmlError::NotUtf8));
    }

    #[test]
    fn size_cap_checked_first() {
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(100));
        assert!(matches!(
            parse_flat(big.as_bytes(), 50),
            Err(XmlError::TooLarge { limit: 50, .. })
        ));
        // Even a DOCTYPE body is refused for size first: no parsing happens.
        let big_xxe = format!("<!DOCTYPE a [{}]><xml/>", "x".repeat(100));
        assert!(matches!(
            parse_flat(big_xxe.as_bytes(), 50),
            Err(XmlError::TooLarge { .. })
        ));
    }

    #[test]
    fn other_root() {
        let m = parse_flat_root(b"<root><a>1</a></root>", 100, "root").expect("parse");
        assert_eq!(m["a"], "1");
        assert!(parse_flat_root(b"<xml><a>1</a></xml>", 100, "root").is_err());
        assert_eq!(
            parse_flat_root(b"<!DOCTYPE r><root/>", 100, "root"),
            Err(XmlError::DoctypeRefused)
        );
    }

    #[test]
    fn round_trips() {
        let mut m = BTreeMap::new();
        m.insert("body".to_owned(), "a<b>&\"c\" 中文".to_owned());
        m.insert("total_fee".to_owned(), "1990".to_owned());
        let x = to_xml(&m).expect("xml");
        assert!(x.starts_with("<xml>") && x.ends_with("</xml>"), "{x}");
        assert_eq!(parse(&x).expect("parse"), m);
    }

    #[test]
    fn cdata_cannot_be_broken_out_of() {
        let x = format!("<xml><m>{}</m></xml>", cdata("a]]><b>x</b>"));
        assert_eq!(parse(&x).expect("parse")["m"], "a]]><b>x</b>");
    }
}
