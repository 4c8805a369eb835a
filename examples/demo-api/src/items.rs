//! The in-memory items repository: entities, knowledge files and boards, kept per
//! organization. Nothing in its API reads across organizations (tenant isolation).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::shape::NewItem;

/// Most items one organization keeps in one collection. The demo keeps items in memory: without
/// a cap, any key holding a write scope could grow the process without bound. A POST beyond it
/// is refused with [`CollectionFull`]: 409 `CONFLICT`, `details.reason` `collection_full`.
pub const MAX_ITEMS_PER_COLLECTION: usize = 1_000;

/// The demo API's collections, each with its path and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// `/api/v1/entities`: `entities:read`, `entities:write`.
    Entities,
    /// `/api/v1/knowledge/files`: `knowledge:read`, `knowledge:write`.
    KnowledgeFiles,
    /// `/api/v1/boards`: `boards:read`, `boards:write`.
    Boards,
}

impl Collection {
    /// Every collection.
    pub const ALL: [Collection; 3] = [
        Collection::Entities,
        Collection::KnowledgeFiles,
        Collection::Boards,
    ];

    /// The route serving the collection (GET lists, POST creates).
    pub fn path(self) -> &'static str {
        match self {
            Collection::Entities => "/api/v1/entities",
            Collection::KnowledgeFiles => "/api/v1/knowledge/files",
            Collection::Boards => "/api/v1/boards",
        }
    }

    /// Scope needed to list.
    pub fn read_scope(self) -> &'static str {
        match self {
            Collection::Entities => "entities:read",
            Collection::KnowledgeFiles => "knowledge:read",
            Collection::Boards => "boards:read",
        }
    }

    /// Scope needed to create.
    pub fn write_scope(self) -> &'static str {
        match self {
            Collection::Entities => "entities:write",
            Collection::KnowledgeFiles => "knowledge:write",
            Collection::Boards => "boards:write",
        }
    }
}

/// A stored item, as answered by POST (201) and listed by GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Generated id.
    pub id: String,
    /// Collection it belongs to.
    pub collection: Collection,
    /// The name given on creation.
    pub name: String,
    /// Organization owning the item (the creating key's org).
    pub org: String,
    /// Id of the key that created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Items per (collection, organization), in creation order.
#[derive(Debug, Default)]
pub struct Items {
    by_org: Mutex<HashMap<(Collection, String), Vec<Item>>>,
}

impl Items {
    /// Stores a new item for `org`, created by key `created_by`; refused when `org` already
    /// keeps [`MAX_ITEMS_PER_COLLECTION`] items in `collection` (the demo deletes nothing,
    /// so a full collection stays full until the process restarts).
    pub fn create(
        &self,
        collection: Collection,
        org: &str,
        created_by: &str,
        new: NewItem,
    ) -> Result<Item, CollectionFull> {
        // A panic elsewhere while holding the lock leaves the map intact: keep serving.
        let mut map = self.by_org.lock().unwrap_or_else(PoisonError::into_inner);
        let items = map.entry((collection, org.to_owned())).or_default();
        if items.len() >= MAX_ITEMS_PER_COLLECTION {
            return Err(CollectionFull { collection });
        }
        let item = Item {
            id: uuid::Uuid::new_v4().to_string(),
            collection,
            name: new.name,
            org: org.to_owned(),
            created_by: created_by.to_owned(),
            created_at: Utc::now(),
        };
        items.push(item.clone());
        Ok(item)
    }

    /// The items of `org` only, oldest first.
    pub fn list(&self, collection: Collection, org: &str) -> Vec<Item> {
        let map = self.by_org.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(collection, org.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

/// A POST refused because the caller's organization already keeps
/// [`MAX_ITEMS_PER_COLLECTION`] items in the collection.
///
/// Answered 409 `CONFLICT` (`details.reason` `collection_full`, `details.limit` the cap): the
/// request is well formed and authorized, but conflicts with the state of the collection, and
/// repeating it will not help until that state changes — like the Keys API's 409s. Not 403 (in
/// this API a 403 is a missing scope, with its `WWW-Authenticate` challenge), nor 429 (no wait
/// makes room), nor 507 (a 5xx would blame the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionFull {
    /// The collection that is full.
    pub collection: Collection,
}

impl CollectionFull {
    /// The refusal in keygate's error envelope, echoing the caller's `x-request-id` when
    /// acceptable.
    pub fn render(&self, request_id_header: Option<&[u8]>) -> keygate::ErrorResponse {
        crate::body::error_response(
            409,
            "CONFLICT",
            &format!(
                "This organization already keeps {MAX_ITEMS_PER_COLLECTION} items in this \
                 collection, the most it may"
            ),
            serde_json::json!({
                "reason": "collection_full",
                "limit": MAX_ITEMS_PER_COLLECTION,
                "collection": self.collection,
            }),
            request_id_header,
        )
    }
}

impl std::fmt::Display for CollectionFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "collection full: {MAX_ITEMS_PER_COLLECTION} items at most per organization"
        )
    }
}

impl std::error::Error for CollectionFull {}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewItem {
        NewItem {
            name: name.to_owned(),
        }
    }

    #[test]
    fn items_are_capped_per_org_and_collection() {
        let items = Items::default();
        for n in 0..MAX_ITEMS_PER_COLLECTION {
            items
                .create(Collection::Boards, "acme", "k", new(&format!("b{n}")))
                .unwrap();
        }
        let full = items
            .create(Collection::Boards, "acme", "k", new("one too many"))
            .unwrap_err();
        assert_eq!(full.collection, Collection::Boards);
        assert_eq!(
            items.list(Collection::Boards, "acme").len(),
            MAX_ITEMS_PER_COLLECTION,
            "the refused item is not stored"
        );
        // Another collection of the same org, and the same collection of another org, have
        // room of their own.
        items
            .create(Collection::Entities, "acme", "k", new("e"))
            .unwrap();
        items
            .create(Collection::Boards, "globex", "k", new("b"))
            .unwrap();
    }

    #[test]
    fn a_full_collection_is_409_collection_full_in_the_envelope() {
        let r = CollectionFull {
            collection: Collection::Boards,
        }
        .render(Some(b"req-9"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 409);
        assert_eq!(v["error"]["code"], "CONFLICT");
        assert_eq!(v["error"]["details"]["reason"], "collection_full");
        assert_eq!(v["error"]["details"]["limit"], MAX_ITEMS_PER_COLLECTION);
        assert_eq!(v["error"]["details"]["collection"], "boards");
        assert_eq!(v["meta"]["requestId"], "req-9");
    }
}
