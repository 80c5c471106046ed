//! registry-stats
