//! Server-sent events, read: the bytes of a `text/event-stream` body in, whole events
//! out, as the WHATWG "event stream interpretation" reads them (lines ended by LF, CR
//! or CRLF; `:` comments; `event`, `data`, `id` fields; a blank line dispatches).
//! Pure: `remote/mod.rs` feeds it what the socket gives. An event larger than 16 MiB
//! is refused.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// `message` when the server named none.
    pub(crate) name: String,
    pub(crate) data: String,
    /// The stream's last event id as of this event (ids persist across events).
    pub(crate) id: Option<String>,
}

/// What the parser found in a chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Event(Event),
    /// A comment line: the server's keep-alive.
    Comment,
}

/// A pending line or event past this many bytes: the stream is refused, so that a
/// server (or something posing as one) cannot fill this process's memory. A snapshot
/// of a thousand flags is about 200 KiB.
pub(crate) const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("an event of the stream is larger than {MAX_EVENT_BYTES} bytes")]
pub(crate) struct TooLarge;

#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The last byte was a CR: a LF right after it ends nothing more.
    after_cr: bool,
    name: String,
    data: String,
    /// Whether a `data` field came (an event without one is not dispatched).
    has_data: bool,
    last_id: Option<String>,
}

impl Parser {
    /// Reads `bytes`, returning what completed in them, in order.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Item>, TooLarge> {
        let mut items = Vec::new();
        for &byte in bytes {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(item) = self.line_ended(&line) {
                        items.push(item);
                    }
                }
                _ => {
                    if self.line.len() + self.data.len() >= MAX_EVENT_BYTES {
                        return Err(TooLarge);
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(items)
    }

    fn line_ended(&mut self, line: &[u8]) -> Option<Item> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return Some(Item::Comment);
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // An id holding NUL is ignored, as the standard says; so is one holding
            // any control character, which could never be sent back as a header.
            "id" if !value.chars().any(char::is_control) => {
                self.last_id = Some(value.to_owned());
            }
            // `retry` and unknown fields: the reconnection schedule is ours.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Item> {
        let name = std::mem::take(&mut self.name);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(Item::Event(Event {
            name: if name.is_empty() {
                "message".to_owned()
            } else {
                name
            },
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<Item> {
        let mut parser = Parser::default();
        chunks
            .iter()
            .flat_map(|chunk| parser.push(chunk).unwrap())
            .collect()
    }

    fn event(name: &str, data: &str, id: Option<&str>) -> Item {
        Item::Event(Event {
            name: name.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        })
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let stream = b"event: snapshot\nid: 7.3\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: change\nid: 8\ndata: {\"b\":2}\n\n";
        let whole = events(&[stream]);
        assert_eq!(
            whole,
            vec![
                event("snapshot", "{\"a\":1}", Some("7.3")),
                Item::Comment,
                event("change", "{\"b\":2}", Some("8")),
            ]
        );
        // Every split point, byte by byte included, gives the same events.
        for at in 0..stream.len() {
            assert_eq!(
                events(&[&stream[..at], &stream[at..]]),
                whole,
                "split at {at}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytes), whole);
    }

    #[test]
    fn line_ends_of_every_kind_and_multi_line_data() {
        assert_eq!(
            events(&[b"data: one\r\ndata:two\rid: 5\r\n\r\n", b"data\n\n"]),
            vec![
                event("message", "one\ntwo", Some("5")),
                // The id persists; an empty data field is still data.
                event("message", "", Some("5")),
            ]
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_an_id_with_nul_is_ignored() {
        assert_eq!(
            events(&[b"event: change\nid: 3\n\nid: 4\0\ndata: x\n\n"]),
            vec![event("message", "x", Some("3"))]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = Parser::default();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut refused = false;
        for _ in 0..=MAX_EVENT_BYTES / chunk.len() {
            if parser.push(&chunk).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }
}
