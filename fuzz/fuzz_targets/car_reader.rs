//! `CarReader` over arbitrary bytes: reading the header and then every block
//! until the end or the first error must never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_ipld::block::verify;
use shoal_ipld::car::CarReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CarReader::new(data) else {
        return;
    };
    let _ = reader.roots().len();
    // Every section consumes at least one byte, so this terminates; the bound
    // is a guard against a reader that stops making progress.
    for _ in 0..=data.len() {
        match reader.next_block() {
            Ok(Some(block)) => {
                // Blocks are returned only after verification.
                assert!(
                    verify(&block.cid, &block.data).is_ok(),
                    "CarReader returned a block that does not match its CID"
                );
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("CarReader returned more blocks than the input has bytes");
});
