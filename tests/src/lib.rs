//! Shared helpers for mote's cross-crate tests (gradient checking, small datasets).
