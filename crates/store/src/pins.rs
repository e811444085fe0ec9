//! Pins (direct and recursive) and DAG walks over the store.

use crate::error::StoreError;
use crate::layout::PINS;
use crate::store::BlockStore;
use redb::{ReadableDatabase, ReadableTable};
use shoal_ipld::{dagpb, Cid, Codec};
use std::collections::HashSet;

/// How a CID is pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinKind {
    /// Only this block is kept.
    Direct,
    /// This block and everything it links to, recursively.
    Recursive,
}

impl PinKind {
    fn code(self) -> u8 {
        match self {
            PinKind::Direct => 1,
            PinKind::Recursive => 2,
        }
    }
    fn from_code(c: u8) -> Option<PinKind> {
        match c {
            1 => Some(PinKind::Direct),
            2 => Some(PinKind::Recursive),
            _ => None,
        }
    }
}

/// What a DAG walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every CID reached (present or not), as bytes.
    pub reached: HashSet<Vec<u8>>,
    /// CIDs linked to but not in the store.
    pub missing: Vec<Cid>,
}

impl BlockStore {
    /// Walks the DAG under `root` through dag-pb links, adding to `walk`.
    /// Raw blocks are not read; dag-pb blocks are read and verified.
    pub fn walk(&self, root: &Cid, walk: &mut Walk) -> Result<(), StoreError> {
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !walk.reached.insert(cid.to_bytes()) {
                continue;
            }
            if !self.has(&cid)? {
                walk.missing.push(cid);
                continue;
            }
            if Codec::of(&cid)? == Codec::Raw {
                continue;
            }
            let data = self.get(&cid)?;
            let node = dagpb::PbNode::decode(&data).map_err(|e| StoreError::BadNode(cid, e.to_string()))?;
            stack.extend(node.links.iter().rev().map(|l| l.hash));
        }
        Ok(())
    }

    /// Pins `cid`. A recursive pin requires the whole DAG to be present.
    pub fn pin_add(&self, cid: &Cid, kind: PinKind) -> Result<(), StoreError> {
        if kind == PinKind::Recursive {
            let mut walk = Walk::default();
            self.walk(cid, &mut walk)?;
            if let Some(example) = walk.missing.first() {
                return Err(StoreError::Incomplete {
                    root: *cid,
                    missing: walk.missing.len(),
                    example: *example,
                });
            }
        } else if !self.has(cid)? {
            return Err(StoreError::NotFound(*cid));
        }
        self.pin_add_complete(cid, kind)
    }

    /// Unpins `cid`; returns whether it was pinned.
    pub fn pin_rm(&self, cid: &Cid) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let removed = {
            let mut pins = txn.open_table(PINS)?;
            let removed = pins.remove(cid.to_bytes().as_slice())?.is_some();
            removed
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Every pin.
    pub fn pins(&self) -> Result<Vec<(Cid, PinKind)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PINS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            if let (Ok(cid), Some(kind)) = (Cid::try_from(k.value()), PinKind::from_code(v.value())) {
                out.push((cid, kind));
            }
        }
        Ok(out)
    }

    /// The set of CIDs (as bytes) kept by pins, and pinned CIDs missing.
    pub(crate) fn mark(&self) -> Result<Walk, StoreError> {
        let mut walk = Walk::default();
        for (cid, kind) in self.pins()? {
            match kind {
                PinKind::Recursive => self.walk(&cid, &mut walk)?,
                PinKind::Direct => {
                    walk.reached.insert(cid.to_bytes());
                }
            }
        }
        Ok(walk)
    }
}

impl BlockStore {
    /// Pins `cid` without walking its DAG, for a caller that has just
    /// written and committed all of it (an import).
    pub fn pin_add_complete(&self, cid: &Cid, kind: PinKind) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut pins = txn.open_table(PINS)?;
            pins.insert(cid.to_bytes().as_slice(), kind.code())?;
        }
        txn.commit()?;
        Ok(())
    }
}
