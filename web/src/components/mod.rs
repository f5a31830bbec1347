//! The parts pages are built of.

pub mod console;
pub mod form;
pub mod power;
pub mod shell;
pub mod status;
pub mod table;
