//! Recording live traffic: the transparent proxy (and the forward proxy for browsers)
//! and everything beneath it, from the accept loop and the HTTP upgrade to the byte tunnel, the passive frame parser,
//! permessage-deflate inflation, the tap that turns copies into records, and TLS on
//! both sides (upstream verification, listening certificates and the local CA).

pub mod accept;
pub mod authority;
pub mod deflate;
pub mod forward;
pub mod frame;
pub mod handshake;
pub mod proxy;
pub mod serve_tls;
pub mod session;
pub mod tap;
pub mod tls;
pub mod tunnel;
