//! Divolte's request checksum: MurmurHash3 x86_32 over a canonical form of the query.
//!
//! The tag hashes the decoded parameters (all but `x`), sorted by key, as `key=v1,v2,;` and sends
//! the signed result in base 36 as `x`. A wrong or missing checksum marks the event corrupt; it
//! exists to catch URLs truncated or rewritten on the way, not tampering.

/// MurmurHash3, x86 32-bit variant.
pub(crate) fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &b) in tail.iter().enumerate() {
            k |= u32::from(b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The checksum of decoded parameters (`x` excluded by the caller), as the signed 32-bit value.
pub(crate) fn checksum<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> i32 {
    // Keys sort by UTF-16 code units in Java and JavaScript; for the ASCII keys Divolte uses, and
    // in general outside the astral planes, that is byte order of UTF-8 too... except for code
    // points above U+FFFF, so sort by UTF-16 explicitly.
    let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, value) in params {
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => grouped.push((key, vec![value])),
        }
    }
    grouped.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    let mut canonical = String::new();
    for (key, values) in grouped {
        canonical.push_str(key);
        canonical.push('=');
        for value in values {
            canonical.push_str(value);
            canonical.push(',');
        }
        canonical.push(';');
    }
    murmur3_x86_32(canonical.as_bytes(), 0) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::divolte::base36;

    #[test]
    fn murmur3_reference_values() {
        // Published MurmurHash3_x86_32 vectors.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
    }

    fn params(query: &str) -> Vec<(String, String)> {
        crate::divolte::query::decode_pairs(query)
    }

    fn check(query: &str) -> String {
        let p = params(query);
        base36::encode_i64(i64::from(checksum(p.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
    }

    /// Vectors of Divolte's `RequestChecksumTest`, from the protocol reference.
    #[test]
    fn divolte_vectors() {
        let base = "p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8\
                    &v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f\
                    &l=http%3A%2F%2Flocalhost%3A8290%2F&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView";
        assert_eq!(check(base), "si9804");
        let short = "p=0%3Ai1t84hgy%3Aparty&s=0%3Ai1t84hgy%3Asession&v=0%3ApageView&e=0%3AeventId&c=i1t8q2b6&n=f&f=f\
                     &l=http%3A%2F%2Flocalhost%3A8290%2F&i=1ak&j=sj&k=2&w=uq&h=qd";
        assert_eq!(check(&format!("{short}&t=%E1%BB%A5%C3%B1%E2%9A%95%C2%A9%C2%BA%E1%B8%8C%E2%84%A8")), "-ql2p2c");
        assert_eq!(check(&format!("{short}&t=sentinelEvent")), "-y99lem");
    }
}
