//! registry-bus
