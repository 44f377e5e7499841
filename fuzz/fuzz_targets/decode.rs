//! The message decoder: start-up packets and messages from arbitrary bytes, at every offset.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgwire::codec::decode_startup(data);
    let mut at = 0;
    while at < data.len() {
        match pgwire::codec::decode_message(&data[at..], 1 << 16) {
            Ok(Some((_, n))) => {
                assert!(n > 0 && n <= data.len() - at, "a decoded message has a sane length");
                at += n;
            }
            Ok(None) | Err(_) => at += 1,
        }
    }
    if data.len() >= 8 {
        let _ = pgwire::numeric::decode(data);
    }
});
