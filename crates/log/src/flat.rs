//! Flat-tree indexing: a binary tree laid out in one array, leaves at even
//! indexes, parents in between (index 1 is the parent of 0 and 2, index 3
//! of 1 and 5, ...). Entry `n` is leaf index `2n`.

/// The index of the node at `depth` (0 = leaf) and `offset` along that depth.
pub fn index(depth: u32, offset: u64) -> u64 {
    (offset << (depth + 1)) | ((1u64 << depth) - 1)
}

/// The depth of node `i` (its number of trailing one bits).
pub fn depth(i: u64) -> u32 {
    i.trailing_ones()
}

/// The position of node `i` along its depth.
pub fn offset(i: u64) -> u64 {
    i >> (depth(i) + 1)
}

pub fn parent(i: u64) -> u64 {
    let d = depth(i);
    index(d + 1, offset(i) >> 1)
}

pub fn sibling(i: u64) -> u64 {
    let d = depth(i);
    index(d, offset(i) ^ 1)
}

/// The two children of a parent node (`None` for a leaf).
pub fn children(i: u64) -> Option<(u64, u64)> {
    let d = depth(i);
    if d == 0 {
        return None;
    }
    let o = offset(i) * 2;
    Some((index(d - 1, o), index(d - 1, o + 1)))
}

/// The leftmost and rightmost leaf under node `i`.
pub fn span(i: u64) -> (u64, u64) {
    let d = depth(i);
    if d == 0 {
        return (i, i);
    }
    let o = offset(i);
    (o << (d + 1), ((o + 1) << (d + 1)) - 2)
}

/// The number of entries (leaves) under node `i`.
pub fn count(i: u64) -> u64 {
    1u64 << depth(i)
}

/// The roots of a tree of `length` entries: the largest full subtrees,
/// left to right.
pub fn full_roots(length: u64) -> Vec<u64> {
    let mut roots = Vec::new();
    let mut start = 0u64; // first entry not yet covered
    let mut left = length;
    while left > 0 {
        let d = 63 - left.leading_zeros(); // largest power of two <= left
        roots.push(index(d, start >> d));
        start += 1 << d;
        left -= 1 << d;
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_matches_its_definition() {
        assert_eq!(
            (index(0, 0), index(0, 1), index(1, 0), index(1, 1), index(2, 0)),
            (0, 2, 1, 5, 3)
        );
        assert_eq!((depth(3), offset(3), depth(5), offset(5)), (2, 0, 1, 1));
        assert_eq!((parent(0), parent(2), parent(1), parent(5)), (1, 1, 3, 3));
        assert_eq!((sibling(0), sibling(1), sibling(5)), (2, 5, 1));
        assert_eq!((children(3), children(0)), (Some((1, 5)), None));
        assert_eq!((span(3), span(4), count(3)), ((0, 6), (4, 4), 4));
        assert_eq!(full_roots(0), Vec::<u64>::new());
        assert_eq!(full_roots(1), vec![0]);
        assert_eq!(full_roots(3), vec![1, 4]);
        assert_eq!(full_roots(7), vec![3, 9, 12]);
        assert_eq!(full_roots(8), vec![7]);
    }

    #[test]
    fn parents_and_children_agree_and_roots_cover_every_entry_once() {
        for i in 0..5000u64 {
            if let Some((l, r)) = children(i) {
                assert_eq!((parent(l), parent(r), sibling(l)), (i, i, r));
            }
        }
        for len in 0..300u64 {
            let mut covered = 0;
            for r in full_roots(len) {
                let (a, b) = span(r);
                assert_eq!(a, covered * 2, "roots of {len} leave a gap");
                covered += count(r);
                assert_eq!(b, covered * 2 - 2);
            }
            assert_eq!(covered, len);
        }
    }
}
