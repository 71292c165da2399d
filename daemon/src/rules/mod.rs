//! Pure rules: decisions made from numbers and config alone, with no
//! database, clock or network, so each is unit-tested on its own and has
//! one home. Storage code applies them inside its transactions.

pub mod challenge;
pub mod lockout;
pub mod send;
