//! Writing corosync.conf text: a tree of blocks rendered with four-space indentation.

use std::fmt::Write;

/// A section to write: `name { items }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Block {
    /// The section name (`totem`, `node`).
    pub name: String,
    /// Its content, in order.
    pub items: Vec<Item>,
}

/// One line (or nested section) of a [`Block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `key: value`.
    Key(String, String),
    /// A nested section.
    Block(Block),
    /// `# text`.
    Comment(String),
    /// An empty line.
    Blank,
}

/// Why a value cannot be written to corosync.conf, which has no quoting or escapes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A line break would end the value early.
    #[error("contains a line break")]
    LineBreak,
    /// corosync reads any line holding `{` as a section start.
    #[error("contains '{{', which corosync.conf reads as a section start")]
    Brace,
    /// Blanks at either end are dropped when the file is read.
    #[error("starts or ends with a blank, which corosync.conf drops")]
    Blank,
}

/// Checks that `value` reads back unchanged after `key: value`.
pub fn check_value(value: &str) -> Result<(), ValueError> {
    if value.contains(['\n', '\r']) {
        Err(ValueError::LineBreak)
    } else if value.contains('{') {
        Err(ValueError::Brace)
    } else if value.trim_matches(char::is_whitespace) != value {
        Err(ValueError::Blank)
    } else {
        Ok(())
    }
}

impl Block {
    /// An empty section.
    pub fn new(name: impl Into<String>) -> Self {
        Block { name: name.into(), items: Vec::new() }
    }

    /// Adds `key: value`.
    pub fn key(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.items.push(Item::Key(key.into(), value.into()));
        self
    }

    /// Adds a nested section.
    pub fn block(&mut self, block: Block) -> &mut Self {
        self.items.push(Item::Block(block));
        self
    }

    /// Adds a `# comment` line.
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.items.push(Item::Comment(text.into()));
        self
    }

    /// Appends this section as corosync.conf text at `depth` levels of indentation.
    /// Values are written as given: check them first with [`check_value`].
    pub fn render(&self, depth: usize, out: &mut String) {
        let pad = "    ".repeat(depth);
        let _ = writeln!(out, "{pad}{} {{", self.name);
        for item in &self.items {
            match item {
                Item::Key(k, v) if v.is_empty() => {
                    let _ = writeln!(out, "{pad}    {k}:");
                }
                Item::Key(k, v) => {
                    let _ = writeln!(out, "{pad}    {k}: {v}");
                }
                Item::Block(b) => b.render(depth + 1, out),
                Item::Comment(c) => {
                    let _ = writeln!(out, "{pad}    # {c}");
                }
                Item::Blank => out.push('\n'),
            }
        }
        let _ = writeln!(out, "{pad}}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_blocks_that_parse_back() {
        let mut node = Block::new("node");
        node.key("ring0_addr", "10.0.0.1").key("nodeid", "1");
        let mut nodelist = Block::new("nodelist");
        nodelist.comment("one node").block(node);
        let mut text = String::new();
        nodelist.render(0, &mut text);
        assert_eq!(
            text,
            "nodelist {\n    # one node\n    node {\n        ring0_addr: 10.0.0.1\n        nodeid: 1\n    }\n}\n"
        );
        let parsed = crate::conf::parse(&text, "t").unwrap();
        assert_eq!(parsed.value("nodelist.node.0.nodeid"), Some("1"));
    }

    #[test]
    fn values_that_do_not_read_back_are_refused() {
        assert_eq!(check_value("secret"), Ok(()));
        assert_eq!(check_value("a b:c#d}"), Ok(()));
        assert_eq!(check_value(""), Ok(()));
        assert_eq!(check_value("a{b"), Err(ValueError::Brace));
        assert_eq!(check_value("a\nb"), Err(ValueError::LineBreak));
        assert_eq!(check_value(" a"), Err(ValueError::Blank));
    }
}
