//! The hash of a reversed-label key, shared by the shard choice and the matcher's Bloom filter.
//!
//! A key is hashed label by label (`com`, then `example`, then `www`), so a query gets the hash
//! of each of its suffixes (`com`, `com.example`, `com.example.www`) in one pass from the TLD
//! down. Each label is read a word at a time and lowercased in the word (SWAR), never byte by
//! byte: name handling is most of what an unlisted name costs, and a per-byte multiply chain
//! was its longest part. Within a label the reads are the overlapping, in-bounds loads of
//! rapidhash's short-input path, so no byte past the label is read and nothing is copied.
//!
//! The label hashes do not depend on each other, only their combination does, so the CPU
//! computes the next label's hash while the previous suffix's Bloom probe is in flight.
//!
//! Changing anything here changes which shard a key lands in: that is a new file format version
//! (see `format::VERSION`).

const S0: u64 = 0x2d35_8dcc_aa6c_78a5;
const S1: u64 = 0x8bb8_4b93_962e_acc9;
const S2: u64 = 0x4b33_a62e_d433_d4a3;
const S3: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash of a reversed-label key, fed one label at a time.
#[derive(Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl KeyHasher {
    pub(crate) fn new() -> KeyHasher {
        KeyHasher(S0)
    }

    /// Adds the next label (any case: it is lowercased as read).
    #[inline]
    pub(crate) fn label(&mut self, label: &[u8]) {
        self.0 = fold(self.0 ^ label_hash(label), S3);
    }

    /// Adds every label of a reversed-label key (`com.example.www`).
    pub(crate) fn key(&mut self, key: &[u8]) {
        for label in key.split(|&b| b == b'.') {
            self.label(label);
        }
    }

    /// Two hashes of the labels so far: the first picks a Bloom block (by its high bits), the
    /// second the bits in it (its low 36 bits) and the shard (its high bits).
    #[inline]
    pub(crate) fn finish(self) -> (u64, u64) {
        (self.0, self.0.wrapping_mul(S1))
    }
}

/// Multiplies to 128 bits and folds the halves: the mixing step of wyhash and rapidhash.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let r = a as u128 * b as u128;
    (r as u64) ^ ((r >> 64) as u64)
}

/// ASCII lowercase of the eight bytes of a word; other bytes unchanged (as `to_ascii_lowercase`).
#[inline]
fn lower(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = w & (0x7f * ONES);
    let at_least_a = low7 + (0x80 - b'A' as u64) * ONES;
    let above_z = low7 + (0x7f - b'Z' as u64) * ONES;
    let upper = (at_least_a ^ above_z) & !w & (0x80 * ONES);
    w | (upper >> 2)
}

#[inline]
fn r32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64
}

#[inline]
fn r64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One label's hash, case-insensitive. Every byte of the label is read (so any two labels that
/// differ, differ in the words mixed), and the length is mixed in, so padding cannot collide.
#[inline(always)]
fn label_hash(l: &[u8]) -> u64 {
    let len = l.len();
    let (a, b, seed) = if len <= 16 {
        if len >= 4 {
            // Two overlapping pairs of 4-byte reads cover all of 4..=16 bytes.
            let d = (len >> 3) << 2;
            (
                (r32(l, 0) << 32) | r32(l, d),
                (r32(l, len - 4) << 32) | r32(l, len - 4 - d),
                S2,
            )
        } else if len > 0 {
            let w = ((l[0] as u64) << 16) | ((l[len >> 1] as u64) << 8) | l[len - 1] as u64;
            (w, 0, S2)
        } else {
            (0, 0, S2)
        }
    } else {
        // 17..=63 bytes: 16-byte steps, then the last 16 bytes (overlapping the previous step).
        let mut seed = S2;
        let mut i = 0;
        while len - i > 16 {
            seed = fold(lower(r64(l, i)) ^ S1, lower(r64(l, i + 8)) ^ seed);
            i += 16;
        }
        (r64(l, len - 16), r64(l, len - 8), seed)
    };
    fold(lower(a) ^ S1, lower(b) ^ seed ^ len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(key: &str) -> (u64, u64) {
        let mut h = KeyHasher::new();
        h.key(key.as_bytes());
        h.finish()
    }

    #[test]
    fn lower_matches_the_standard_library_for_every_byte() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'A', b'z', 0x80 | b, b, b'Z', b'@', b'[']);
            let want = u64::from_le_bytes(
                [b, b'A', b'z', 0x80 | b, b, b'Z', b'@', b'['].map(|c| c.to_ascii_lowercase()),
            );
            assert_eq!(lower(w), want, "byte {b:#x}");
        }
    }

    #[test]
    fn case_does_not_matter_and_every_byte_does() {
        for len in 1..=63 {
            let label: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let upper = label.to_ascii_uppercase();
            assert_eq!(label_hash(&label), label_hash(&upper), "length {len}");
            for i in 0..len {
                let mut other = label.clone();
                other[i] = b'0';
                assert_ne!(
                    label_hash(&label),
                    label_hash(&other),
                    "length {len}, byte {i}"
                );
            }
            let mut longer = label.clone();
            longer.push(0);
            assert_ne!(label_hash(&label), label_hash(&longer), "length {len}");
        }
    }

    #[test]
    fn a_key_hashes_as_its_labels_fed_one_by_one() {
        let mut h = KeyHasher::new();
        for label in ["com", "Example", "WWW"] {
            h.label(label.as_bytes());
        }
        assert_eq!(h.finish(), of("com.example.www"));
        assert_ne!(of("com.example"), of("example.com"));
        assert_ne!(of("com.example"), of("com.exampl.e"));
        assert_ne!(of("com"), of("com."));
    }
}
