//! The XML of List Directories and Files.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename = "EnumerationResults")]
pub struct EnumerationResults {
    #[serde(rename = "Entries", default)]
    pub entries: Entries,
    #[serde(rename = "NextMarker", default)]
    pub next_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Entries {
    #[serde(rename = "$value", default)]
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
pub enum Item {
    File(Node),
    Directory(Node),
}

#[derive(Debug, Deserialize)]
pub struct Node {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Properties", default)]
    pub properties: Properties,
}

#[derive(Debug, Default, Deserialize)]
pub struct Properties {
    #[serde(rename = "Content-Length", default)]
    pub content_length: Option<u64>,
    #[serde(rename = "LastWriteTime", default)]
    pub last_write_time: Option<String>,
    #[serde(rename = "Last-Modified", default)]
    pub last_modified: Option<String>,
}

pub fn parse(xml: &str) -> Result<EnumerationResults, String> {
    quick_xml::de::from_str(xml).map_err(|e| format!("cannot parse the listing: {e}"))
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
    }
}
