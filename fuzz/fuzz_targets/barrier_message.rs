//! Message bodies into the wire decoder: it must never panic, and whatever it accepts
//! must survive an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqs_barrier_core::wire::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = Message::decode(body) {
        let encoded = message.encode();
        let again = Message::decode(&encoded)
            .unwrap_or_else(|e| panic!("re-decoding {encoded:?} failed: {e}"));
        assert_eq!(again, message, "round trip changed the message");
    }
});
