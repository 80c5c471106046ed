//! registry-testsupport
