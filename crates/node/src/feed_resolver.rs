//! The gateway's view of feeds: `/feeds/KEY` is the newest snapshot this
//! node holds completely (for a followed feed, the one materialized last;
//! for a feed it publishes, the newest entry), `/feeds/KEY@SEQ` any
//! snapshot in the log.

use crate::gateway::{FeedResolver, GatewayError, ResolvedFeed};
use shoal_feeds::{FeedError, FeedId, Feeds};
use std::sync::Arc;

pub struct NodeFeeds(pub Arc<Feeds>);

impl FeedResolver for NodeFeeds {
    fn resolve(&self, feed: &str, seq: Option<u64>) -> Result<ResolvedFeed, GatewayError> {
        let id: FeedId = feed
            .parse()
            .map_err(|e: shoal_feeds::KeyError| GatewayError::BadRequest(e.to_string()))?;
        let internal = |e: FeedError| GatewayError::Internal(e.to_string());
        let follow = self.0.state.follow(&id.0).map_err(|e| internal(e.into()))?;
        let seq = match (seq, follow) {
            (Some(s), _) => Some(s),
            (None, Some(f)) => match f.materialized {
                Some(m) => Some(m),
                None => {
                    return Err(GatewayError::NotFound(format!(
                        "feed {id}: no snapshot fetched yet"
                    )))
                }
            },
            (None, None) => None,
        };
        match self.0.snapshot(&id, seq) {
            Ok((seq, s)) => Ok(ResolvedFeed {
                root: s.root,
                seq,
                time: s.time,
            }),
            Err(e @ (FeedError::Unknown(_) | FeedError::NoSnapshot(..))) => {
                Err(GatewayError::NotFound(e.to_string()))
            }
            Err(e) => Err(internal(e)),
        }
    }
}
