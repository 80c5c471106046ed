//! registry-domain
