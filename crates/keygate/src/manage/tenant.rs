//! [`ManagedKeys`]: the key lifecycle as one tenant's manager may drive it.
//!
//! Every operation is limited to the manager's organization (and team, when the manager has
//! one): a key of another organization or team is answered exactly like an unknown id
//! ([`ManageError::NotFound`]). New keys get the manager's organization, team and owner, and
//! only scopes the manager itself holds ([`ManageError::NotGrantable`], nothing written).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{CreatedKey, DailyUsage, KeyManager, ManageError, NewKey};
use crate::audit::AuditEvent;
use crate::rate_limit::RateLimit;
use crate::record::{KeyRecord, KeyStatus};
use crate::scope::{Scope, ScopeSet};
use crate::store::{KeyUpdate, PagePosition, PageQuery, UsageTotals};

/// Who manages keys: an organization, an optional team, the owner new keys act for, the
/// scopes the manager may grant, and the actor named in the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    /// The organization whose keys are managed.
    pub org: String,
    /// When set, only this team's keys are managed, and new keys belong to it.
    pub team: Option<String>,
    /// The owner of the keys this manager creates.
    pub owner: Option<String>,
    /// The scopes this manager may grant (its own).
    pub scopes: ScopeSet,
    /// Who acts, for the audit trail: `key:<id>` for a management key, or the application's
    /// user.
    pub actor: String,
}

/// What a manager asks to create; the organization, owner (and team, when the manager has
/// one) come from the [`Manager`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRequest {
    /// Human name (required).
    pub name: String,
    /// Scopes to grant: at least one, all held by the manager.
    pub scopes: ScopeSet,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Team, honoured only when the manager has none.
    pub team: Option<String>,
    /// Token prefix (default [`DEFAULT_PREFIX`](super::DEFAULT_PREFIX)).
    pub prefix: Option<String>,
    /// The key's own rate limit.
    pub rate_limit: Option<RateLimit>,
}

/// The key lifecycle limited to one [`Manager`]'s tenant. Made by [`KeyManager::for_manager`].
#[derive(Debug, Clone)]
pub struct ManagedKeys {
    keys: KeyManager,
    manager: Manager,
}

impl KeyManager {
    /// This manager's lifecycle, limited to `manager`'s organization (and team), with
    /// `manager.actor` named in every audit event.
    pub fn for_manager(&self, manager: Manager) -> ManagedKeys {
        ManagedKeys {
            keys: self.clone().with_actor(manager.actor.clone()),
            manager,
        }
    }
}

impl ManagedKeys {
    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The time statuses are judged at.
    pub fn now(&self) -> DateTime<Utc> {
        self.keys.now()
    }

    fn may_see(&self, record: &KeyRecord) -> bool {
        record.org == self.manager.org
            && self
                .manager
                .team
                .as_ref()
                .is_none_or(|t| record.team.as_ref() == Some(t))
    }

    /// Refuses scopes the manager does not hold itself.
    fn check_grantable(&self, scopes: &ScopeSet) -> Result<(), ManageError> {
        let missing: Vec<Scope> = scopes
            .iter()
            .filter(|s| !self.manager.scopes.contains(s.as_str()))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ManageError::NotGrantable(missing))
        }
    }

    /// Creates a key in the manager's tenant. The plaintext is in the result and nowhere else.
    pub async fn create(&self, request: KeyRequest) -> Result<CreatedKey, ManageError> {
        if request.scopes.is_empty() {
            return Err(ManageError::InvalidField {
                field: "scopes",
                message: "must name at least one scope".into(),
            });
        }
        self.check_grantable(&request.scopes)?;
        let new = NewKey {
            name: request.name,
            org: self.manager.org.clone(),
            team: self.manager.team.clone().or(request.team),
            owner: self.manager.owner.clone(),
            scopes: request.scopes,
            expires_at: request.expires_at,
            prefix: request.prefix,
            metadata: Value::Null,
            rate_limit: request.rate_limit,
        };
        self.keys.create(new).await
    }

    /// One page of the tenant's keys, newest first, optionally of one status, after `after`.
    pub async fn list_page(
        &self,
        status: Option<KeyStatus>,
        after: Option<PagePosition>,
        limit: u32,
    ) -> Result<(Vec<KeyRecord>, Option<PagePosition>), ManageError> {
        let query = PageQuery {
            org: self.manager.org.clone(),
            team: self.manager.team.clone(),
            status,
            now: self.keys.now(),
            after,
            limit,
        };
        self.keys.list_page(&query).await
    }

    /// One key of the tenant.
    pub async fn show(&self, id: &str) -> Result<KeyRecord, ManageError> {
        match self.keys.store().get(id).await? {
            Some(r) if self.may_see(&r) => Ok(r),
            _ => Err(ManageError::NotFound(id.to_owned())),
        }
    }

    /// The audit trail of one key of the tenant, oldest first.
    pub async fn audit_trail(&self, id: &str) -> Result<Vec<AuditEvent>, ManageError> {
        self.show(id).await?;
        self.keys.audit_trail(id).await
    }

    /// Request totals of those of `records` that belong to the tenant (see
    /// [`KeyManager::usage_totals`]); others are left out.
    pub async fn usage_totals(
        &self,
        records: &[KeyRecord],
    ) -> Result<HashMap<String, UsageTotals>, ManageError> {
        let ids: Vec<String> = records
            .iter()
            .filter(|r| self.may_see(r))
            .map(|r| r.id.clone())
            .collect();
        self.keys.usage_totals(&ids).await
    }

    /// Daily requests of one key of the tenant (see [`KeyManager::daily_usage`]).
    pub async fn daily_usage(&self, id: &str, days: u32) -> Result<Vec<DailyUsage>, ManageError> {
        self.show(id).await?;
        self.keys.daily_usage(id, days).await
    }

    /// Renames a key, changes its expiry or rate limit. A change of expiry or rate limit can
    /// extend or loosen what the key may do, so it needs what rotation needs: the key is
    /// active and not rotated (else [`ManageError::NotActive`] / [`ManageError::AlreadyRotated`]:
    /// an expired or replaced key is never brought back), and the manager holds every scope of
    /// the key ([`ManageError::NotGrantable`]). A rename needs neither.
    pub async fn update(&self, id: &str, update: &KeyUpdate) -> Result<KeyRecord, ManageError> {
        let record = self.show(id).await?;
        if update.expires_at.is_some() || update.rate_limit.is_some() {
            if record.rotated_to.is_some() {
                return Err(ManageError::AlreadyRotated(id.to_owned()));
            }
            match record.status_at(self.keys.now()) {
                KeyStatus::Active => {}
                status => {
                    return Err(ManageError::NotActive {
                        id: id.to_owned(),
                        status,
                    })
                }
            }
            self.check_grantable(&record.scopes)?;
        }
        if let Some(Some(e)) = update.expires_at {
            if e <= self.keys.now() {
                return Err(ManageError::InvalidField {
                    field: "expires_at",
                    message: "must be in the future".into(),
                });
            }
        }
        self.keys.update(id, update).await
    }

    /// Revokes a key (kept for audit); revoking a revoked key changes nothing.
    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, ManageError> {
        self.show(id).await?;
        self.keys.revoke(id).await
    }

    /// Deletes a key (its audit trail stays).
    pub async fn delete(&self, id: &str) -> Result<(), ManageError> {
        self.show(id).await?;
        self.keys.delete(id).await
    }

    /// Rotates a key; the old one expires after `grace`. The successor carries the old key's
    /// scopes, so the manager must hold all of them (a manager cannot mint a plaintext with
    /// grants it lacks by rotating someone else's key).
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<CreatedKey, ManageError> {
        let old = self.show(id).await?;
        self.check_grantable(&old.scopes)?;
        self.keys.rotate(id, grace).await
    }
}
