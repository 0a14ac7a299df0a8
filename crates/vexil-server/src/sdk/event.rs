//! The events a hub sends, rendered once for every subscriber: `EventId` (what
//! `Last-Event-ID` names), `Published` (an env as it is now), `Frame` (one event,
//! for each kind of stream), and the server-sent-event framing.

use std::fmt;

use axum::body::Bytes;

use crate::ofrep::Evaluations;

/// An event's id: the change it is current to, and for a snapshot, which snapshot
/// (0 for a change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventId {
    pub(crate) change: i64,
    pub(crate) generation: u64,
}

impl EventId {
    /// `42` or `42.1`; anything else is not an id this server sent.
    pub(crate) fn parse(text: &str) -> Option<EventId> {
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let (change, generation) = match text.split_once('.') {
            Some((change, generation)) if digits(change) && digits(generation) => {
                (change, generation)
            }
            None if digits(text) => (text, "0"),
            _ => return None,
        };
        Some(EventId {
            change: change.parse().ok()?,
            generation: generation.parse().ok()?,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            0 => write!(f, "{}", self.change),
            generation => write!(f, "{}.{generation}", self.change),
        }
    }
}

/// One env as it is now, rendered once for every request that reads it.
pub(crate) struct Published {
    /// The newest event's id.
    pub(crate) id: EventId,
    /// `GET /sdk/v1/snapshot`'s body, and its ETag (a digest of it).
    pub(crate) snapshot: Bytes,
    pub(crate) snapshot_etag: String,
    /// What OFREP answers for this env.
    pub(crate) evaluations: Evaluations,
    /// Unix seconds of the last change applied here (OFREP's `lastModified`).
    pub(crate) modified_at: i64,
}

/// One event as every subscriber of an env gets it, rendered once per kind of stream.
#[derive(Debug)]
pub(crate) struct Frame {
    /// For `/sdk/v1/stream`; `None` when the event means nothing there.
    pub(crate) sdk: Option<Bytes>,
    /// For OFREP's event stream (`refetchEvaluation`).
    pub(crate) ofrep: Option<Bytes>,
}

/// A comment line: keeps proxies from closing an idle stream.
pub(crate) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Where this boot's snapshot numbers start: random (up to 2^40, so that ids stay
/// short and far from overflowing), never 0, which marks a change.
pub(crate) fn boot_generation() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes[..5]).is_err() {
        // No random source: the time will do to tell boots apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    u64::from_le_bytes(bytes).max(1)
}

/// A snapshot event for both kinds of stream.
pub(crate) fn snapshot_frame(published: &Published) -> Frame {
    Frame {
        sdk: Some(sse(published.id, "snapshot", &published.snapshot)),
        ofrep: Some(refetch_frame(published)),
    }
}

/// OFREP's `refetchEvaluation` notification (ADR 0008): the bulk answer's new ETag.
pub(crate) fn refetch_frame(published: &Published) -> Bytes {
    let data = serde_json::json!({
        "type": "refetchEvaluation",
        "etag": published.evaluations.etag(),
        "lastModified": published.modified_at,
    });
    sse(published.id, "message", &json(&data))
}

/// One server-sent event: `id`, `event`, one `data` line (JSON has no raw newlines).
pub(crate) fn sse(id: EventId, event: &str, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 48);
    frame.extend_from_slice(format!("id: {id}\nevent: {event}\ndata: ").as_bytes());
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

pub(crate) fn json(value: &impl serde::Serialize) -> Bytes {
    // Plain data (strings, numbers, maps with string keys): serialising cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::EventId;

    #[test]
    fn event_ids_round_trip_and_nothing_else_parses() {
        for text in ["0", "42", "42.1", "9007199254740993.7"] {
            assert_eq!(EventId::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(EventId::parse("42.0").unwrap().to_string(), "42");
        for text in [
            "",
            "-1",
            "4 2",
            "42.",
            ".1",
            "1.2.3",
            "x",
            "１２",
            "99999999999999999999",
        ] {
            assert_eq!(EventId::parse(text), None, "{text:?}");
        }
    }
}
