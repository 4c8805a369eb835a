//! The in-memory items repository: entities, knowledge files and boards, kept per
//! organization. Nothing in its API reads across organizations (tenant isolation).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::shape::NewItem;

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
    /// Stores a new item for `org`, created by key `created_by`.
    pub fn create(
        &self,
        collection: Collection,
        org: &str,
        created_by: &str,
        new: NewItem,
    ) -> Item {
        let item = Item {
            id: uuid::Uuid::new_v4().to_string(),
            collection,
            name: new.name,
            org: org.to_owned(),
            created_by: created_by.to_owned(),
            created_at: Utc::now(),
        };
        // A panic elsewhere while holding the lock leaves the map intact: keep serving.
        let mut map = self.by_org.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry((collection, org.to_owned()))
            .or_default()
            .push(item.clone());
        item
    }

    /// The items of `org` only, oldest first.
    pub fn list(&self, collection: Collection, org: &str) -> Vec<Item> {
        let map = self.by_org.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(collection, org.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}
