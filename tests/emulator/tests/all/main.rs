//! The emulator's one integration-test binary: its routes, its fault injection and its
//! standalone binary, seen from a client (the test kit's bare HTTP client).

mod api;
mod bin;
mod faults;
