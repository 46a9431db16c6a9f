//! The dashboard's HTTP, live-update, metrics, security and browser tests, in one test binary
//! (one link of the dependencies, not one per file). nextest runs every test in its own process.

mod support;

mod browser;
mod http_pages;
mod live;
mod metrics;
mod security;
