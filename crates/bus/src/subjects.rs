//! Subjects on the bus: building them from validated tokens, parsing the site out of an events
//! subject (for the `site_mismatch` check), and the stable patient → partition hash.
//!
//! Pure: no IO. The layout (docs/bus.md):
//! - `registry.events.<site_id>.<event_type>` — feeders publish; `<event_type>` keeps its dots,
//!   so `patient.enrolled` gives `registry.events.fuscc.patient.enrolled`.
//! - `registry.accepted.<partition>` — ingest's outbox; partition = FNV-1a 64 of patient_id mod N.
//! - `registry.alerts.<kind>` — projector's alerts.
//! - `registry.rejected.<site_id>` — rejections with their reason.

use std::fmt;
use std::num::NonZeroU32;

/// Every subject the registry uses starts with this token.
pub const ROOT: &str = "registry";
/// Wildcard of the EVENTS stream.
pub const EVENTS_ALL: &str = "registry.events.>";
/// Wildcard of the ACCEPTED stream.
pub const ACCEPTED_ALL: &str = "registry.accepted.>";
/// Wildcard of the ALERTS stream.
pub const ALERTS_ALL: &str = "registry.alerts.>";
/// Wildcard of the REJECTED stream.
pub const REJECTED_ALL: &str = "registry.rejected.>";
/// Label queries (request/reply) to the projector that holds every partition. A projector of
/// one partition `p` answers on `registry.query.labels.<p>` ([`labels_query_subject`]).
/// Inside `registry.query.>`, which deploy/nats-accounts.conf lets the api publish and the
/// projector subscribe and answer.
pub const LABELS_QUERY: &str = "registry.query.labels";

/// The subject a projector answers label queries on: [`LABELS_QUERY`] when it holds every
/// partition, `registry.query.labels.<p>` when it holds partition `p` only.
pub fn labels_query_subject(partition: Option<u32>) -> String {
    match partition {
        None => LABELS_QUERY.to_owned(),
        Some(p) => format!("{LABELS_QUERY}.{p}"),
    }
}

const EVENTS_PREFIX: &str = "registry.events.";
const ACCEPTED_PREFIX: &str = "registry.accepted.";
const ALERTS_PREFIX: &str = "registry.alerts.";
const REJECTED_PREFIX: &str = "registry.rejected.";

/// Why a subject or subject token is not acceptable. Never retry: the input is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// A site id must match `^[a-z0-9][a-z0-9_-]{0,31}$` (events.md).
    #[error("invalid site id {0:?}: must match ^[a-z0-9][a-z0-9_-]{{0,31}}$")]
    InvalidSite(String),
    /// An event type must be dot-separated tokens of `[a-z0-9_]`, e.g. `patient.enrolled`.
    #[error("invalid event type {0:?}: expected dot-separated tokens of [a-z0-9_]")]
    InvalidEventType(String),
    /// An alert kind must be dot-separated tokens of `[a-z0-9_-]`.
    #[error("invalid alert kind {0:?}: expected dot-separated tokens of [a-z0-9_-]")]
    InvalidAlertKind(String),
    /// The partition is not below the configured partition count.
    #[error("partition {partition} out of range for {partitions} partitions")]
    PartitionOutOfRange {
        /// The offending partition.
        partition: u32,
        /// The configured count.
        partitions: u32,
    },
    /// The subject is not of the expected shape (wrong prefix, missing or empty tokens).
    #[error("malformed subject {subject:?}: expected {expected}")]
    Malformed {
        /// The subject as received.
        subject: String,
        /// The shape that was expected.
        expected: &'static str,
    },
}

/// An events subject taken apart: the site token and the event type (dots kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSubject<'a> {
    /// The `<site_id>` token; compare with the envelope's `site_id` (`site_mismatch`).
    pub site_id: &'a str,
    /// The `<event_type>` tail, e.g. `imaging.assessed`. Not checked against the list of known
    /// types here: that is validation's job (`unknown_event_type`).
    pub event_type: &'a str,
}

impl fmt::Display for EventsSubject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{EVENTS_PREFIX}{}.{}", self.site_id, self.event_type)
    }
}

/// Whether `site` is a valid site id, `^[a-z0-9][a-z0-9_-]{0,31}$`.
pub fn is_valid_site(site: &str) -> bool {
    let bytes = site.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.len() <= 31
                && rest.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-'
                })
        }
        None => false,
    }
}

fn is_valid_dotted(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.split('.').all(|token| {
            !token.is_empty()
                && token.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b)
                })
        })
}

/// Whether `event_type` is usable as the subject tail: dot-separated `[a-z0-9_]` tokens.
pub fn is_valid_event_type(event_type: &str) -> bool {
    is_valid_dotted(event_type, &[])
}

/// `registry.events.<site_id>.<event_type>`.
pub fn events_subject(site_id: &str, event_type: &str) -> Result<String, SubjectError> {
    if !is_valid_site(site_id) {
        return Err(SubjectError::InvalidSite(site_id.to_owned()));
    }
    if !is_valid_event_type(event_type) {
        return Err(SubjectError::InvalidEventType(event_type.to_owned()));
    }
    Ok(format!("{EVENTS_PREFIX}{site_id}.{event_type}"))
}

/// `registry.events.<site_id>.>`: everything one site may publish (its permission, a filter).
pub fn events_site_filter(site_id: &str) -> Result<String, SubjectError> {
    if !is_valid_site(site_id) {
        return Err(SubjectError::InvalidSite(site_id.to_owned()));
    }
    Ok(format!("{EVENTS_PREFIX}{site_id}.>"))
}

/// Parses `registry.events.<site_id>.<event_type>`. The site token must be a valid site id and
/// the event type must have at least one token; wildcards and empty tokens are malformed.
pub fn parse_events_subject(subject: &str) -> Result<EventsSubject<'_>, SubjectError> {
    const EXPECTED: &str = "registry.events.<site_id>.<event_type>";
    let malformed = || SubjectError::Malformed {
        subject: subject.to_owned(),
        expected: EXPECTED,
    };
    let rest = subject.strip_prefix(EVENTS_PREFIX).ok_or_else(malformed)?;
    let (site_id, event_type) = rest.split_once('.').ok_or_else(malformed)?;
    if !is_valid_site(site_id) {
        return Err(SubjectError::InvalidSite(site_id.to_owned()));
    }
    if !is_valid_event_type(event_type) {
        return Err(SubjectError::InvalidEventType(event_type.to_owned()));
    }
    Ok(EventsSubject {
        site_id,
        event_type,
    })
}

/// The site token of an events subject (shorthand for [`parse_events_subject`]).
pub fn site_of_events_subject(subject: &str) -> Result<&str, SubjectError> {
    parse_events_subject(subject).map(|parsed| parsed.site_id)
}

/// `registry.accepted.<partition>`; the partition must be below `partitions`.
pub fn accepted_subject(partition: u32, partitions: NonZeroU32) -> Result<String, SubjectError> {
    if partition >= partitions.get() {
        return Err(SubjectError::PartitionOutOfRange {
            partition,
            partitions: partitions.get(),
        });
    }
    Ok(format!("{ACCEPTED_PREFIX}{partition}"))
}

/// `registry.accepted.<partition>` for this patient: [`partition_of`] then [`accepted_subject`].
pub fn accepted_subject_for_patient(patient_id: &str, partitions: NonZeroU32) -> String {
    // partition_of is always < partitions, so this cannot fail.
    format!("{ACCEPTED_PREFIX}{}", partition_of(patient_id, partitions))
}

/// Parses `registry.accepted.<partition>` back to the partition number.
pub fn parse_accepted_subject(subject: &str) -> Result<u32, SubjectError> {
    subject
        .strip_prefix(ACCEPTED_PREFIX)
        .filter(|tail| !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|tail| tail.parse().ok())
        .ok_or_else(|| SubjectError::Malformed {
            subject: subject.to_owned(),
            expected: "registry.accepted.<partition>",
        })
}

/// `registry.alerts.<kind>`; the kind is dot-separated tokens of `[a-z0-9_-]`.
pub fn alerts_subject(kind: &str) -> Result<String, SubjectError> {
    if !is_valid_dotted(kind, b"-") {
        return Err(SubjectError::InvalidAlertKind(kind.to_owned()));
    }
    Ok(format!("{ALERTS_PREFIX}{kind}"))
}

/// Parses `registry.alerts.<kind>` back to the kind.
pub fn parse_alerts_subject(subject: &str) -> Result<&str, SubjectError> {
    subject
        .strip_prefix(ALERTS_PREFIX)
        .filter(|kind| is_valid_dotted(kind, b"-"))
        .ok_or_else(|| SubjectError::Malformed {
            subject: subject.to_owned(),
            expected: "registry.alerts.<kind>",
        })
}

/// `registry.rejected.<site_id>`.
pub fn rejected_subject(site_id: &str) -> Result<String, SubjectError> {
    if !is_valid_site(site_id) {
        return Err(SubjectError::InvalidSite(site_id.to_owned()));
    }
    Ok(format!("{REJECTED_PREFIX}{site_id}"))
}

/// Parses `registry.rejected.<site_id>` back to the site id.
pub fn parse_rejected_subject(subject: &str) -> Result<&str, SubjectError> {
    subject
        .strip_prefix(REJECTED_PREFIX)
        .filter(|site| is_valid_site(site))
        .ok_or_else(|| SubjectError::Malformed {
            subject: subject.to_owned(),
            expected: "registry.rejected.<site_id>",
        })
}

/// FNV-1a 64-bit hash (Fowler–Noll–Vo, offset basis 0xcbf29ce484222325, prime 0x100000001b3)
/// of the bytes. Chosen because it is specified, tiny and stable across Rust versions and
/// platforms — unlike `std`'s `DefaultHasher`, whose output may change between releases.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The partition of a patient: FNV-1a 64 over the UTF-8 bytes of `patient_id`, mod `partitions`.
/// Stable: the same patient always lands on the same partition for a given N. Changing N moves
/// patients, so projectors must rebuild after a change (docs/bus.md).
pub fn partition_of(patient_id: &str, partitions: NonZeroU32) -> u32 {
    let partition = fnv1a_64(patient_id.as_bytes()) % u64::from(partitions.get());
    // Lossless: the remainder is below a u32.
    u32::try_from(partition).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
    }

    #[test]
    fn subjects_round_trip() -> Result<(), SubjectError> {
        for (site, event_type) in [
            ("fuscc", "patient.enrolled"),
            ("pumch", "imaging.assessed"),
            ("demo", "event.retracted"),
            ("0site_x-1", "death.recorded"),
        ] {
            let subject = events_subject(site, event_type)?;
            assert_eq!(subject, format!("registry.events.{site}.{event_type}"));
            let parsed = parse_events_subject(&subject)?;
            assert_eq!((parsed.site_id, parsed.event_type), (site, event_type));
            assert_eq!(parsed.to_string(), subject);
            assert_eq!(site_of_events_subject(&subject)?, site);
            assert_eq!(parse_rejected_subject(&rejected_subject(site)?)?, site);
        }
        assert_eq!(parse_accepted_subject(&accepted_subject(3, n(4))?)?, 3);
        assert_eq!(
            parse_alerts_subject(&alerts_subject("progression.cns")?)?,
            "progression.cns"
        );
        assert_eq!(events_site_filter("fuscc")?, "registry.events.fuscc.>");
        Ok(())
    }

    #[test]
    fn site_parse_rejects_malformed_subjects() {
        let malformed = |subject: &str| {
            matches!(
                parse_events_subject(subject),
                Err(SubjectError::Malformed { .. })
            )
        };
        let bad_site = |subject: &str| {
            matches!(
                parse_events_subject(subject),
                Err(SubjectError::InvalidSite(_))
            )
        };
        let bad_type = |subject: &str| {
            matches!(
                parse_events_subject(subject),
                Err(SubjectError::InvalidEventType(_))
            )
        };
        assert!(malformed(""));
        assert!(malformed("registry.events"));
        assert!(malformed("registry.events."));
        assert!(malformed("registry.events.fuscc"), "no event type");
        assert!(malformed("registry.accepted.0"));
        assert!(malformed("other.events.fuscc.patient.enrolled"));
        assert!(malformed("Registry.events.fuscc.patient.enrolled"));
        assert!(
            bad_site("registry.events..patient.enrolled"),
            "empty site token"
        );
        assert!(
            bad_site("registry.events.FUSCC.patient.enrolled"),
            "upper case"
        );
        assert!(bad_site("registry.events.*.patient.enrolled"), "wildcard");
        assert!(bad_site("registry.events.>.patient"), "wildcard");
        assert!(
            bad_site("registry.events._x.patient.enrolled"),
            "must start alphanumeric"
        );
        assert!(bad_site(&format!(
            "registry.events.{}.patient.enrolled",
            "a".repeat(33)
        )));
        assert!(bad_type("registry.events.fuscc."), "empty event type");
        assert!(
            bad_type("registry.events.fuscc.patient..enrolled"),
            "empty token"
        );
        assert!(bad_type("registry.events.fuscc.patient.>"), "wildcard");
        assert!(bad_type("registry.events.fuscc.patient enrolled"), "space");
        assert!(site_of_events_subject("registry.events.fuscc").is_err());
    }

    #[test]
    fn builders_refuse_invalid_tokens() {
        assert!(matches!(
            events_subject("pumch.x", "patient.enrolled"),
            Err(SubjectError::InvalidSite(_))
        ));
        assert!(matches!(
            events_subject("pumch", "patient.*"),
            Err(SubjectError::InvalidEventType(_))
        ));
        assert!(matches!(
            events_subject("pumch", ""),
            Err(SubjectError::InvalidEventType(_))
        ));
        assert!(matches!(
            rejected_subject(""),
            Err(SubjectError::InvalidSite(_))
        ));
        assert!(matches!(
            alerts_subject("a..b"),
            Err(SubjectError::InvalidAlertKind(_))
        ));
        assert!(matches!(
            accepted_subject(4, n(4)),
            Err(SubjectError::PartitionOutOfRange {
                partition: 4,
                partitions: 4
            })
        ));
        assert!(parse_accepted_subject("registry.accepted.x").is_err());
        assert!(parse_accepted_subject("registry.accepted.").is_err());
        assert!(parse_alerts_subject("registry.alerts.").is_err());
        assert!(parse_rejected_subject("registry.rejected.A").is_err());
    }

    #[test]
    fn fnv1a_matches_published_test_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv, 64-bit FNV-1a).
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        assert_eq!(partition_of("FUSCC-0042", n(1)), 0);
        for id in ["FUSCC-0042", "PUMCH-7", "demo.1", "x"] {
            let p = partition_of(id, n(8));
            assert!(p < 8);
            assert_eq!(p, partition_of(id, n(8)), "same patient, same partition");
            assert_eq!(u64::from(p), fnv1a_64(id.as_bytes()) % 8);
        }
        assert_eq!(
            accepted_subject_for_patient("FUSCC-0042", n(8)),
            format!("registry.accepted.{}", partition_of("FUSCC-0042", n(8)))
        );
    }

    #[test]
    fn partitions_spread_patients() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[partition_of(&format!("P-{i:05}"), n(4)) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }
}
