//! The listing XML of Azure Storage (Files' List Directories and Files, Blob's List Blobs), read
//! event by event. Both have the same shape: `<EnumerationResults>`, a list element (`Entries`,
//! `Blobs`) of items (`File`/`Directory`, `Blob`/`BlobPrefix`), each with a `Name`, the
//! `Properties` the caller asks for and any `Metadata`, then `<NextMarker>`. Only those fields
//! are kept; nothing is built for the rest (ids, other timestamps, attributes, ETags). A page
//! names up to 5,000 items and a walk reads one page per folder, so this is on the hot path.

use quick_xml::events::Event;

/// One page: the items in document order and the marker of the next page (`Some("")` for an
/// empty `<NextMarker/>`).
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next_marker: Option<String>,
}

#[derive(Debug)]
pub struct Item {
    /// The index in `kinds` of the item's element name.
    pub kind: usize,
    pub name: String,
    /// The text of each property asked for (same index as in [`Shape::properties`]), when
    /// present; a `Content-Length` is a number (checked).
    pub properties: Vec<Option<String>>,
    /// `Metadata`'s children as (name, value); `None` when the item has no `Metadata`.
    pub metadata: Option<Vec<(String, String)>>,
}

/// What to read: the list element, the item elements, the properties kept.
pub struct Shape {
    pub list: &'static str,
    pub kinds: &'static [&'static str],
    pub properties: &'static [&'static str],
}

/// Where the reader stands; `Other` for every element it skips.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    Root,
    List,
    NextMarker,
    Item,
    Name,
    Properties,
    Property(usize),
    Metadata,
    MetadataValue,
    Other,
}

impl Item {
    /// A `Content-Length` asked for at index `i` (0 when absent).
    pub fn length(&self, i: usize) -> u64 {
        self.properties[i].as_deref().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }
}

impl At {
    fn has_text(self) -> bool {
        matches!(self, At::NextMarker | At::Name | At::Property(_) | At::MetadataValue)
    }
}

fn position(names: &[&str], name: &[u8]) -> Option<usize> {
    names.iter().position(|n| n.as_bytes() == name)
}

pub fn read(xml: &str, shape: &Shape) -> Result<Page, String> {
    let bad = |why: String| format!("cannot parse the listing: {why}");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut page = Page::default();
    let mut stack: Vec<At> = Vec::with_capacity(8);
    let mut item: Option<Item> = None;
    let mut meta_key = String::new();
    // The service percent-encodes a name holding characters XML cannot carry (U+FFFE, U+FFFF),
    // and says so with `Encoded="true"`.
    let mut encoded = false;
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| bad(format!("{e} at byte {}", reader.error_position())))?;
        let keeps_text = stack.last().is_some_and(|a| a.has_text());
        let (open, close) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            Event::End(_) => (None, true),
            Event::Text(t) if keeps_text => {
                text.push_str(&t.decode().map_err(|e| bad(e.to_string()))?);
                continue;
            }
            Event::CData(t) if keeps_text => {
                text.push_str(&t.decode().map_err(|e| bad(e.to_string()))?);
                continue;
            }
            Event::GeneralRef(r) if keeps_text => {
                match r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
                    Some(c) => text.push(c),
                    None => {
                        let name = r.decode().map_err(|e| bad(e.to_string()))?;
                        let s = quick_xml::escape::resolve_xml_entity(&name)
                            .ok_or_else(|| bad(format!("unknown entity &{name};")))?;
                        text.push_str(s);
                    }
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if let Some(start) = open {
            let qname = start.name();
            let name = qname.as_ref();
            let at = match stack.last().copied() {
                None if seen_root => return Err(bad("a second root element".into())),
                None if name == b"EnumerationResults" => At::Root,
                None => return Err(bad(format!("the root is <{}>", String::from_utf8_lossy(name)))),
                Some(At::Root) if name == shape.list.as_bytes() => At::List,
                Some(At::Root) if name == b"NextMarker" => At::NextMarker,
                Some(At::List) => match position(shape.kinds, name) {
                    Some(kind) => {
                        item = Some(Item {
                            kind,
                            name: String::new(),
                            properties: vec![None; shape.properties.len()],
                            metadata: None,
                        });
                        At::Item
                    }
                    None => At::Other,
                },
                Some(At::Item) if name == b"Name" => {
                    encoded = start.try_get_attribute("Encoded").ok().flatten().is_some_and(|a| &*a.value == b"true");
                    At::Name
                }
                Some(At::Item) if name == b"Properties" => At::Properties,
                Some(At::Item) if name == b"Metadata" => {
                    if let Some(it) = item.as_mut() {
                        it.metadata.get_or_insert_with(Vec::new);
                    }
                    At::Metadata
                }
                Some(At::Properties) => position(shape.properties, name).map_or(At::Other, At::Property),
                Some(At::Metadata) => {
                    meta_key = String::from_utf8(name.to_vec()).map_err(|e| bad(e.to_string()))?;
                    At::MetadataValue
                }
                Some(_) => At::Other,
            };
            seen_root = true;
            text.clear();
            stack.push(at);
        }
        if close {
            let at = stack.pop().ok_or_else(|| bad("an end tag without its start".into()))?;
            let mut value = || std::mem::take(&mut text);
            match (at, item.as_mut()) {
                (At::NextMarker, _) => page.next_marker = Some(value()),
                (At::Name, Some(it)) if encoded => {
                    let v = value();
                    let name = percent_encoding::percent_decode_str(&v).decode_utf8();
                    it.name = name.map_err(|_| bad(format!("the encoded name {v:?} is not UTF-8")))?.into_owned();
                }
                (At::Name, Some(it)) => it.name = value(),
                (At::Property(i), Some(it)) => {
                    let v = value();
                    if shape.properties[i] == "Content-Length" && v.trim().parse::<u64>().is_err() {
                        return Err(bad(format!("Content-Length {v:?}")));
                    }
                    it.properties[i] = Some(v);
                }
                (At::MetadataValue, Some(it)) => {
                    it.metadata.get_or_insert_with(Vec::new).push((std::mem::take(&mut meta_key), value()))
                }
                (At::Item, _) => page.items.extend(item.take()),
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
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::{Shape, read};

    const BLOBS: Shape =
        Shape { list: "Blobs", kinds: &["Blob", "BlobPrefix"], properties: &["Content-Length", "Content-MD5"] };

    #[test]
    fn reads_items_their_properties_and_metadata_in_document_order() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>p/</Prefix><MaxResults>2</MaxResults>
  <Blobs>
    <Blob><Name>p/a.txt</Name><Properties><Creation-Time>Wed, 02 Dec 2026 01:25:24 GMT</Creation-Time>
      <Content-Length>12</Content-Length><Content-MD5>q2I0Kt5V0lZxoDw4qqWEmA==</Content-MD5></Properties>
      <Metadata><mtime>2026-12-01T10:00:00Z</mtime><Empty/><Note>a &amp; b</Note></Metadata></Blob>
    <BlobPrefix><Name>p/sub/</Name></BlobPrefix>
    <Blob><Name>p/b.txt</Name><Properties><Content-Length>0</Content-Length></Properties><Metadata/></Blob>
    <Blob><Name>p/c.txt</Name></Blob>
  </Blobs>
  <NextMarker>2!abc</NextMarker>
</EnumerationResults>"#;
        let page = read(xml, &BLOBS).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("2!abc"));
        let kinds: Vec<(usize, &str)> = page.items.iter().map(|i| (i.kind, i.name.as_str())).collect();
        assert_eq!(kinds, [(0, "p/a.txt"), (1, "p/sub/"), (0, "p/b.txt"), (0, "p/c.txt")]);
        let a = &page.items[0];
        assert_eq!((a.length(0), a.properties[1].as_deref()), (12, Some("q2I0Kt5V0lZxoDw4qqWEmA==")));
        let meta: Vec<(&str, &str)> =
            a.metadata.as_ref().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(meta, [("mtime", "2026-12-01T10:00:00Z"), ("Empty", ""), ("Note", "a & b")]);
        assert_eq!(page.items[2].metadata.as_deref(), Some(&[][..]));
        assert_eq!((page.items[3].metadata.as_deref(), page.items[3].properties[0].as_deref()), (None, None));
    }

    #[test]
    fn a_name_keeps_its_spaces_and_an_empty_page_has_no_items() {
        let xml = "<EnumerationResults><Blobs><Blob><Name>  two  </Name></Blob></Blobs></EnumerationResults>";
        assert_eq!(read(xml, &BLOBS).unwrap().items[0].name, "  two  ");
        let empty = read("<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>", &BLOBS).unwrap();
        assert!(empty.items.is_empty());
        assert_eq!(empty.next_marker.as_deref(), Some(""));
    }

    #[test]
    fn an_encoded_name_is_percent_decoded_and_only_that_one() {
        let xml = "<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%EF%BF%BEb%20c</Name></Blob>\
                   <BlobPrefix><Name Encoded=\"false\">d%20e/</Name></BlobPrefix><Blob><Name>f%41</Name></Blob>\
                   </Blobs></EnumerationResults>";
        let names: Vec<String> = read(xml, &BLOBS).unwrap().items.into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["a\u{fffe}b c", "d%20e/", "f%41"]);
        let bad =
            "<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">%FF</Name></Blob></Blobs></EnumerationResults>";
        assert!(read(bad, &BLOBS).is_err());
    }
}
