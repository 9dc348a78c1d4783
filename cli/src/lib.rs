//! The operator tooling behind the `warehouse` binary that the integration
//! tests drive too: the local pipeline on the real function binaries, and
//! invoking functions (on AWS or on the local control plane).

pub mod chaos;
pub mod invoke;
pub mod local;
pub mod processes;
