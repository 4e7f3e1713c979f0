//! Flat listings of Blob endpoints, read page by page for Blob→Blob: one List Blobs request per
//! 5,000 names instead of one per "directory", the next page asked for while the engine merges
//! the current one with the other side's.
//!
//! A merge of two sorted streams is only as right as their common order. Azure lists a flat
//! container in the binary order of the whole name as UTF-16 code units (the documented
//! "alphabetical, upper-case first"; `a-b` < `a.b` < `a/b`, unlike a per-directory walk, which
//! visits `a/b` before `a-b`), and so does Azurite: [`name_order`] is that order. Two things can
//! break it, and each sends the run back to the per-directory walk before a wrong decision can be
//! made: an account with a hierarchical namespace lists directory by directory (its folder
//! markers, `hdi_isfolder=true`, come before anything inside them, so the first one seen stops
//! the flat merge), and any name that arrives out of [`name_order`] (checked for every name).

use std::cmp::Ordering;

use tokio::sync::mpsc;

use super::blob::{Blob, FlatItem};
use super::entry::Entry;
use super::op_error::{OpError, OpResult, retrying};

/// The order of a flat blob listing: the whole name compared as UTF-16 code units.
pub fn name_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The largest page List Blobs returns (also its default).
pub const PAGE: usize = 5000;

/// What the merge gets next from one side.
pub enum Next {
    File(String, Entry),
    End,
    /// The listing failed after its retries.
    Failed(OpError),
    /// The flat order cannot be trusted here (why): compare directory by directory instead.
    Broken(String),
}

/// The consumer's end of one side's pages, checking the order of every name.
pub struct Pages {
    rx: Option<mpsc::Receiver<OpResult<Vec<FlatItem>>>>,
    page: std::vec::IntoIter<FlatItem>,
    last: Option<String>,
}

impl Pages {
    /// `None`: a side with nothing to list (a destination that does not exist yet).
    pub fn new(rx: Option<mpsc::Receiver<OpResult<Vec<FlatItem>>>>) -> Pages {
        Pages { rx, page: Vec::new().into_iter(), last: None }
    }

    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(item) = self.page.next() {
                return match item {
                    FlatItem::Folder(name) => Next::Broken(format!(
                        "{name}/ is a folder of a hierarchical namespace, which lists folder by folder"
                    )),
                    FlatItem::File(name, entry) => {
                        if let Some(last) = &self.last
                            && name_order(last, &name) != Ordering::Less
                        {
                            return Next::Broken(format!("\"{name}\" was listed after \"{last}\""));
                        }
                        self.last = Some(name.clone());
                        Next::File(name, entry)
                    }
                };
            }
            let Some(rx) = self.rx.as_mut() else { return Next::End };
            match rx.recv().await {
                Some(Ok(page)) => self.page = page.into_iter(),
                Some(Err(e)) => {
                    self.rx = None;
                    return Next::Failed(e);
                }
                None => {
                    self.rx = None;
                    return Next::End;
                }
            }
        }
    }
}

/// How the producer retries and reports each page.
pub struct Paging<'a> {
    pub page_size: usize,
    pub policy: drscript_base::retry::Policy,
    /// Where the policy's deadline counts from (the sync's start).
    pub origin: std::time::Instant,
    /// Told the outcome of every page (the engine's give-up rule and progress).
    pub note: &'a (dyn Fn(Result<(), &OpError>) + Sync),
}

/// Lists `blob` flat into `tx`, one page ahead of the consumer (the channel holds one page);
/// stops after the last page, a failure (sent on), or when the consumer hangs up.
pub async fn produce(blob: &Blob, paging: &Paging<'_>, tx: mpsc::Sender<OpResult<Vec<FlatItem>>>) {
    let mut marker = String::new();
    loop {
        let retry = paging.policy.start_at(paging.origin);
        let (page, _) =
            retrying(retry, "a listing page", || false, || blob.list_flat_page(&marker, paging.page_size)).await;
        (paging.note)(page.as_ref().map(|_| ()));
        match page {
            Ok((items, next)) => {
                if tx.send(Ok(items)).await.is_err() {
                    return;
                }
                match next {
                    Some(m) => marker = m,
                    None => return,
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_order_is_the_flat_listing_order_not_a_directory_walk() {
        let mut names = vec!["a/b", "a-b", "a.b", "a", "a0", "B", "é", "\u{ff5e}", "\u{1f600}"];
        names.sort_by(|a, b| name_order(a, b));
        // '-' (2D) < '.' (2E) < '/' (2F) < '0' (30); upper case first; an astral character
        // (surrogates D83D…) sorts before U+FF5E in UTF-16, after it in UTF-8.
        assert_eq!(names, vec!["B", "a", "a-b", "a.b", "a/b", "a0", "é", "\u{1f600}", "\u{ff5e}"]);
    }
}
