//! `v` at the prompt: the user asks for the code by phone call. It is a
//! resend in every respect (the old code dies, the per-challenge resend
//! limit and the send budgets are charged, fake challenges pay the same
//! time) except that only the chain's voice providers are tried.

use super::{Login, Next};
use crate::providers::Route;
use crate::state::State;
use smsotp_proto::Response;
use std::sync::Arc;
use tracing::info;

impl Login {
    pub async fn call(&mut self, state: &Arc<State>) -> (Response, Next) {
        if !state.runtime().chain.has_voice() {
            // Refused before any budget is charged: nothing could be sent.
            // Real and unknown users alike, so it tells nothing about them.
            let b = &self.begin;
            audit!(
                info,
                "resend_refused",
                b,
                reason = "no voice provider",
                "call refused"
            );
            return (
                Response::ResendRefused {
                    reason: "calls are not available here".into(),
                },
                Next::Continue,
            );
        }
        self.resend_via(state, Route::Voice).await
    }
}
