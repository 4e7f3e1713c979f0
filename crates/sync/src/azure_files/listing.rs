//! The XML of List Directories and Files: the names, sizes and times a sync needs.

use crate::listing_xml::{self, Shape};

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

const SHAPE: Shape = Shape {
    list: "Entries",
    kinds: &["File", "Directory"],
    properties: &["Content-Length", "LastWriteTime", "Last-Modified"],
};

pub fn parse(xml: &str) -> Result<EnumerationResults, String> {
    let page = listing_xml::read(xml, &SHAPE)?;
    let items = page
        .items
        .into_iter()
        .map(|it| {
            let content_length = it.properties[0].is_some().then(|| it.length(0));
            let [_, last_write_time, last_modified]: [Option<String>; 3] =
                it.properties.try_into().expect("one value per property asked for");
            let node =
                Node { name: it.name, properties: Properties { content_length, last_write_time, last_modified } };
            if it.kind == 0 { Item::File(node) } else { Item::Directory(node) }
        })
        .collect();
    Ok(EnumerationResults { entries: Entries { items }, next_marker: page.next_marker })
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
