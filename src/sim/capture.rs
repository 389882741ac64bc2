//! Captured links of a run (`natsim run --pcap-dir`), each packet with its verdict comment.
//!
//! A packet is captured when it is put on a captured link, before its verdict is known: it
//! may cross further links and reach a dataplane node only later. So a packet in flight
//! carries a [`Trail`]: where it was captured so far, and, once it left a gateway, the
//! gateway's comment on it. When a node's `process` returns a verdict, every capture of the
//! packet gets it; what the node sends carries the comment on from there (docs/replay.md,
//! "Verdicts on the packets", for the words; [`super::comment`] writes them). Packets no
//! gateway saw (between internet hosts) keep an empty comment. Nothing is recorded when no
//! link is captured.

/// A captured packet: virtual time in nanoseconds, the IP bytes, and its verdict comment
/// (empty for a packet no gateway handled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// Virtual time in nanoseconds.
    pub time_ns: u64,
    /// The IP packet.
    pub bytes: Vec<u8>,
    /// Its verdict comment.
    pub comment: String,
}

/// Where a packet in flight was captured, and the comment of the gateway that sent it.
#[derive(Clone, Debug, Default)]
pub struct Trail {
    /// (link, index into that link's capture) of every capture of this packet so far.
    refs: Vec<(u32, u32)>,
    /// The comment of the gateway that sent it (copied onto its later captures).
    note: Option<String>,
}

impl Trail {
    /// A packet a gateway sent, with its comment.
    pub fn sent(note: String) -> Box<Trail> {
        Box::new(Trail {
            refs: Vec::new(),
            note: Some(note),
        })
    }

    /// The packet was captured somewhere.
    pub fn captured(&self) -> bool {
        !self.refs.is_empty()
    }
}

/// The captures of every captured link.
#[derive(Debug, Default)]
pub struct Captures {
    links: Vec<Option<Vec<CapturedPacket>>>,
    any: bool,
}

impl Captures {
    /// No link captured yet, `links` links in all.
    pub fn new(links: usize) -> Self {
        Captures {
            links: vec![None; links],
            any: false,
        }
    }

    /// Captures `link` from now on.
    pub fn enable(&mut self, link: u32) {
        if let Some(c) = self.links.get_mut(link as usize) {
            *c = Some(Vec::new());
            self.any = true;
        }
    }

    /// Some link is captured (else nothing needs comments or trails).
    pub fn any(&self) -> bool {
        self.any
    }

    /// Records `buf` put on `link` at `now_ns` if the link is captured, with the comment of
    /// the gateway that sent it if any, and adds the capture to the packet's trail.
    pub fn record(&mut self, link: u32, now_ns: u64, buf: &[u8], trail: &mut Option<Box<Trail>>) {
        let Some(Some(cap)) = self.links.get_mut(link as usize) else {
            return;
        };
        let t = trail.get_or_insert_with(Box::default);
        t.refs.push((link, cap.len() as u32));
        cap.push(CapturedPacket {
            time_ns: now_ns,
            bytes: buf.to_vec(),
            comment: t.note.clone().unwrap_or_default(),
        });
    }

    /// Appends `text` to the comment of every capture of the packet (after `; ` when it has
    /// one already: a duplicate's second verdict, or what happened after a gateway sent it).
    pub fn annotate(&mut self, trail: &Trail, text: &str) {
        for &(link, i) in &trail.refs {
            if let Some(Some(cap)) = self.links.get_mut(link as usize)
                && let Some(p) = cap.get_mut(i as usize)
            {
                if !p.comment.is_empty() {
                    p.comment.push_str("; ");
                }
                p.comment.push_str(text);
            }
        }
    }

    /// Captured packets of `link`, if it is captured.
    pub fn of(&self, link: u32) -> Option<&[CapturedPacket]> {
        self.links.get(link as usize)?.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_get_the_verdict_and_later_ones_the_note() {
        let mut c = Captures::new(3);
        c.enable(0);
        c.enable(2);
        let mut trail = None;
        c.record(0, 5, b"a", &mut trail);
        c.record(1, 6, b"a", &mut trail); // not captured
        let t = trail.expect("captured");
        assert!(t.captured());
        c.annotate(&t, "dropped: unsolicited");
        assert_eq!(
            c.of(0).expect("captured")[0].comment,
            "dropped: unsolicited"
        );
        let mut sent = Some(Trail::sent("translated x → y".into()));
        c.record(2, 7, b"b", &mut sent);
        c.annotate(sent.as_deref().expect("trail"), "lost on link uplink/0");
        assert_eq!(
            c.of(2).expect("captured")[0].comment,
            "translated x → y; lost on link uplink/0"
        );
        assert!(c.of(1).is_none());
    }
}
