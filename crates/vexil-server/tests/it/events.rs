//! `EventReader`: a subscriber of a server-sent event stream over a real socket, as
//! an application's process or an OFREP provider reads it: one event at a time,
//! keep-alive comments counted and skipped.

use std::time::Duration;

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: serde_json::Value,
}

pub(crate) struct EventReader {
    response: reqwest::Response,
    buffer: String,
    pub(crate) keep_alives: usize,
}

/// How long a test waits for an event that should come.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

impl EventReader {
    /// Opens `path` with these headers; `Err` holds the refusal (status, body).
    pub(crate) async fn open(
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<EventReader, (u16, serde_json::Value)> {
        let mut request = reqwest::Client::new().get(format!("{base}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            return Err((status, body));
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Ok(EventReader {
            response,
            buffer: String::new(),
            keep_alives: 0,
        })
    }

    /// The next event, waiting up to `WAIT`; panics if none comes.
    pub(crate) async fn next(&mut self) -> Event {
        match tokio::time::timeout(WAIT, self.next_or_end()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("no event within {WAIT:?}"),
        }
    }

    /// Whether an event comes within `wait` (`None` when none does).
    pub(crate) async fn within(&mut self, wait: Duration) -> Option<Event> {
        tokio::time::timeout(wait, self.next_or_end())
            .await
            .ok()
            .flatten()
    }

    /// Whether the server ends the stream within `wait` (events before that are
    /// read and dropped).
    pub(crate) async fn ends_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async { while self.next_or_end().await.is_some() {} })
            .await
            .is_ok()
    }

    /// The next event, or `None` when the stream ends.
    pub(crate) async fn next_or_end(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return Some(event);
                }
                continue;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn parse(&mut self, block: &str) -> Option<Event> {
        let mut event = Event {
            id: None,
            event: "message".to_owned(),
            data: serde_json::Value::Null,
        };
        let mut seen = false;
        for line in block.lines() {
            if line.is_empty() {
                continue;
            }
            if line.starts_with(':') {
                self.keep_alives += 1;
                continue;
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            seen = true;
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => value.clone_into(&mut event.event),
                "data" => event.data = serde_json::from_str(value).unwrap(),
                other => panic!("unexpected field {other:?} in {block:?}"),
            }
        }
        seen.then_some(event)
    }
}
