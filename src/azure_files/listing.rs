//! The XML of List Directories and Files, read event by event: only the fields a sync needs
//! are kept (names, sizes, times, the next marker), and nothing is built for the rest of each
//! entry (ids, the other timestamps, attributes, permission keys). A page names thousands of
//! entries and a walk reads one page per folder, so this reader is on the walk's hot path.

use quick_xml::events::Event;

#[derive(Debug, Default)]
pub struct EnumerationResults {
    pub entries: Entries,
    pub next_marker: Option<String>,
}

#[derive(Debug, Default)]
pub struct Entries {
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub enum Item {
    File(Node),
    Directory(Node),
}

#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub properties: Properties,
}

#[derive(Debug, Default)]
pub struct Properties {
    pub content_length: Option<u64>,
    pub last_write_time: Option<String>,
    pub last_modified: Option<String>,
}

/// Where the reader stands: the elements it keeps, and `Other` for everything it skips.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    Root,
    Entries,
    NextMarker,
    File,
    Directory,
    Name,
    Properties,
    ContentLength,
    LastWriteTime,
    LastModified,
    Other,
}

impl At {
    /// The element `name` opened inside `self`.
    fn child(self, name: &[u8]) -> At {
        match (self, name) {
            (At::Root, b"Entries") => At::Entries,
            (At::Root, b"NextMarker") => At::NextMarker,
            (At::Entries, b"File") => At::File,
            (At::Entries, b"Directory") => At::Directory,
            (At::File | At::Directory, b"Name") => At::Name,
            (At::File | At::Directory, b"Properties") => At::Properties,
            (At::Properties, b"Content-Length") => At::ContentLength,
            (At::Properties, b"LastWriteTime") => At::LastWriteTime,
            (At::Properties, b"Last-Modified") => At::LastModified,
            _ => At::Other,
        }
    }

    /// Whether this element's text is kept.
    fn has_text(self) -> bool {
        matches!(self, At::NextMarker | At::Name | At::ContentLength | At::LastWriteTime | At::LastModified)
    }
}

pub fn parse(xml: &str) -> Result<EnumerationResults, String> {
    let bad = |why: String| format!("cannot parse the listing: {why}");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = EnumerationResults::default();
    let mut stack: Vec<At> = Vec::with_capacity(8);
    let mut node = Node::default();
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| bad(format!("{e} at byte {}", reader.error_position())))?;
        let (open, close) = match &event {
            Event::Start(e) => (Some(e.name()), false),
            Event::Empty(e) => (Some(e.name()), true),
            Event::End(_) => (None, true),
            Event::Text(t) if stack.last().is_some_and(|a| a.has_text()) => {
                text.push_str(&t.decode().map_err(|e| bad(e.to_string()))?);
                continue;
            }
            Event::CData(t) if stack.last().is_some_and(|a| a.has_text()) => {
                text.push_str(&t.decode().map_err(|e| bad(e.to_string()))?);
                continue;
            }
            Event::GeneralRef(r) if stack.last().is_some_and(|a| a.has_text()) => {
                let name = r.decode().map_err(|e| bad(e.to_string()))?;
                match r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
                    Some(c) => text.push(c),
                    None => match quick_xml::escape::resolve_xml_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => return Err(bad(format!("unknown entity &{name};"))),
                    },
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if let Some(name) = open {
            let at = match stack.last() {
                Some(parent) => parent.child(name.as_ref()),
                None if seen_root => return Err(bad("a second root element".into())),
                None if name.as_ref() == b"EnumerationResults" => At::Root,
                None => {
                    return Err(bad(format!("the root is <{}>", String::from_utf8_lossy(name.as_ref()))));
                }
            };
            seen_root = true;
            if matches!(at, At::File | At::Directory) {
                node = Node::default();
            }
            text.clear();
            stack.push(at);
        }
        if close {
            let at = stack.pop().ok_or_else(|| bad("an end tag without its start".into()))?;
            match at {
                At::NextMarker => out.next_marker = Some(std::mem::take(&mut text)),
                At::Name => node.name = std::mem::take(&mut text),
                At::ContentLength => {
                    let n = text.trim().parse().map_err(|_| bad(format!("Content-Length {text:?}")))?;
                    node.properties.content_length = Some(n);
                }
                At::LastWriteTime => node.properties.last_write_time = Some(std::mem::take(&mut text)),
                At::LastModified => node.properties.last_modified = Some(std::mem::take(&mut text)),
                At::File => out.entries.items.push(Item::File(std::mem::take(&mut node))),
                At::Directory => out.entries.items.push(Item::Directory(std::mem::take(&mut node))),
                _ => {}
            }
        }
    }
    if !seen_root {
        return Err(bad("no <EnumerationResults>".into()));
    }
    if !stack.is_empty() {
        return Err(bad("the document ends inside an element".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_documented_shape() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://a.file.core.windows.net/" ShareName="s" DirectoryPath="d">
  <Marker>m</Marker><MaxResults>2</MaxResults><DirectoryId>1</DirectoryId>
  <Entries>
    <File><FileId>2</FileId><Name>a.txt</Name><Properties><Content-Length>5</Content-Length>
      <CreationTime>2020-09-17T13:38:03.2663425Z</CreationTime><LastWriteTime>2020-09-17T13:38:03.2663425Z</LastWriteTime>
      <Etag>"0x1"</Etag></Properties><Attributes>Archive</Attributes></File>
    <Directory><FileId>3</FileId><Name>sub</Name><Properties/></Directory>
  </Entries>
  <NextMarker>sub2</NextMarker>
</EnumerationResults>"#;
        let r = super::parse(xml).unwrap();
        assert_eq!(r.entries.items.len(), 2);
        assert_eq!(r.next_marker.as_deref(), Some("sub2"));
        let super::Item::File(f) = &r.entries.items[0] else { panic!() };
        assert_eq!((f.name.as_str(), f.properties.content_length), ("a.txt", Some(5)));
        assert_eq!(f.properties.last_write_time.as_deref(), Some("2020-09-17T13:38:03.2663425Z"));
        let super::Item::Directory(d) = &r.entries.items[1] else { panic!() };
        assert_eq!((d.name.as_str(), d.properties.content_length), ("sub", None));
    }

    #[test]
    fn names_are_unescaped_and_unknown_elements_skipped() {
        let xml = "<EnumerationResults><Entries><File><Name>a &amp; b &lt;&#x41;&#66;&gt; &quot;c&apos;</Name>\
                   <Extra><Name>not this</Name></Extra><Properties><Content-Length> 7 </Content-Length>\
                   <Last-Modified>Wed, 02 Dec 2026 01:25:24 GMT</Last-Modified></Properties></File>\
                   <Directory><Name><![CDATA[x<y]]></Name></Directory></Entries><NextMarker /></EnumerationResults>";
        let r = super::parse(xml).unwrap();
        let super::Item::File(f) = &r.entries.items[0] else { panic!() };
        assert_eq!(f.name, "a & b <AB> \"c'");
        assert_eq!(f.properties.content_length, Some(7));
        assert_eq!(f.properties.last_modified.as_deref(), Some("Wed, 02 Dec 2026 01:25:24 GMT"));
        let super::Item::Directory(d) = &r.entries.items[1] else { panic!() };
        assert_eq!(d.name, "x<y");
        assert_eq!(r.next_marker.as_deref(), Some(""));
    }

    #[test]
    fn refuses_what_is_not_a_listing() {
        for bad in [
            "",
            "<Error><Code>x</Code></Error>",
            "<EnumerationResults><Entries><File><Name>a</Name>",
            "<EnumerationResults><Entries><File><Name>a</Nome></File></Entries></EnumerationResults>",
            "<EnumerationResults><Entries><File><Properties><Content-Length>x</Content-Length></Properties></File></Entries></EnumerationResults>",
            "<EnumerationResults><Entries><File><Name>&bogus;</Name></File></Entries></EnumerationResults>",
            "<EnumerationResults/><EnumerationResults/>",
        ] {
            assert!(super::parse(bad).is_err(), "{bad:?}");
        }
    }
}
