//! Lifecycle audit events and where they go.
//!
//! Every lifecycle operation of [`KeyManager`](crate::KeyManager) produces an [`AuditEvent`]:
//! it is appended to the store's audit trail (kept even after the key is deleted) and handed
//! to an [`AuditSink`] (by default [`TracingAuditSink`], which logs it). Events carry key ids,
//! never secrets.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// The key was created.
    Created,
    /// The key was revoked.
    Revoked,
    /// The key was deleted.
    Deleted,
    /// The key was replaced by a new one (`detail.new_id`); it expires after the grace period.
    Rotated,
    /// The key's expiry changed.
    ExpiryChanged,
    /// The key's name, expiry or rate limit changed (`detail` lists the new values).
    Updated,
    /// The stored hash was upgraded to stronger hashing parameters (by a verifier, after a
    /// successful check; written to the store's trail, not to a key manager's sink).
    Rehashed,
}

impl AuditAction {
    /// The action as a snake_case string (`created`, `revoked`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Revoked => "revoked",
            AuditAction::Deleted => "deleted",
            AuditAction::Rotated => "rotated",
            AuditAction::ExpiryChanged => "expiry_changed",
            AuditAction::Updated => "updated",
            AuditAction::Rehashed => "rehashed",
        }
    }

    /// Parses [`AuditAction::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => AuditAction::Created,
            "revoked" => AuditAction::Revoked,
            "deleted" => AuditAction::Deleted,
            "rotated" => AuditAction::Rotated,
            "expiry_changed" => AuditAction::ExpiryChanged,
            "updated" => AuditAction::Updated,
            "rehashed" => AuditAction::Rehashed,
            _ => return None,
        })
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The key concerned.
    pub key_id: String,
    /// What happened.
    pub action: AuditAction,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The organization of the key.
    pub org: String,
    /// Who did it, when the application knows (e.g. the CLI's OS user).
    pub actor: Option<String>,
    /// Extra facts (never secrets), e.g. `{"new_id": "…"}` for a rotation.
    pub detail: serde_json::Value,
}

/// Receives lifecycle events (in addition to the store's own audit trail).
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event. Must not block for long; hand off to a task for slow sinks.
    fn record(&self, event: &AuditEvent);
}

/// The default sink: one `tracing` event at INFO per lifecycle event (target `keygate::audit`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAuditSink;

impl AuditSink for TracingAuditSink {
    fn record(&self, event: &AuditEvent) {
        tracing::info!(
            target: "keygate::audit",
            key_id = %event.key_id,
            action = event.action.as_str(),
            org = %event.org,
            actor = event.actor.as_deref().unwrap_or(""),
            detail = %event.detail,
            "key lifecycle event"
        );
    }
}
