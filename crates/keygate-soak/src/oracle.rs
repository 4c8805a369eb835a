//! The oracle: for every answer the server gave, decides whether it was wrong.
//!
//! All times are wall-clock milliseconds since the Unix epoch, read with the same clock the
//! verifier uses (`chrono::Utc::now`), so they compare with key expiries directly. The rules:
//!
//! - A **genuine** key (the real secret) must be accepted when, at the moment its answer
//!   arrived, no revocation of it had started and it was not yet expired: the verification
//!   happened between sending and receiving, so it saw the key valid. When it *is* accepted,
//!   the answer is wrong if it was sent after its expiry, or after its revocation finished plus
//!   the allowed delay: none for a revoke through the verifier's own [`KeyManager`] ("bites on
//!   the next request"), the revocation window plus a small slack for a revoke made by another
//!   process. A rejection must name a state the key really had (`revoked_key` only if revoked,
//!   `expired_key` only if expired, `invalid_key` only once deleted).
//! - A **forged** key (real id, wrong secret, valid checksum) must be refused as `invalid_key`,
//!   whatever the state of the id: any other reason discloses the key's state to someone who
//!   does not hold it.
//! - An **unknown id**, a **malformed** key and **no key** must be refused with
//!   `invalid_key`, `malformed_key` and `missing_credentials`.
//! - Any 503 is wrong: the soak's store does not fail.
//!
//! [`KeyManager`]: keygate::KeyManager

use std::collections::BTreeMap;
use std::fmt;

/// Who revoked a key, which decides how soon the revocation must bite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeMode {
    /// Through a `KeyManager` connected to the server's verifier: bites on the next request.
    Local,
    /// Through a manager that does not know the verifier (another process): bites within the
    /// revocation window.
    Remote,
}

/// A revocation of a key, as the churn task performed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Who revoked it.
    pub mode: RevokeMode,
    /// Just before the store was asked to revoke.
    pub started_ms: i64,
    /// Once the revoke call returned (`None` while it runs).
    pub done_ms: Option<i64>,
}

/// What is known about a genuine key when its answer arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    /// The key's public id.
    pub id: String,
    /// Its expiry.
    pub expires_at_ms: Option<i64>,
    /// Its revocation, if one has started.
    pub revoked: Option<Revocation>,
    /// When its deletion started (keys are deleted once long revoked or expired).
    pub deleted_ms: Option<i64>,
}

/// What a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A real key with its real secret.
    Genuine(KeyFacts),
    /// A real id with a wrong secret and a valid checksum.
    Forged {
        /// The real id.
        id: String,
    },
    /// A well-formed key whose id the store does not know.
    UnknownId,
    /// A credential that is not a key (bad checksum, garbage).
    Malformed,
    /// No credential at all.
    Missing,
}

impl Presented {
    /// Short name of the class, for the report.
    pub fn class(&self) -> &'static str {
        match self {
            Presented::Genuine(f) => match (f.revoked.is_some(), f.expires_at_ms.is_some()) {
                (true, _) => "genuine-revoked",
                (false, true) => "genuine-expiring",
                (false, false) => "genuine",
            },
            Presented::Forged { .. } => "forged",
            Presented::UnknownId => "unknown-id",
            Presented::Malformed => "malformed",
            Presented::Missing => "missing",
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the principal's id.
    Accepted {
        /// Id of the principal the handler saw.
        principal_id: String,
    },
    /// An error status with `error.details.reason` of the JSON envelope.
    Refused {
        /// HTTP status.
        status: u16,
        /// `details.reason`, empty if the body had none.
        reason: String,
    },
}

impl Answer {
    /// `ok`, or the refusal's reason (and status when it is not 401).
    pub fn outcome(&self) -> String {
        match self {
            Answer::Accepted { .. } => "ok".to_owned(),
            Answer::Refused {
                status: 401,
                reason,
            } => reason.clone(),
            Answer::Refused { status, reason } => format!("{status} {reason}"),
        }
    }
}

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// What was presented (genuine facts read after the answer arrived).
    pub presented: Presented,
    /// Just before the request was written.
    pub sent_ms: i64,
    /// Just after the answer was read.
    pub received_ms: i64,
    /// The answer.
    pub answer: Answer,
}

/// Allowed delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The verifier's revocation window: how late a remote revocation may bite.
    pub revocation_window_ms: i64,
    /// Extra tolerance on top of the window for remote revocations (scheduling, clock reads).
    pub slack_ms: i64,
}

/// The classes of wrong answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Wrong {
    /// A revoked key accepted after its revocation (plus the allowed delay).
    RevokedAccepted,
    /// An expired key accepted after its expiry.
    ExpiredAccepted,
    /// A valid, unrevoked, unexpired key refused.
    ValidRejected,
    /// A forged, unknown, malformed or missing credential accepted.
    ForgedAccepted,
    /// A wrong secret answered with the key's state (`revoked_key`, `expired_key`).
    StateDisclosed,
    /// Accepted, but the handler saw another key's principal.
    WrongPrincipal,
    /// Refused, but with a reason that does not fit what was presented.
    WrongReason,
    /// A 503: the soak's store never fails.
    Unavailable,
}

impl Wrong {
    /// Every class, in report order.
    pub const ALL: [Wrong; 8] = [
        Wrong::RevokedAccepted,
        Wrong::ExpiredAccepted,
        Wrong::ValidRejected,
        Wrong::ForgedAccepted,
        Wrong::StateDisclosed,
        Wrong::WrongPrincipal,
        Wrong::WrongReason,
        Wrong::Unavailable,
    ];
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wrong::RevokedAccepted => "revoked key accepted after its window",
            Wrong::ExpiredAccepted => "expired key accepted after its expiry",
            Wrong::ValidRejected => "valid key rejected",
            Wrong::ForgedAccepted => "forged/invalid credential accepted",
            Wrong::StateDisclosed => "key state disclosed to a wrong secret",
            Wrong::WrongPrincipal => "accepted as another key's principal",
            Wrong::WrongReason => "refused with a reason that does not fit",
            Wrong::Unavailable => "503 (store never fails here)",
        })
    }
}

/// Judges one exchange: `None` when the answer is right.
pub fn judge(ex: &Exchange, policy: &Policy) -> Option<Wrong> {
    match (&ex.presented, &ex.answer) {
        (_, Answer::Refused { status: 503, .. }) => Some(Wrong::Unavailable),
        (Presented::Genuine(facts), Answer::Accepted { principal_id }) => {
            if *principal_id != facts.id {
                return Some(Wrong::WrongPrincipal);
            }
            if let Some(Revocation {
                mode,
                done_ms: Some(done),
                ..
            }) = facts.revoked
            {
                let allowed = match mode {
                    RevokeMode::Local => 0,
                    RevokeMode::Remote => policy.revocation_window_ms + policy.slack_ms,
                };
                if ex.sent_ms > done.saturating_add(allowed) {
                    return Some(Wrong::RevokedAccepted);
                }
            }
            match facts.expires_at_ms {
                Some(e) if ex.sent_ms >= e => Some(Wrong::ExpiredAccepted),
                _ => None,
            }
        }
        (Presented::Genuine(facts), Answer::Refused { status, reason }) => {
            let revoked = facts
                .revoked
                .is_some_and(|r| r.started_ms <= ex.received_ms);
            let expired = facts.expires_at_ms.is_some_and(|e| e <= ex.received_ms);
            if !revoked && !expired {
                return Some(Wrong::ValidRejected);
            }
            let deleted = facts.deleted_ms.is_some_and(|d| d <= ex.received_ms);
            let fits = *status == 401
                && match reason.as_str() {
                    "revoked_key" => revoked,
                    "expired_key" => expired,
                    "invalid_key" => deleted,
                    _ => false,
                };
            (!fits).then_some(Wrong::WrongReason)
        }
        (_, Answer::Accepted { .. }) => Some(Wrong::ForgedAccepted),
        (Presented::Forged { .. }, Answer::Refused { status, reason }) => {
            match (*status, reason.as_str()) {
                (401, "invalid_key") => None,
                // Throttled: the secret was not checked, and the answer says so.
                (429, "too_many_attempts") => None,
                (_, "revoked_key" | "expired_key") => Some(Wrong::StateDisclosed),
                _ => Some(Wrong::WrongReason),
            }
        }
        (presented, Answer::Refused { status, reason }) => {
            let expected = match presented {
                Presented::UnknownId => "invalid_key",
                Presented::Malformed => "malformed_key",
                _ => "missing_credentials",
            };
            (*status != 401 || reason != expected).then_some(Wrong::WrongReason)
        }
    }
}

/// Running counts of a soak.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests judged.
    pub requests: u64,
    /// (class of what was presented, outcome) → count.
    pub outcomes: BTreeMap<(&'static str, String), u64>,
    /// Wrong answers per class.
    pub wrong: BTreeMap<Wrong, u64>,
    /// The first few wrong exchanges, described without secrets.
    pub examples: Vec<String>,
    /// Requests that got no HTTP answer at all.
    pub transport_errors: u64,
}

impl Tally {
    /// Judges `ex` and counts it.
    pub fn record(&mut self, ex: &Exchange, policy: &Policy) -> Option<Wrong> {
        self.requests += 1;
        *self
            .outcomes
            .entry((ex.presented.class(), ex.answer.outcome()))
            .or_default() += 1;
        let wrong = judge(ex, policy);
        if let Some(w) = wrong {
            *self.wrong.entry(w).or_default() += 1;
            if self.examples.len() < 20 {
                self.examples.push(describe(ex, w));
            }
        }
        wrong
    }

    /// Adds another tally's counts to this one.
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.transport_errors += other.transport_errors;
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, v) in other.wrong {
            *self.wrong.entry(k).or_default() += v;
        }
        for e in other.examples {
            if self.examples.len() < 20 {
                self.examples.push(e);
            }
        }
    }

    /// Total wrong answers.
    pub fn wrong_total(&self) -> u64 {
        self.wrong.values().sum()
    }
}

/// One line about a wrong exchange: ids and times only, never a secret.
fn describe(ex: &Exchange, wrong: Wrong) -> String {
    let who = match &ex.presented {
        Presented::Genuine(f) => format!(
            "genuine id={} expires_at_ms={:?} revoked={:?}",
            f.id, f.expires_at_ms, f.revoked
        ),
        Presented::Forged { id } => format!("forged id={id}"),
        other => other.class().to_owned(),
    };
    format!(
        "{wrong}: {who} sent_ms={} received_ms={} answer={:?}",
        ex.sent_ms, ex.received_ms, ex.answer
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        revocation_window_ms: 2_000,
        slack_ms: 250,
    };

    fn genuine(expires_at_ms: Option<i64>, revoked: Option<Revocation>) -> Presented {
        Presented::Genuine(KeyFacts {
            id: "0123456789abcdef".into(),
            expires_at_ms,
            revoked,
            deleted_ms: None,
        })
    }

    fn ok() -> Answer {
        Answer::Accepted {
            principal_id: "0123456789abcdef".into(),
        }
    }

    fn refused(reason: &str) -> Answer {
        Answer::Refused {
            status: 401,
            reason: reason.into(),
        }
    }

    fn at(presented: Presented, sent_ms: i64, answer: Answer) -> Exchange {
        Exchange {
            presented,
            sent_ms,
            received_ms: sent_ms + 5,
            answer,
        }
    }

    fn revoked(mode: RevokeMode, started_ms: i64, done_ms: i64) -> Option<Revocation> {
        Some(Revocation {
            mode,
            started_ms,
            done_ms: Some(done_ms),
        })
    }

    #[test]
    fn a_valid_key_accepted_is_right_and_refused_is_wrong() {
        assert_eq!(judge(&at(genuine(None, None), 1_000, ok()), &POLICY), None);
        assert_eq!(
            judge(
                &at(genuine(None, None), 1_000, refused("invalid_key")),
                &POLICY
            ),
            Some(Wrong::ValidRejected)
        );
        assert_eq!(
            judge(
                &at(
                    genuine(None, None),
                    1_000,
                    Answer::Refused {
                        status: 503,
                        reason: "store_unavailable".into()
                    }
                ),
                &POLICY
            ),
            Some(Wrong::Unavailable)
        );
    }

    #[test]
    fn a_locally_revoked_key_must_be_refused_from_the_next_request_on() {
        let r = revoked(RevokeMode::Local, 1_000, 1_010);
        // Sent while the revoke ran: either answer is right.
        assert_eq!(judge(&at(genuine(None, r), 1_005, ok()), &POLICY), None);
        assert_eq!(
            judge(
                &at(genuine(None, r), 1_005, refused("revoked_key")),
                &POLICY
            ),
            None
        );
        // Sent after it returned: only a refusal is right.
        assert_eq!(
            judge(&at(genuine(None, r), 1_011, ok()), &POLICY),
            Some(Wrong::RevokedAccepted)
        );
        assert_eq!(
            judge(
                &at(genuine(None, r), 1_011, refused("revoked_key")),
                &POLICY
            ),
            None
        );
    }

    #[test]
    fn a_remotely_revoked_key_may_be_accepted_within_the_window_only() {
        let r = revoked(RevokeMode::Remote, 1_000, 1_010);
        let last_allowed = 1_010 + POLICY.revocation_window_ms + POLICY.slack_ms;
        assert_eq!(
            judge(&at(genuine(None, r), last_allowed, ok()), &POLICY),
            None
        );
        assert_eq!(
            judge(&at(genuine(None, r), last_allowed + 1, ok()), &POLICY),
            Some(Wrong::RevokedAccepted)
        );
    }

    #[test]
    fn a_revocation_that_started_after_the_answer_does_not_excuse_a_refusal() {
        let late = Some(Revocation {
            mode: RevokeMode::Local,
            started_ms: 2_000,
            done_ms: None,
        });
        assert_eq!(
            judge(
                &at(genuine(None, late), 1_000, refused("revoked_key")),
                &POLICY
            ),
            Some(Wrong::ValidRejected)
        );
    }

    #[test]
    fn an_expired_key_must_be_refused_from_its_expiry_on() {
        let g = || genuine(Some(5_000), None);
        assert_eq!(judge(&at(g(), 4_999, ok()), &POLICY), None);
        assert_eq!(
            judge(&at(g(), 5_000, ok()), &POLICY),
            Some(Wrong::ExpiredAccepted)
        );
        assert_eq!(
            judge(&at(g(), 5_000, refused("expired_key")), &POLICY),
            None
        );
        // Answered before the expiry: a refusal is wrong.
        assert_eq!(
            judge(&at(g(), 4_000, refused("expired_key")), &POLICY),
            Some(Wrong::ValidRejected)
        );
    }

    #[test]
    fn a_refusal_must_name_a_state_the_key_really_had() {
        let r = revoked(RevokeMode::Local, 1_000, 1_010);
        assert_eq!(
            judge(
                &at(genuine(None, r), 2_000, refused("expired_key")),
                &POLICY
            ),
            Some(Wrong::WrongReason)
        );
        assert_eq!(
            judge(
                &at(genuine(None, r), 2_000, refused("invalid_key")),
                &POLICY
            ),
            Some(Wrong::WrongReason)
        );
        // Once deleted, the key is unknown.
        let deleted = Presented::Genuine(KeyFacts {
            id: "0123456789abcdef".into(),
            expires_at_ms: None,
            revoked: r,
            deleted_ms: Some(1_900),
        });
        assert_eq!(
            judge(&at(deleted, 2_000, refused("invalid_key")), &POLICY),
            None
        );
        // Revoked and expired: either state may be named.
        let both = genuine(Some(1_500), r);
        assert_eq!(
            judge(&at(both.clone(), 2_000, refused("revoked_key")), &POLICY),
            None
        );
        assert_eq!(
            judge(&at(both, 2_000, refused("expired_key")), &POLICY),
            None
        );
    }

    #[test]
    fn accepting_as_another_principal_is_wrong() {
        let other = Answer::Accepted {
            principal_id: "ffffffffffffffff".into(),
        };
        assert_eq!(
            judge(&at(genuine(None, None), 1_000, other), &POLICY),
            Some(Wrong::WrongPrincipal)
        );
    }

    #[test]
    fn a_wrong_secret_is_only_ever_invalid_key() {
        let forged = || Presented::Forged { id: "x".into() };
        assert_eq!(
            judge(&at(forged(), 1_000, refused("invalid_key")), &POLICY),
            None
        );
        assert_eq!(
            judge(&at(forged(), 1_000, ok()), &POLICY),
            Some(Wrong::ForgedAccepted)
        );
        let throttled = Answer::Refused {
            status: 429,
            reason: "too_many_attempts".into(),
        };
        assert_eq!(judge(&at(forged(), 1_000, throttled), &POLICY), None);
        assert_eq!(
            judge(&at(forged(), 1_000, refused("revoked_key")), &POLICY),
            Some(Wrong::StateDisclosed)
        );
        assert_eq!(
            judge(&at(forged(), 1_000, refused("expired_key")), &POLICY),
            Some(Wrong::StateDisclosed)
        );
    }

    #[test]
    fn unknown_malformed_and_missing_get_their_own_reasons() {
        for (p, reason) in [
            (Presented::UnknownId, "invalid_key"),
            (Presented::Malformed, "malformed_key"),
            (Presented::Missing, "missing_credentials"),
        ] {
            assert_eq!(judge(&at(p.clone(), 1, refused(reason)), &POLICY), None);
            assert_eq!(
                judge(&at(p.clone(), 1, refused("revoked_key")), &POLICY),
                Some(Wrong::WrongReason)
            );
            assert_eq!(judge(&at(p, 1, ok()), &POLICY), Some(Wrong::ForgedAccepted));
        }
    }

    #[test]
    fn the_tally_counts_outcomes_and_wrong_answers_per_class() {
        let mut t = Tally::default();
        t.record(&at(genuine(None, None), 1, ok()), &POLICY);
        t.record(&at(genuine(None, None), 1, refused("invalid_key")), &POLICY);
        t.record(
            &at(Presented::Missing, 1, refused("missing_credentials")),
            &POLICY,
        );
        assert_eq!(t.requests, 3);
        assert_eq!(t.wrong_total(), 1);
        assert_eq!(t.wrong.get(&Wrong::ValidRejected), Some(&1));
        assert_eq!(t.outcomes.get(&("genuine", "ok".to_owned())), Some(&1));
        assert_eq!(t.examples.len(), 1);
        assert!(t.examples[0].contains("valid key rejected"));
    }
}
