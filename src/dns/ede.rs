//! Extended DNS Errors (RFC 8914): every INFO-CODE fraudwall sends, and the option writer.
//! hickory 0.26 has no EDE type, so the option is written raw.

/// 3 Stale Answer: served from cache past its TTL because the upstream failed (RFC 8767).
pub const STALE_ANSWER: u16 = 3;
/// 6 DNSSEC Bogus.
pub const DNSSEC_BOGUS: u16 = 6;
/// 7 Signature Expired.
pub const SIGNATURE_EXPIRED: u16 = 7;
/// 8 Signature Not Yet Valid.
pub const SIGNATURE_NOT_YET_VALID: u16 = 8;
/// 9 DNSKEY Missing: a DS at the parent, no DNSKEY that matches it.
pub const DNSKEY_MISSING: u16 = 9;
/// 15 Blocked: by the operator's policy (the default for lists).
pub const BLOCKED: u16 = 15;
/// 16 Censored: by an external requirement.
pub const CENSORED: u16 = 16;
/// 17 Filtered: at the client's request.
pub const FILTERED: u16 = 17;

/// The codes a list may give its blocked answers.
pub const LIST_CODES: [u16; 3] = [BLOCKED, CENSORED, FILTERED];

/// Option code of an EDE in an OPT record.
const OPTION_CODE: u16 = 15;
/// Longest EXTRA-TEXT we send: enough for any list name, and far from the 64 KiB limit.
const MAX_TEXT: usize = 512;

/// Appends an EDE option with `info_code` and `extra_text` to the OPT options in `opts`.
pub fn put(opts: &mut Vec<u8>, info_code: u16, extra_text: &str) {
    let mut len = extra_text.len().min(MAX_TEXT);
    // Never cut a UTF-8 character in half (list names may be Chinese).
    while !extra_text.is_char_boundary(len) {
        len -= 1;
    }
    let text = &extra_text.as_bytes()[..len];
    opts.extend_from_slice(&OPTION_CODE.to_be_bytes());
    opts.extend_from_slice(&((2 + text.len()) as u16).to_be_bytes());
    opts.extend_from_slice(&info_code.to_be_bytes());
    opts.extend_from_slice(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_layout() {
        let mut o = Vec::new();
        put(&mut o, BLOCKED, "x");
        assert_eq!(o, [0, 15, 0, 3, 0, 15, b'x']);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "诈".repeat(300); // 900 bytes, 3 per character
        let mut o = Vec::new();
        put(&mut o, BLOCKED, &text);
        let body = &o[6..];
        assert!(body.len() <= MAX_TEXT);
        assert!(std::str::from_utf8(body).is_ok());
    }
}
