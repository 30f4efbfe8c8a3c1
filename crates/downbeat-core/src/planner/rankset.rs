//! A set of small integers (task ranks) with fast "smallest element at or after `i`": a
//! hierarchical bitset (64-ary tree of `u64` words). Used as the priority queue of available
//! tasks in the makespan simulation; every operation is `O(log64 n)`.

#[derive(Debug)]
pub(super) struct RankSet {
    /// `levels[0]` holds the elements; bit `j` of level `l + 1` says whether word `j` of level
    /// `l` is non-zero. The last level is a single word.
    levels: Vec<Vec<u64>>,
}

impl RankSet {
    /// An empty set able to hold `0..capacity`.
    pub(super) fn new(capacity: usize) -> Self {
        let mut levels = Vec::new();
        let mut bits = capacity.max(1);
        loop {
            let words = bits.div_ceil(64);
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            bits = words;
        }
        Self { levels }
    }

    pub(super) fn insert(&mut self, i: usize) {
        let mut i = i;
        for level in &mut self.levels {
            let word = &mut level[i >> 6];
            let was_empty = *word == 0;
            *word |= 1 << (i & 63);
            if !was_empty {
                break;
            }
            i >>= 6;
        }
    }

    pub(super) fn remove(&mut self, i: usize) {
        let mut i = i;
        for level in &mut self.levels {
            let word = &mut level[i >> 6];
            *word &= !(1 << (i & 63));
            if *word != 0 {
                break;
            }
            i >>= 6;
        }
    }

    /// The smallest element `>= i`.
    pub(super) fn next_from(&self, i: usize) -> Option<usize> {
        let mut i = i;
        let mut l = 0;
        // Climb until some word holds a set bit at or after the position.
        loop {
            let level = self.levels.get(l)?;
            let w = i >> 6;
            let word = *level.get(w)?;
            let bits = word & (u64::MAX << (i & 63));
            if bits != 0 {
                i = (w << 6) | bits.trailing_zeros() as usize;
                break;
            }
            i = w + 1;
            l += 1;
        }
        // Descend to the first element under that bit.
        while l > 0 {
            l -= 1;
            i = (i << 6) | self.levels[l][i].trailing_zeros() as usize;
        }
        Some(i)
    }

    /// Removes and returns the smallest element.
    pub(super) fn pop_first(&mut self) -> Option<usize> {
        let i = self.next_from(0)?;
        self.remove(i);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::RankSet;
    use std::collections::BTreeSet;

    #[test]
    fn matches_btreeset() {
        let mut state = 0x1234_5678_u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for cap in [1usize, 5, 64, 65, 4096, 4097, 300_000] {
            let mut a = RankSet::new(cap);
            let mut b = BTreeSet::new();
            for _ in 0..20_000 {
                let x = (rnd() % cap as u64) as usize;
                match rnd() % 4 {
                    0 | 1 => {
                        a.insert(x);
                        b.insert(x);
                    }
                    2 => {
                        a.remove(x);
                        b.remove(&x);
                    }
                    _ => assert_eq!(a.next_from(x), b.range(x..).next().copied()),
                }
            }
            while let Some(x) = a.pop_first() {
                assert_eq!(Some(x), b.pop_first());
            }
            assert!(b.is_empty());
            assert_eq!(a.next_from(0), None);
        }
    }
}
