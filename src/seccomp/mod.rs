//! Seccomp filters. Until the compiler lands, a config with `linux.seccomp` is refused by
//! validation (`linux.seccomp: seccomp is not supported yet`) rather than run unfiltered.
