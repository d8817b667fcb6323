//! The end of a paged listing (`ListSecrets`, `GetParametersByPath`). AWS ends one by leaving
//! out `NextToken`; an answer that gives back a token it gave before, or pages that never end,
//! would otherwise run the loop until `--deadline`, spending a quota the whole account shares
//! (100 `ListSecrets` a second). A token seen before, or more pages than the listing may take,
//! stops it with an error. Pure.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::call::Call;
use crate::error::{Error, Kind};

/// The pages of one listing so far.
#[derive(Debug)]
pub struct Pages {
    /// The tokens given so far, hashed: a token can take a kilobyte, and thousands are kept.
    seen: HashSet<u64>,
    read: usize,
    max: usize,
}

/// Why a listing stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The answer of page `page` gave a token an earlier page gave.
    Repeated { page: usize },
    /// `max` pages were read and the listing went on.
    TooMany { max: usize },
}

impl Pages {
    /// A listing of at most `max` pages (at least one).
    pub fn new(max: usize) -> Pages {
        Pages {
            seen: HashSet::new(),
            read: 0,
            max: max.max(1),
        }
    }

    /// After each page, with its `NextToken`: the token to ask for the next page, or `None` at
    /// the end of the listing.
    pub fn next(&mut self, token: Option<&str>) -> Result<Option<String>, Stop> {
        self.read += 1;
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Ok(None);
        };
        if !self.seen.insert(hash(token)) {
            return Err(Stop::Repeated { page: self.read });
        }
        if self.read >= self.max {
            return Err(Stop::TooMany { max: self.max });
        }
        Ok(Some(token.to_owned()))
    }
}

/// A listing whose answer gave back a token an earlier page had: never AWS's own answer, so it is
/// taken as the region failing (the failover region, when there is one, lists again).
pub fn looped(call: Call, region: &str, page: usize) -> Error {
    let operation = call.iam().split_once(':').map_or(call.iam(), |(_, op)| op);
    Error::object(
        "ListingLoop",
        format!(
            "{operation} in {region} answered page {page} with a NextToken an earlier page \
             had; the listing stops instead of reading the same pages again"
        ),
        Kind::Transient,
    )
}

fn hash(token: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    token.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_ends_when_no_token_comes() {
        let mut pages = Pages::new(10);
        assert_eq!(pages.next(Some("a")), Ok(Some("a".to_owned())));
        assert_eq!(pages.next(Some("b")), Ok(Some("b".to_owned())));
        assert_eq!(pages.next(None), Ok(None));
        // An empty token ends it too.
        assert_eq!(Pages::new(10).next(Some("")), Ok(None));
    }

    #[test]
    fn a_token_given_before_stops_the_listing() {
        let mut pages = Pages::new(100);
        assert!(pages.next(Some("t")).is_ok());
        assert_eq!(pages.next(Some("t")), Err(Stop::Repeated { page: 2 }));
        // A longer loop too.
        let mut pages = Pages::new(100);
        for token in ["a", "b", "c"] {
            assert!(pages.next(Some(token)).is_ok());
        }
        assert_eq!(pages.next(Some("a")), Err(Stop::Repeated { page: 4 }));
    }

    #[test]
    fn a_loop_is_named_with_the_call_and_region() {
        let e = looped(Call::ListSecrets, "us-east-1", 7);
        assert_eq!(
            e.to_string(),
            "ListingLoop: ListSecrets in us-east-1 answered page 7 with a NextToken an earlier \
             page had; the listing stops instead of reading the same pages again"
        );
    }

    #[test]
    fn pages_that_never_end_stop_at_the_bound() {
        let mut pages = Pages::new(3);
        assert!(pages.next(Some("1")).is_ok());
        assert!(pages.next(Some("2")).is_ok());
        assert_eq!(pages.next(Some("3")), Err(Stop::TooMany { max: 3 }));
        // The last page allowed may end the listing.
        let mut pages = Pages::new(2);
        assert!(pages.next(Some("1")).is_ok());
        assert_eq!(pages.next(None), Ok(None));
    }
}
