//! A small element tree read with quick-xml: names, attributes in order, children, and the
//! line each element starts on. Text, comments and processing instructions are dropped:
//! cluster.conf keeps everything in attributes.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::Error;

/// One XML element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    /// Attributes in document order, unescaped.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The line of its `<`, from 1.
    pub line: u32,
}

impl Element {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Children named `name`, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Turns byte offsets into line numbers; offsets must not decrease between calls.
struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    line: u32,
}

impl Lines<'_> {
    fn at(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.text.len());
        if offset > self.pos {
            let newlines = self.text[self.pos..offset].iter().filter(|&&b| b == b'\n').count();
            self.line = self.line.saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
            self.pos = offset;
        }
        self.line
    }
}

/// Reads the document's single top element.
pub(crate) fn read(xml: &str) -> Result<Element, Error> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut lines = Lines { text: xml.as_bytes(), pos: 0, line: 1 };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        // The event may start after blanks that trimming skipped: its line is its '<'.
        let start = xml.as_bytes().get(before..).and_then(|rest| rest.iter().position(|&b| b == b'<'));
        let start_line = lines.at(before.saturating_add(start.unwrap_or(0)));
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            Error::Xml { line: lines.at(at), message: e.to_string() }
        })?;
        let finished = match event {
            Event::Start(e) => {
                stack.push(element(&reader, &e, start_line)?);
                None
            }
            Event::Empty(e) => Some(element(&reader, &e, start_line)?),
            // quick-xml has checked that the end tag matches the open element.
            Event::End(_) => stack.pop(),
            Event::Eof => break,
            _ => None,
        };
        if let Some(done) = finished {
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None if root.is_none() => root = Some(done),
                None => {
                    let message = format!("a second top element <{}>: a document has one", done.name);
                    return Err(Error::Xml { line: done.line, message });
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        let message = format!("<{}> is not closed", open.name);
        return Err(Error::Xml { line: open.line, message });
    }
    root.ok_or_else(|| Error::Xml { line: 1, message: "no element: the document is empty".to_string() })
}

fn element(reader: &Reader<&[u8]>, e: &BytesStart<'_>, line: u32) -> Result<Element, Error> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| Error::Xml { line, message: format!("<{name}>: {err}") })?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|err| Error::Xml { line, message: format!("<{name} {key}=...>: {err}") })?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element { name, attrs, children: Vec::new(), line })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_attributes_and_lines() {
        let xml =
            "<?xml version=\"1.0\"?>\n<!-- c -->\n<a x=\"1 &amp; 2\">\n  <b\n    y='z'/>\n  <c></c>\n</a>\n";
        let a = read(xml).unwrap();
        assert_eq!((a.name.as_str(), a.line, a.attr("x")), ("a", 3, Some("1 & 2")));
        let names: Vec<(&str, u32)> = a.children.iter().map(|c| (c.name.as_str(), c.line)).collect();
        assert_eq!(names, vec![("b", 4), ("c", 6)]);
        assert_eq!(a.child("b").and_then(|b| b.attr("y")), Some("z"));
    }

    #[test]
    fn malformed_documents_are_errors_with_a_line() {
        for (xml, line) in
            [("<a>\n<b>\n</a>", 3), ("<a>\n<b/>\n", 1), ("", 1), ("<a/><b/>", 1), ("<a x=1/>", 1)]
        {
            match read(xml) {
                Err(Error::Xml { line: l, .. }) => assert_eq!(l, line, "{xml:?}"),
                other => panic!("{xml:?}: {other:?}"),
            }
        }
    }
}
