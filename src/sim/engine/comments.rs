//! Verdict comments of captured packets (`--pcap-dir`): what a node did to a packet, and a
//! violation found on the way, written onto the packet's captures.

use super::*;

impl Simulator {
    /// A violation found while a captured packet was delivered is marked on it.
    pub(super) fn mark_delivered(&mut self, trail: Option<&Trail>, clean: bool) {
        if let Some(t) = trail.filter(|t| t.captured())
            && clean
            && self.violation.is_some()
        {
            self.note.clear();
            self.push_violation();
            let text = self.note.trim_start_matches("; ").to_string();
            self.capture.annotate(t, &text);
        }
    }

    /// Appends the run's violation to `note` (`; INVARIANT VIOLATED (1): invariant: message`).
    pub(super) fn push_violation(&mut self) {
        if let Some(v) = &self.violation {
            comment::violations(
                &mut self.note,
                1,
                [(v.invariant.name(), v.message.as_str())],
            );
        }
    }

    /// After a node processed a packet (`self.before` as it entered, `after` as it left): its
    /// captures get the verdict, and the trail of what the node sends for it is returned with
    /// the node's comment on that (`None` when no link is captured).
    pub(super) fn verdict_comments(
        &mut self,
        trail: Option<&Trail>,
        verdict: Verdict,
        after: &[u8],
        clean: bool,
    ) -> Option<Box<Trail>> {
        if !self.capture.any() {
            return None;
        }
        let violated = clean && self.violation.is_some();
        let nics = &self.nics;
        let host = |n: NicId, out: &mut String| {
            out.push_str(
                nics.get(n.0 as usize)
                    .map_or("an unknown NIC", |x| x.spec.name.as_str()),
            );
        };
        if let Some(t) = trail.filter(|t| t.captured()) {
            self.note.clear();
            self.comments
                .ingress(&mut self.note, &self.before, after, verdict, &host);
            if violated && let Some(v) = &self.violation {
                comment::violations(
                    &mut self.note,
                    1,
                    [(v.invariant.name(), v.message.as_str())],
                );
            }
            self.capture.annotate(t, &self.note);
        }
        self.note.clear();
        let origin = format_args!("event {}", self.stats.events);
        let (emitted, egress) = match verdict {
            Verdict::Forward(e) => (Emitted::Forward, e),
            Verdict::Respond(e) => (Emitted::Respond(&origin), e),
            Verdict::PassThrough => {
                self.comments
                    .ingress(&mut self.note, &self.before, after, verdict, &host);
                return Some(Trail::sent(self.note.clone()));
            }
            Verdict::Buffered | Verdict::Drop(_) => return None,
        };
        self.comments
            .egress(&mut self.note, &self.before, after, emitted, egress, &host);
        if violated && let Some(v) = &self.violation {
            comment::violations(
                &mut self.note,
                1,
                [(v.invariant.name(), v.message.as_str())],
            );
        }
        Some(Trail::sent(self.note.clone()))
    }

    /// Marks the captures of a packet the simulator itself drops (no route, no such NIC).
    pub(super) fn mark_dropped(&mut self, trail: Option<&Trail>, why: &str) {
        if let Some(t) = trail.filter(|t| t.captured()) {
            self.capture.annotate(t, why);
        }
    }
}
