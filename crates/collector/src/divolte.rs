//! Divolte Collector wire compatibility: the decoders for its two endpoints and what they need.
//!
//! Sites tagged with divolte.js keep working when their collector hostname points at Oriel:
//! `GET /csc-event` ([`query`]) carries one event in base-36 and Mincode ([`mincode`]) with a
//! MurmurHash3 checksum ([`checksum`]); `POST /json?p=` ([`json`]) serves mobile and server apps.

pub(crate) mod base36;
pub(crate) mod checksum;
pub(crate) mod ids;
pub(crate) mod json;
pub(crate) mod mincode;
pub(crate) mod query;

/// The transparent 1×1 GIF answered to every `/csc-event` request: byte for byte the 37 bytes
/// Divolte answers, so a client that compares the image sees no difference.
pub const PIXEL: &[u8; 37] = &[
    b'G', b'I', b'F', b'8', b'9', b'a', // signature and version
    1, 0, 1, 0, // logical screen 1×1
    0, 0, 0, // no global colour table, background 0, aspect 0
    0x21, 0xf9, 4, 1, 0x0a, 0, 1, 0, // graphic control extension: colour 1 transparent, delay 10 cs
    0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, // image descriptor 1×1 at 0,0, no local table
    2, 2, 0x4c, 0x01, 0,    // LZW minimum code size 2, one sub-block, end
    0x3b, // trailer
];

/// The fixed ETag of the pixel; a request that revalidates it is a cached duplicate.
pub const PIXEL_ETAG: &str = "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"";
