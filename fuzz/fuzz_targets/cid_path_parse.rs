//! `CID[/path]` parsing from arbitrary strings, and CIDs from arbitrary bytes:
//! never panics, and what parses prints back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_ipld::path::IpfsPath;
use shoal_ipld::Cid;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(path) = s.parse::<IpfsPath>() {
            let shown = path.to_string();
            let short: String = shown.chars().take(120).collect();
            let back: IpfsPath = shown.parse().unwrap_or_else(|e| {
                panic!(
                    "Display output of {} bytes (input {} bytes) does not parse: {e}; starts {short:?}",
                    shown.len(),
                    s.len()
                )
            });
            assert_eq!(back, path, "{short:?} parses to a different path");
        }
    }

    if let Ok(cid) = Cid::try_from(data) {
        let bytes = cid.to_bytes();
        assert_eq!(
            bytes.len(),
            cid.encoded_len(),
            "Cid::encoded_len disagrees with to_bytes"
        );
        let again = Cid::try_from(&bytes[..]).expect("Cid::to_bytes output must parse");
        assert_eq!(again, cid);
        let text = cid.to_string();
        let again = Cid::try_from(text.as_str()).expect("Cid Display output must parse");
        assert_eq!(again, cid);
    }
});
