//! What a blocked name gets: the DNS answer ([`answer`]) and, later, the warning page.
pub mod answer;
