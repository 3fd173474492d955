//! [`Id`]: an idempotency key or entity id (application, payment, action, loan,
//! borrower, order) as the key of a book's maps.
//!
//! The fold looks ids up for every fact, so their keys are built for that: an id of up
//! to [`INLINE_MAX`] bytes (every id the system generates) is held inline, so a key costs
//! no allocation and comparing two keys reads no other memory. Ids order, compare and
//! hash exactly like the strings they hold, so a map keyed by `Id` can be searched with
//! a `&str` and iterates in the same order a map keyed by `String` would.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest id held inline.
pub const INLINE_MAX: usize = 22;

#[derive(Clone)]
pub struct Id(Repr);

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the id; the rest is zero.
    Inline { len: u8, bytes: [u8; INLINE_MAX] },
    /// Ids longer than `INLINE_MAX` bytes, and only those.
    Heap(Box<str>),
}

impl Id {
    pub fn new(id: &str) -> Id {
        if id.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            Id(Repr::Inline { len: u8::try_from(id.len()).expect("an inline id is short"), bytes })
        } else {
            Id(Repr::Heap(id.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).expect("invariant: an id holds the bytes of a str")
            }
            Repr::Heap(id) => id,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(id) => id.as_bytes(),
        }
    }
}

/// The inline bytes as three big-endian words: comparing the words, then the lengths,
/// orders two inline ids exactly as comparing their bytes does (the zero padding sorts
/// below any byte, and when the padded words are equal the shorter id is a prefix of
/// the longer).
#[inline(always)]
fn words(bytes: &[u8; INLINE_MAX]) -> (u64, u64, u64) {
    let word = |range: std::ops::Range<usize>| {
        let mut w = [0u8; 8];
        w[..range.len()].copy_from_slice(&bytes[range]);
        u64::from_be_bytes(w)
    };
    (word(0..8), word(8..16), word(16..INLINE_MAX))
}

impl Ord for Id {
    #[inline(always)]
    fn cmp(&self, other: &Id) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::Inline { len: a_len, bytes: a }, Repr::Inline { len: b_len, bytes: b }) => {
                words(a).cmp(&words(b)).then(a_len.cmp(b_len))
            }
            _ => self.as_bytes().cmp(other.as_bytes()),
        }
    }
}

impl PartialOrd for Id {
    #[inline]
    fn partial_cmp(&self, other: &Id) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Id {
    #[inline]
    fn eq(&self, other: &Id) -> bool {
        match (&self.0, &other.0) {
            (Repr::Inline { len: a_len, bytes: a }, Repr::Inline { len: b_len, bytes: b }) => a_len == b_len && a == b,
            // A representation per length: an inline id never equals a heap one.
            (Repr::Heap(a), Repr::Heap(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Id {}

impl Hash for Id {
    /// Hashes like the `str`, as `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for Id {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Id {
    fn from(id: &str) -> Id {
        Id::new(id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        h.finish()
    }

    /// Ids order, compare and hash exactly like their strings (what `Borrow<str>`
    /// promises, and what keeps a book's iteration order that of the strings).
    #[test]
    fn ids_behave_like_their_strings() {
        let mut ids: Vec<String> = [
            "", "A", "AB", "A\0", "A\0B", "A\0\0", "APP0000001", "APP0000010", "APP000001", "M00001", "M1", "Z",
            "\u{7f}", "é", "ée", "0123456789012345678901", "01234567890123456789012", "0123456789012345678901\0",
            "012345678901234567890", "0123456789012345678901234567890123456789",
            "01234567890123456789012345678901234567890", "ORD00000001", "PAY00000001", "GHOST12",
            "550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-44665544000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut seed = 7u64;
        for _ in 0..400 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let len = usize::try_from(seed >> 59).expect("small") + usize::try_from((seed >> 20) % 2).expect("small") * 8;
            let text: String = (0..len)
                .map(|i| {
                    let c = u32::try_from((seed >> (i % 48)) % 4).expect("small");
                    ['\0', 'A', 'B', 'é'][usize::try_from(c).expect("small")]
                })
                .collect();
            ids.push(text);
        }
        for a in &ids {
            let id_a = Id::new(a);
            assert_eq!(id_a.as_str(), a);
            assert_eq!(hash_of(&id_a), hash_of(a.as_str()), "{a:?}");
            for b in &ids {
                let id_b = Id::new(b);
                assert_eq!(id_a.cmp(&id_b), a.as_str().cmp(b.as_str()), "{a:?} vs {b:?}");
                assert_eq!(id_a == id_b, a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
