//! Gannet guest SDK.
