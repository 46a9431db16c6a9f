//! Throwaway-cluster tests, in one test binary.

mod bin_dir;
mod cluster;
