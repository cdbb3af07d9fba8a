//! See tests/cri.rs.
