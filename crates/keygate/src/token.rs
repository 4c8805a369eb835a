//! The key format: `<prefix>_<id>.<secret><checksum>`.
//!
//! - `prefix` names the environment (`mk_live`, `mk_test`, `qapi`); lowercase letters, digits
//!   and `_`, starting with a letter, at most [`MAX_PREFIX_LEN`] bytes. It may contain `_`: the
//!   id starts after the *last* `_` before the `.`.
//! - `id` is public: [`ID_LEN`] lowercase hex digits (64 random bits).
//! - `secret` is [`SECRET_LEN`] base62 characters (≈ 238 random bits from the OS).
//! - `checksum` is CRC32 over everything before it, as [`CHECKSUM_LEN`] base62 digits
//!   (GitHub's scheme): it rejects any single-character change, so typos and garbage are
//!   refused with no store, cache or hash work, and secret scanners can recognise our keys.
//!
//! The whole token is ASCII and at most [`MAX_TOKEN_LEN`] bytes.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Longest accepted token, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;
/// Longest accepted prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 32;
/// Length of the public id (hex digits).
pub const ID_LEN: usize = 16;
/// Length of the secret (base62 characters).
pub const SECRET_LEN: usize = 40;
/// Length of the checksum (base62 digits of a CRC32).
pub const CHECKSUM_LEN: usize = 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed key. Only for logs and tests: every variant is answered
/// to the client as `malformed_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("key is longer than 128 bytes")]
    TooLong,
    /// A byte outside printable ASCII.
    #[error("key contains a character that is not printable ASCII")]
    NotAscii,
    /// Not `<prefix>_<id>.<secret><checksum>`.
    #[error("key does not have the shape <prefix>_<id>.<secret><checksum>")]
    Shape,
    /// The prefix has characters or a length that no prefix can have.
    #[error("key prefix is not valid")]
    Prefix,
    /// The id is not [`ID_LEN`] lowercase hex digits.
    #[error("key id is not valid")]
    Id,
    /// The secret is not [`SECRET_LEN`] base62 characters.
    #[error("key secret is not valid")]
    Secret,
    /// The checksum does not match: a typo, a truncated copy, or a made-up key.
    #[error("key checksum does not match")]
    Checksum,
}

/// A token split into its parts, borrowing from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    token: &'a str,
    prefix: &'a str,
    id: &'a str,
}

impl<'a> ParsedToken<'a> {
    /// The whole token (what gets hashed).
    pub fn token(&self) -> &'a str {
        self.token
    }
    /// The prefix (environment).
    pub fn prefix(&self) -> &'a str {
        self.prefix
    }
    /// The public id.
    pub fn id(&self) -> &'a str {
        self.id
    }
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("prefix", &self.prefix)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Whether `prefix` can be used as a key prefix.
pub fn is_valid_prefix(prefix: &str) -> bool {
    let b = prefix.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_PREFIX_LEN
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'_'
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// Whether `id` has the shape of a key id: [`ID_LEN`] lowercase hex digits.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && every_byte(id.as_bytes(), |c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses and checks a token. Rejects over-long, non-ASCII and wrongly shaped input before
/// computing the checksum; never allocates.
pub fn parse(token: &str) -> Result<ParsedToken<'_>, TokenError> {
    match parse_well_formed(token) {
        Some(parsed) => Ok(parsed),
        // Refused, or not of the one layout a good key has: the step-by-step parse tells why.
        None => parse_step_by_step(token),
    }
}

/// The bytes after the prefix: `_`, the id, `.`, the secret and the checksum.
const AFTER_PREFIX: usize = 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// The parse of a good key, by position: after the prefix every field has a fixed length, so
/// the `_` and the `.` are at known offsets from the end and each field's characters are
/// checked over a fixed-size array (branch-free, vectorized), with no search. It accepts
/// exactly the tokens [`parse_step_by_step`] accepts, with the same answer (a valid prefix has
/// no `.`, and neither the id nor the secret has a `_` or a `.`, so the step-by-step search
/// finds them where this parse looks; tests compare both), and is `None` for the rest.
#[inline]
fn parse_well_formed(token: &str) -> Option<ParsedToken<'_>> {
    let b = token.as_bytes();
    if b.len() <= AFTER_PREFIX || b.len() > MAX_TOKEN_LEN {
        return None;
    }
    let split = b.len() - AFTER_PREFIX;
    let rest: &[u8; AFTER_PREFIX] = b.get(split..)?.try_into().ok()?;
    let (underscore, rest) = rest.split_first()?;
    let (id, rest) = rest.split_at(ID_LEN);
    let (dot, tail) = rest.split_first()?;
    let id: &[u8; ID_LEN] = id.try_into().ok()?;
    let tail: &[u8; SECRET_LEN + CHECKSUM_LEN] = tail.try_into().ok()?;
    let well_formed = (*underscore == b'_')
        & (*dot == b'.')
        & every_byte(id, |&c| {
            (c.wrapping_sub(b'0') < 10) | (c.wrapping_sub(b'a') < 6)
        })
        & every_byte(tail, |&c| {
            (c.wrapping_sub(b'0') < 10) | ((c | 0x20).wrapping_sub(b'a') < 26)
        });
    let prefix = token.get(..split)?;
    if !well_formed || !is_valid_prefix(prefix) {
        return None;
    }
    let (body, checksum) = b.split_at(b.len() - CHECKSUM_LEN);
    if decode_checksum(checksum) != Some(crc32fast::hash(body)) {
        return None;
    }
    Some(ParsedToken {
        token,
        prefix,
        id: token.get(split + 1..split + 1 + ID_LEN)?,
    })
}

/// [`parse`], one rule after another, naming the first one a token breaks.
fn parse_step_by_step(token: &str) -> Result<ParsedToken<'_>, TokenError> {
    let b = token.as_bytes();
    if b.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    if !every_byte(b, |c| c.is_ascii_graphic()) {
        return Err(TokenError::NotAscii);
    }
    let dot = b.iter().position(|&c| c == b'.').ok_or(TokenError::Shape)?;
    let (head, tail) = (&token[..dot], &token[dot + 1..]);
    // A short scan from the end (the id is 16 bytes) beats a call to memrchr.
    let underscore = head
        .bytes()
        .rposition(|c| c == b'_')
        .ok_or(TokenError::Shape)?;
    let (prefix, id) = (&head[..underscore], &head[underscore + 1..]);
    if !is_valid_prefix(prefix) {
        return Err(TokenError::Prefix);
    }
    if !is_valid_id(id) {
        return Err(TokenError::Id);
    }
    if tail.len() != SECRET_LEN + CHECKSUM_LEN {
        return Err(TokenError::Shape);
    }
    if !every_byte(tail.as_bytes(), |c| c.is_ascii_alphanumeric()) {
        return Err(TokenError::Secret);
    }
    let body_len = token.len() - CHECKSUM_LEN;
    let expected = crc32fast::hash(&b[..body_len]);
    if decode_checksum(&b[body_len..]) != Some(expected) {
        return Err(TokenError::Checksum);
    }
    Ok(ParsedToken { token, prefix, id })
}

/// Whether `test` holds for every byte, without stopping at the first failure: the check has
/// no branch per byte and the compiler vectorizes it (a token is ≤ 128 bytes, and nearly every
/// token checked is well-formed).
#[inline]
pub(crate) fn every_byte(bytes: &[u8], test: impl Fn(&u8) -> bool) -> bool {
    bytes.iter().fold(true, |ok, c| ok & test(c))
}

fn encode_checksum(mut v: u32, out: &mut [u8; CHECKSUM_LEN]) {
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
}

/// Each byte's base62 digit, or [`NOT_BASE62`].
const BASE62_DIGIT: [u8; 256] = {
    let mut table = [NOT_BASE62; 256];
    let mut i = 0;
    while i < BASE62.len() {
        table[BASE62[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const NOT_BASE62: u8 = 0xff;

fn decode_checksum(digits: &[u8]) -> Option<u32> {
    let mut v: u64 = 0;
    let mut bad = false;
    for &c in digits {
        let d = BASE62_DIGIT[usize::from(c)];
        bad |= d == NOT_BASE62;
        v = v.wrapping_mul(62).wrapping_add(u64::from(d));
    }
    // Six digits stay far below u64::MAX, so no true value wraps around.
    if bad || digits.len() != CHECKSUM_LEN {
        return None;
    }
    u32::try_from(v).ok()
}

/// Appends the checksum to a `<prefix>_<id>.<secret>` body, giving a token that passes
/// [`parse`]'s checksum. For tests and tooling (e.g. forging a wrong secret for a known id to
/// check that it is refused); keys for use come from [`generate`].
pub fn with_checksum(body: &str) -> String {
    let mut sum = [0u8; CHECKSUM_LEN];
    encode_checksum(crc32fast::hash(body.as_bytes()), &mut sum);
    let mut s = String::with_capacity(body.len() + CHECKSUM_LEN);
    s.push_str(body);
    s.extend(sum.iter().map(|&c| char::from(c)));
    s
}

/// A plaintext key, as handed out once at creation.
///
/// The memory is wiped on drop; `Debug` and `Display` print `<redacted>`. Read it with
/// [`PlaintextKey::expose_secret`] to show it to the user, once.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PlaintextKey(String);

impl PlaintextKey {
    /// The full token. Show it once; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The public id inside the token.
    pub fn id(&self) -> &str {
        parse(&self.0).map(|p| p.id()).unwrap_or_default()
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextKey(<redacted>)")
    }
}

impl fmt::Display for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Randomness could not be read from the operating system.
#[derive(Debug, thiserror::Error)]
#[error("could not read randomness from the operating system: {0}")]
pub struct RandomnessError(String);

/// Fills `buf` from the OS.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), RandomnessError> {
    getrandom::fill(buf).map_err(|e| RandomnessError(e.to_string()))
}

/// Generates a new key with `prefix` from OS randomness.
///
/// # Errors
/// [`GenerateError::Prefix`] when the prefix is not valid, [`GenerateError::Randomness`] when
/// the OS has no randomness to give.
pub fn generate(prefix: &str) -> Result<PlaintextKey, GenerateError> {
    if !is_valid_prefix(prefix) {
        return Err(GenerateError::Prefix(prefix.chars().take(40).collect()));
    }
    let mut id_bytes = [0u8; ID_LEN / 2];
    os_random(&mut id_bytes)?;
    let mut s = String::with_capacity(prefix.len() + 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN);
    s.push_str(prefix);
    s.push('_');
    for b in id_bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s.push('.');
    // Rejection sampling keeps every base62 character uniform: bytes >= 248 are redrawn.
    let mut pool = zeroize::Zeroizing::new([0u8; 64]);
    let mut taken = 0;
    while taken < SECRET_LEN {
        os_random(&mut pool[..])?;
        for &b in pool.iter() {
            if b < 248 && taken < SECRET_LEN {
                s.push(char::from(BASE62[usize::from(b % 62)]));
                taken += 1;
            }
        }
    }
    let key = PlaintextKey(with_checksum(&s));
    s.zeroize();
    Ok(key)
}

/// A key could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The prefix is not lowercase letters, digits and `_` (starting with a letter, ≤ 32 bytes).
    #[error("invalid key prefix {0:?}: use lowercase letters, digits and `_`, starting with a letter, at most 32 characters (e.g. `mk_live`)")]
    Prefix(String),
    /// No OS randomness.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fresh(prefix: &str) -> String {
        generate(prefix).unwrap().expose_secret().to_owned()
    }

    #[test]
    fn generated_keys_parse_back() {
        for prefix in ["mk_live", "mk_test", "qmq", "qapi", "a_b_c_d"] {
            let t = fresh(prefix);
            let p = parse(&t).unwrap();
            assert_eq!(p.prefix(), prefix);
            assert_eq!(p.id().len(), ID_LEN);
            assert!(t.len() <= MAX_TOKEN_LEN);
        }
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(fresh("mk_live"), fresh("mk_live"));
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let k = generate("mk_live").unwrap();
        assert!(!format!("{k:?}{k}").contains(k.expose_secret()));
        let t = k.expose_secret().to_owned();
        let p = parse(&t).unwrap();
        assert!(!format!("{p:?}").contains(&t[t.find('.').unwrap()..]));
    }

    #[test]
    fn shape_errors_are_specific() {
        assert_eq!(parse(&"a".repeat(129)), Err(TokenError::TooLong));
        assert_eq!(parse("mk_live_é"), Err(TokenError::NotAscii));
        assert_eq!(parse("nodot"), Err(TokenError::Shape));
        assert_eq!(parse("Mk_0123456789abcdef.x"), Err(TokenError::Prefix));
        assert_eq!(parse("mk_XYZ.x"), Err(TokenError::Id));
    }

    #[test]
    fn wrong_prefix_of_right_shape_still_fails_checksum_when_swapped() {
        let t = fresh("mk_live");
        let swapped = t.replacen("mk_live", "mk_test", 1);
        assert_eq!(parse(&swapped), Err(TokenError::Checksum));
    }

    /// Both parses, which accept the same tokens with the same answer.
    fn agree(token: &str) -> Result<(), TestCaseError> {
        let step = parse_step_by_step(token);
        prop_assert_eq!(parse_well_formed(token), step.ok(), "{:?}", token);
        prop_assert_eq!(parse(token), step);
        Ok(())
    }

    #[test]
    fn generated_keys_take_the_parse_by_position() {
        for prefix in ["mk_live", "a", "q_a_p_i", &"p".repeat(MAX_PREFIX_LEN)] {
            let t = fresh(prefix);
            assert_eq!(parse_well_formed(&t), parse_step_by_step(&t).ok(), "{t}");
            assert!(parse_well_formed(&t).is_some(), "{t}");
        }
    }

    proptest! {
        #[test]
        fn the_parse_by_position_agrees_with_the_step_by_step_one_on_any_edit(
            prefix in "[a-z]([a-z0-9_]{0,30}[a-z0-9])?",
            pos in 0usize..200,
            replacement in proptest::char::range('\0', '\u{7f}'),
            delete in any::<bool>(),
        ) {
            let t = fresh(&prefix);
            agree(&t)?;
            let mut chars: Vec<char> = t.chars().collect();
            let pos = pos % chars.len();
            if delete { chars.remove(pos); } else { chars[pos] = replacement; }
            let edited: String = chars.into_iter().collect();
            agree(&edited)?;
            // The same edit with a checksum that matches it (only the rules differ then).
            if let Some(body) = edited.get(..edited.len().saturating_sub(CHECKSUM_LEN)) {
                agree(&with_checksum(body))?;
            }
        }

        #[test]
        fn the_parse_by_position_agrees_with_the_step_by_step_one_on_garbage(s in "\\PC{0,140}") {
            agree(&s)?;
        }

        #[test]
        fn round_trip(prefix in "[a-z][a-z0-9_]{0,20}[a-z0-9]") {
            let t = fresh(&prefix);
            let p = parse(&t).unwrap();
            prop_assert_eq!(p.prefix(), prefix.as_str());
            prop_assert_eq!(p.token(), t.as_str());
        }

        #[test]
        fn every_single_character_change_is_rejected(
            pos in 0usize..200, replacement in proptest::char::range('\0', '\u{7f}')
        ) {
            let t = fresh("mk_live");
            let pos = pos % t.len();
            let original = t.as_bytes()[pos] as char;
            prop_assume!(original != replacement);
            let mut changed = t.clone().into_bytes();
            changed[pos] = replacement as u8;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(parse(&changed).is_err(), "accepted {changed}");
        }

        #[test]
        fn deleting_or_adding_a_character_is_rejected(pos in 0usize..200, c in "[a-zA-Z0-9._]") {
            let t = fresh("mk_live");
            let pos = pos % t.len();
            let mut shorter = t.clone();
            shorter.remove(pos);
            prop_assert!(parse(&shorter).is_err());
            let mut longer = t.clone();
            longer.insert_str(pos, &c);
            prop_assert!(parse(&longer).is_err());
        }

        #[test]
        fn garbage_never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Lossy, so every case parses something (random bytes are rarely valid UTF-8).
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
