//! CloudFront's documents as one ordered tree ([`Node`]) that writes both forms the API knows: the
//! JSON the AWS CLI takes (`--distribution-config file://…`, members in the model's order) and the
//! REST-XML the API itself takes (lists as `<Quantity>` and `<Items>` of named members, in the
//! model's sequence order, which CloudFront validates). [`from_xml`] reads an answer back into JSON
//! with every leaf as text, the form [`Node::plain`] gives ours for comparison.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A CloudFront document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Members in the model's order.
    Obj(Vec<(&'static str, Node)>),
    /// A list's items, with the XML name of each member (`Method`, `CacheBehavior`, `Name`).
    List(&'static str, Vec<Node>),
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Node {
    pub fn str(s: impl Into<String>) -> Node {
        Node::Str(s.into())
    }

    /// `{"Quantity": n, "Items": [...]}`, without `Items` when empty (as the API writes it).
    pub fn items(member: &'static str, items: Vec<Node>) -> Node {
        let mut m = vec![("Quantity", Node::Int(items.len() as i64))];
        if !items.is_empty() {
            m.push(("Items", Node::List(member, items)));
        }
        Node::Obj(m)
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Obj(m) => m.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A member of an object, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Obj(m) => m.iter_mut().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a leaf.
    pub fn text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Int(i) => Some(i.to_string()),
            Node::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// JSON with every leaf as text, as [`from_xml`] reads the API's answers.
    pub fn plain(&self) -> Value {
        match self {
            Node::Obj(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.to_string(), v.plain())).collect())
            }
            Node::List(_, items) => Value::Array(items.iter().map(Node::plain).collect()),
            leaf => Value::String(leaf.text().unwrap_or_default()),
        }
    }

    /// The document as REST-XML: `<{root} xmlns="…">…</{root}>`.
    pub fn to_xml(&self, root: &str) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">"
        );
        self.write_xml_inner(&mut out);
        out.push_str(&format!("</{root}>"));
        out
    }

    fn write_xml_inner(&self, out: &mut String) {
        match self {
            Node::Obj(m) => {
                for (k, v) in m {
                    element(out, k, v);
                }
            }
            Node::List(member, items) => {
                for v in items {
                    element(out, member, v);
                }
            }
            leaf => out.push_str(&staleguard_core::text::xml_escape(
                &leaf.text().unwrap_or_default(),
            )),
        }
    }
}

fn element(out: &mut String, name: &str, v: &Node) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    v.write_xml_inner(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Obj(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Node::List(_, items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Node::Str(v) => s.serialize_str(v),
            Node::Int(v) => s.serialize_i64(*v),
            Node::Bool(v) => s.serialize_bool(*v),
        }
    }
}

/// An API answer (or any CloudFront XML) as JSON: elements with children are objects, `Items` is an
/// array of its children, leaves are text (an empty element is `""`). The root element itself is
/// the returned object.
pub fn from_xml(xml: &str) -> Result<Value, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    // The open elements: name, children so far, text so far.
    type Open = (String, Vec<(String, Value)>, String);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("unreadable XML: {e}"))?
        {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push((name, Vec::new(), String::new()));
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some(parent) => parent.1.push((name, Value::String(String::new()))),
                    None => root = Some(Value::Object(Default::default())),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let text = t
                        .decode()
                        .map_err(|e| format!("unreadable XML text: {e}"))?;
                    top.2.push_str(
                        &quick_xml::escape::unescape(&text)
                            .map_err(|e| format!("unreadable XML text: {e}"))?,
                    );
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.decode().map_err(|e| format!("unreadable XML: {e}"))?;
                    let entity = format!("&{name};");
                    top.2.push_str(
                        &quick_xml::escape::unescape(&entity)
                            .map_err(|e| format!("unreadable XML entity `{entity}`: {e}"))?,
                    );
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().ok_or("unbalanced XML")?;
                let value = if children.is_empty() {
                    Value::String(text.trim().to_string())
                } else if name == "Items" {
                    Value::Array(children.into_iter().map(|(_, v)| v).collect())
                } else {
                    Value::Object(children.into_iter().collect())
                };
                match stack.last_mut() {
                    Some(parent) => parent.1.push((name, value)),
                    None => root = Some(value),
                }
            }
            Event::Eof => {
                if let Some((name, _, _)) = stack.last() {
                    return Err(format!("unreadable XML: `<{name}>` is never closed"));
                }
                break;
            }
            _ => {}
        }
    }
    match root.ok_or("an empty XML document")? {
        // A root without children (`<X/>`, `<X></X>`) is an empty document.
        Value::String(_) => Ok(Value::Object(Default::default())),
        v => Ok(v),
    }
}

/// Whether every member of `expected` is in `live` with the same value (lists item by item, in
/// order): the API adds defaults for members a document leaves out, so "equal" means ours are all
/// there unchanged. Returns the first path that differs.
pub fn contained(expected: &Value, live: &Value, path: &str) -> Result<(), String> {
    match (expected, live) {
        (Value::Object(e), Value::Object(l)) => {
            for (k, v) in e {
                let p = format!("{path}.{k}");
                match l.get(k) {
                    Some(lv) => contained(v, lv, &p)?,
                    None => return Err(format!("{p}: missing")),
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(l)) => {
            if e.len() != l.len() {
                return Err(format!("{path}: {} items, found {}", e.len(), l.len()));
            }
            for (i, (a, b)) in e.iter().zip(l).enumerate() {
                contained(a, b, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        // `true` and `True`, `0` and `0.0` are the same value to the API.
        (Value::String(a), Value::String(b)) if a.eq_ignore_ascii_case(b) => Ok(()),
        (a, b) => Err(format!("{path}: expected {a}, found {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Node {
        Node::Obj(vec![
            ("Name", Node::str("a&b")),
            (
                "AllowedMethods",
                Node::items("Method", vec![Node::str("GET"), Node::str("HEAD")]),
            ),
            ("Empty", Node::items("Name", vec![])),
            ("Enabled", Node::Bool(true)),
            ("MinTTL", Node::Int(0)),
        ])
    }

    #[test]
    fn json_keeps_the_model_order_and_xml_names_list_members() {
        let json = serde_json::to_string(&doc()).unwrap();
        assert_eq!(
            json,
            r#"{"Name":"a&b","AllowedMethods":{"Quantity":2,"Items":["GET","HEAD"]},"Empty":{"Quantity":0},"Enabled":true,"MinTTL":0}"#
        );
        let xml = doc().to_xml("CachePolicyConfig");
        assert!(
            xml.ends_with("<CachePolicyConfig xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Name>a&amp;b</Name><AllowedMethods><Quantity>2</Quantity><Items><Method>GET</Method><Method>HEAD</Method></Items></AllowedMethods><Empty><Quantity>0</Quantity></Empty><Enabled>true</Enabled><MinTTL>0</MinTTL></CachePolicyConfig>"),
            "{xml}"
        );
    }

    #[test]
    fn xml_reads_back_to_the_plain_form() {
        let back = from_xml(&doc().to_xml("X")).unwrap();
        assert_eq!(back, doc().plain());
        contained(&doc().plain(), &back, "").unwrap();
        // Extra members in the answer are fine; a changed value is not.
        let mut more = back.clone();
        more["Extra"] = Value::String("1".into());
        contained(&doc().plain(), &more, "").unwrap();
        more["MinTTL"] = Value::String("86400".into());
        let err = contained(&doc().plain(), &more, "").unwrap_err();
        assert!(err.contains(".MinTTL"), "{err}");
        assert!(from_xml("<a><b>x</b>").is_err(), "an unclosed element");
        assert!(from_xml("").is_err());
    }
}
