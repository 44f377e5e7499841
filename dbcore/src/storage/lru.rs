//! The buffer pool's recency order: a doubly linked list threaded through a slab of slots.
//!
//! Moving a page to the young end, adding one and taking the oldest out are each a few index
//! writes, with no search. The pool used a `BTreeMap` from tick to page before: every move was
//! a removal and an insertion in a tree of one entry per frame, about a third of a point
//! lookup's time in the pool (pgbench -S). The order is the same: the list runs from the oldest
//! move or insertion to the youngest.
use alloc::vec::Vec;

use super::page::PageId;

/// A slot's index. Slots of removed entries are reused.
pub type Slot = u32;

const NIL: Slot = Slot::MAX;

#[derive(Clone, Copy)]
struct Link {
    page: PageId,
    older: Slot,
    younger: Slot,
}

#[derive(Default)]
pub struct Lru {
    links: Vec<Link>,
    free: Vec<Slot>,
    oldest: Option<Slot>,
    youngest: Option<Slot>,
}

impl Lru {
    /// Entries in the list: every slot not on the free list.
    pub fn len(&self) -> usize {
        self.links.len() - self.free.len()
    }

    /// Adds `page` at the young end.
    pub fn push_young(&mut self, page: PageId) -> Slot {
        let s = self.alloc(page);
        self.link_young(s);
        s
    }

    /// Adds `page` at the old end (it leaves first).
    pub fn push_old(&mut self, page: PageId) -> Slot {
        let s = self.alloc(page);
        let l = &mut self.links[s as usize];
        l.older = NIL;
        l.younger = self.oldest.unwrap_or(NIL);
        match self.oldest {
            Some(o) => self.links[o as usize].older = s,
            None => self.youngest = Some(s),
        }
        self.oldest = Some(s);
        s
    }

    /// Moves slot `s` to the young end.
    pub fn touch(&mut self, s: Slot) {
        if self.youngest == Some(s) {
            return;
        }
        self.unlink(s);
        self.link_young(s);
    }

    /// Takes slot `s` out.
    pub fn remove(&mut self, s: Slot) {
        self.unlink(s);
        self.free.push(s);
    }

    /// Takes the oldest page out.
    pub fn pop_oldest(&mut self) -> Option<PageId> {
        let s = self.oldest?;
        let page = self.links[s as usize].page;
        self.remove(s);
        Some(page)
    }

    fn alloc(&mut self, page: PageId) -> Slot {
        let link = Link { page, older: NIL, younger: NIL };
        match self.free.pop() {
            Some(s) => {
                self.links[s as usize] = link;
                s
            }
            None => {
                assert!(self.links.len() < NIL as usize, "more pool frames than slots");
                self.links.push(link);
                (self.links.len() - 1) as Slot
            }
        }
    }

    fn link_young(&mut self, s: Slot) {
        let l = &mut self.links[s as usize];
        l.younger = NIL;
        l.older = self.youngest.unwrap_or(NIL);
        match self.youngest {
            Some(y) => self.links[y as usize].younger = s,
            None => self.oldest = Some(s),
        }
        self.youngest = Some(s);
    }

    fn unlink(&mut self, s: Slot) {
        let Link { older, younger, .. } = self.links[s as usize];
        match older {
            NIL => self.oldest = (younger != NIL).then_some(younger),
            o => self.links[o as usize].younger = younger,
        }
        match younger {
            NIL => self.youngest = (older != NIL).then_some(older),
            y => self.links[y as usize].older = older,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    /// Operations on the list and on a model: a map from a counter to the page, the order the
    /// pool kept before.
    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        PushOld(u8),
        Touch(u8),
        Remove(u8),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![any::<u8>().prop_map(Op::Push), any::<u8>().prop_map(Op::PushOld), any::<u8>().prop_map(Op::Touch), any::<u8>().prop_map(Op::Remove), Just(Op::Pop)]
    }

    proptest! {
        #[test]
        fn the_list_keeps_the_order_of_a_tick_map(ops in proptest::collection::vec(op(), 0..400)) {
            let mut lru = Lru::default();
            // page -> (slot, tick); tick -> page. Old ticks count down from zero.
            let mut at: BTreeMap<PageId, (Slot, i64)> = BTreeMap::new();
            let mut model: BTreeMap<i64, PageId> = BTreeMap::new();
            let (mut young, mut old) = (0i64, 0i64);
            for o in ops {
                match o {
                    Op::Push(p) | Op::PushOld(p) => {
                        let p = PageId::from(p);
                        if at.contains_key(&p) {
                            continue;
                        }
                        let (s, t) = if let Op::Push(_) = o {
                            young += 1;
                            (lru.push_young(p), young)
                        } else {
                            old -= 1;
                            (lru.push_old(p), old)
                        };
                        at.insert(p, (s, t));
                        model.insert(t, p);
                    }
                    Op::Touch(p) => {
                        let Some((s, t)) = at.get_mut(&PageId::from(p)) else { continue };
                        lru.touch(*s);
                        model.remove(t);
                        young += 1;
                        *t = young;
                        model.insert(young, PageId::from(p));
                    }
                    Op::Remove(p) => {
                        let Some((s, t)) = at.remove(&PageId::from(p)) else { continue };
                        lru.remove(s);
                        model.remove(&t);
                    }
                    Op::Pop => {
                        let want = model.pop_first().map(|(_, p)| p);
                        prop_assert_eq!(lru.pop_oldest(), want);
                        if let Some(p) = want {
                            at.remove(&p);
                        }
                    }
                }
                prop_assert_eq!(lru.len(), model.len());
            }
            // Draining gives the model's order.
            let drained: Vec<PageId> = core::iter::from_fn(|| lru.pop_oldest()).collect();
            let want: Vec<PageId> = model.values().copied().collect();
            prop_assert_eq!(drained, want);
            prop_assert_eq!(lru.len(), 0);
        }
    }
}
