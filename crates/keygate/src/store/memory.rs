//! The in-memory [`KeyStore`]: for tests, demos and single-process services that load keys
//! at start-up. Nothing survives a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    KeyFilter, KeyStore, KeyUpdate, PageQuery, RotateOutcome, Rotation, StoreError, UsageCount,
    UsageTotals,
};
use crate::audit::AuditEvent;
use crate::record::{KeyRecord, KeyStatus};

/// A [`KeyStore`] in a `HashMap` behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, KeyRecord>,
    audit: Vec<AuditEvent>,
    /// (key id, hour start) → (requests, refused).
    usage: BTreeMap<(String, DateTime<Utc>), (u64, u64)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a record half-written (every
        // mutation is a single map operation), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update<F: FnOnce(&mut KeyRecord)>(&self, id: &str, f: F) -> bool {
        match self.lock().records.get_mut(id) {
            Some(r) => {
                f(r);
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        // One lock for the check and every write: the transaction of this store.
        let mut inner = self.lock();
        if inner.records.contains_key(&record.id) {
            return Err(StoreError::Conflict(record.id.clone()));
        }
        inner.records.insert(record.id.clone(), record.clone());
        inner.audit.extend(audit.iter().cloned());
        Ok(())
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let mut out: Vec<KeyRecord> = self
            .lock()
            .records
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        let mut out: Vec<KeyRecord> = self
            .lock()
            .records
            .values()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        // One lock for the check and every write: the transaction of this store.
        let mut inner = self.lock();
        let Some(old) = inner.records.get(rotation.old_id) else {
            return Ok(RotateOutcome::NotFound);
        };
        if old.rotated_to.is_some() {
            return Ok(RotateOutcome::AlreadyRotated);
        }
        if old.status_at(rotation.now) != KeyStatus::Active {
            return Ok(RotateOutcome::NotActive);
        }
        if inner.records.contains_key(&rotation.successor.id) {
            return Err(StoreError::Conflict(rotation.successor.id.clone()));
        }
        inner
            .records
            .insert(rotation.successor.id.clone(), rotation.successor.clone());
        if let Some(old) = inner.records.get_mut(rotation.old_id) {
            old.rotated_to = Some(rotation.successor.id.clone());
            old.expires_at = Some(
                old.expires_at
                    .map_or(rotation.old_expires_at, |e| e.min(rotation.old_expires_at)),
            );
        }
        inner.audit.extend(rotation.audit.iter().cloned());
        Ok(RotateOutcome::Rotated)
    }

    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return Ok(None);
        };
        update.apply_to(record);
        let updated = record.clone();
        inner.audit.push(audit.clone());
        Ok(Some(updated))
    }

    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return Ok(false);
        };
        if record.revoked_at.is_none() {
            record.revoked_at = Some(at);
            inner.audit.push(audit.clone());
        }
        Ok(true)
    }

    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.records.remove(id).is_none() {
            return Ok(false);
        }
        inner.audit.push(audit.clone());
        Ok(true)
    }

    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        Ok(self.update(id, |r| r.expires_at = expires_at))
    }

    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.records.get_mut(id) {
            Some(r) if r.hash == expected => {
                r.hash = hash.to_owned();
                inner.audit.push(audit.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for (id, at) in uses {
            if let Some(r) = inner.records.get_mut(id) {
                if r.last_used_at.is_none_or(|prev| prev < *at) {
                    r.last_used_at = Some(*at);
                }
            }
        }
        Ok(())
    }

    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for c in counts {
            let e = inner
                .usage
                .entry((c.key_id.clone(), c.hour))
                .or_insert((0, 0));
            e.0 = e.0.saturating_add(c.requests);
            e.1 = e.1.saturating_add(c.refused);
        }
        Ok(())
    }

    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        Ok(self
            .lock()
            .usage
            .range((key_id.to_owned(), since)..)
            .take_while(|((id, _), _)| id == key_id)
            .map(|((id, hour), &(requests, refused))| UsageCount {
                key_id: id.clone(),
                hour: *hour,
                requests,
                refused,
            })
            .collect())
    }

    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        let inner = self.lock();
        let mut out = Vec::new();
        for id in key_ids {
            let mut t = UsageTotals {
                key_id: id.clone(),
                ..UsageTotals::default()
            };
            let mut any = false;
            for ((_, hour), &(requests, refused)) in inner
                .usage
                .range((id.clone(), month_since)..)
                .take_while(|((k, _), _)| k == id)
            {
                any = true;
                t.requests_30d = t.requests_30d.saturating_add(requests);
                if *hour >= day_since {
                    t.requests_24h = t.requests_24h.saturating_add(requests);
                    t.refused_24h = t.refused_24h.saturating_add(refused);
                }
            }
            if any {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let n = inner.usage.len();
        inner.usage.retain(|(_, hour), _| *hour >= before);
        Ok((n - inner.usage.len()) as u64)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.lock().audit.push(event.clone());
        Ok(())
    }

    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self
            .lock()
            .audit
            .iter()
            .filter(|e| e.key_id == key_id)
            .cloned()
            .collect())
    }
}
