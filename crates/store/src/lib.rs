//! registry-store
