//! Snapshot arenas: every byte a QuickJS runtime allocates comes from one private memory region
//! (the arena) owned by a sandbox slot, through an allocator whose own state also lives in that
//! region. After the runtime, context, prelude and a function's module are set up, the used prefix
//! of the arena *is* the instance: copying it out gives an image, and copying the image back
//! restores the instance exactly as it was — objects, shapes, atoms, the job queue, timers, the
//! allocator's free lists — in microseconds, without tearing anything down.
//!
//! The arena never moves (it is mapped once per slot), so pointers inside an image stay valid for
//! that slot. State outside the arena that the runtime refers to (the rquickjs runtime's Rust-side
//! book-keeping, the Rust closures of host functions, the slot's `CallState`) is created before the
//! first image is taken and never changes while images are in use; see `invoke::Slot`.
//!
//! What an arena call leaves behind beyond the image's length is zeroed before the next restore
//! completes, so no byte of one call (another user's plaintext) is readable by a later one, even
//! through an allocator bug.
#![allow(unsafe_code)]

use std::alloc::Layout;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::allocator::Allocator;
use talc::{OomHandler, Span, Talc};

use crate::bytes::Heap;

/// Bytes before every block: its requested size (QuickJS needs `usable_size`, talc needs the
/// layout to free). 16 keeps the payload 16-byte aligned like glibc's malloc.
const HEADER: usize = 16;
const ALIGN: usize = 16;
/// Bytes at the arena's base for [`Meta`] (the allocator's state).
const META_BYTES: usize = 4096;
/// The first heap (grown on demand in steps of at least [`GROW_STEP`]).
const FIRST_HEAP: usize = 64 << 10;
const GROW_STEP: usize = 64 << 10;
/// Above this many dirty bytes beyond an image, pages are returned to the kernel (which gives
/// back zero pages) instead of being cleared by hand.
const MADVISE_ABOVE: usize = 1 << 20;
const PAGE: usize = 4096;
/// Bytes talc may write next to a block or at the top of its heap (tags, free-list nodes).
const TAG_SLACK: usize = 64;

/// The allocator's state, at the arena's base (so an image carries it).
#[repr(C)]
struct Meta {
    talc: Talc<Grow>,
    /// Highest address any block has reached since the arena was last clean (restored): with the
    /// tags talc keeps at the top of its heap, the extent a restore must clear.
    hwm: usize,
}

/// Grows the heap towards the end of the reservation when talc runs out.
struct Grow {
    heap: Span,
    end: *mut u8,
}

impl OomHandler for Grow {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let heap = talc.oom_handler.heap;
        let (base, acme) = heap.get_base_acme().ok_or(())?;
        let room = (talc.oom_handler.end as usize).saturating_sub(acme as usize);
        let grown = heap.size() / 4;
        let want = layout
            .size()
            .saturating_add(layout.align())
            .saturating_add(256)
            .max(GROW_STEP)
            .max(grown)
            .next_multiple_of(PAGE);
        let add = want.min(room);
        if add < PAGE {
            return Err(());
        }
        // SAFETY: the requested span contains the old heap and lies inside the reservation (the
        // mapping of this arena, readable and writable, used by nothing else).
        let new = unsafe { talc.extend(heap, Span::new(base, acme.wrapping_add(add))) };
        match new.get_base_acme() {
            Some((_, new_acme)) if new_acme > acme => {
                talc.oom_handler.heap = new;
                Ok(())
            }
            _ => Err(()),
        }
    }
}

/// An image of an arena's used prefix, in pages. A function image shares (by reference count)
/// every page that is byte-for-byte the same as its slot's base image, so what a deployed function
/// costs in memory is only the pages its module changed.
pub(crate) struct Image {
    pages: Vec<Arc<[u8]>>,
    len: usize,
}

impl Image {
    /// Bytes the image restores.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of pages this image does not share with `other`.
    pub(crate) fn unique_bytes(&self, other: &Image) -> usize {
        self.pages
            .iter()
            .enumerate()
            .filter(|(i, p)| other.pages.get(*i).is_none_or(|q| !Arc::ptr_eq(p, q)))
            .map(|(_, p)| p.len())
            .sum()
    }
}

/// One arena: an anonymous private mapping, reserved (not committed) up front.
pub(crate) struct Arena {
    base: NonNull<u8>,
    size: usize,
}

impl Arena {
    /// Reserves `size` bytes (rounded up to pages) and sets up the allocator state.
    pub(crate) fn new(size: usize) -> Result<Arena, String> {
        let size = size.max(META_BYTES + FIRST_HEAP * 2).next_multiple_of(PAGE);
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve a {} MiB sandbox arena: {}",
                size >> 20,
                std::io::Error::last_os_error()
            ));
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or("mmap returned null")?;
        let arena = Arena { base, size };
        // SAFETY: the mapping is ours, zeroed, at least META_BYTES + FIRST_HEAP long; `Meta` fits
        // in META_BYTES (checked below) and the base is page-aligned.
        unsafe {
            const { assert!(std::mem::size_of::<Meta>() <= META_BYTES) };
            let end = base.as_ptr().add(size);
            let meta = base.as_ptr().cast::<Meta>();
            meta.write(Meta {
                talc: Talc::new(Grow {
                    heap: Span::empty(),
                    end,
                }),
                hwm: 0,
            });
            let first = Span::from_base_size(base.as_ptr().add(META_BYTES), FIRST_HEAP);
            let heap = (*meta)
                .talc
                .claim(first)
                .map_err(|()| "cannot set up the sandbox arena's allocator".to_string())?;
            (*meta).talc.oom_handler.heap = heap;
        }
        Ok(arena)
    }

    fn meta(&self) -> *mut Meta {
        self.base.as_ptr().cast()
    }

    /// Bytes from the base up to the end of the allocator's heap: everything an image must hold.
    pub(crate) fn top(&self) -> usize {
        // SAFETY: `meta` points at the live `Meta` of this arena, only used from this thread.
        let heap = unsafe { (*self.meta()).talc.oom_handler.heap };
        heap.get_base_acme()
            .map(|(_, acme)| acme as usize - self.base.as_ptr() as usize)
            .unwrap_or(META_BYTES)
    }

    /// The allocator for a runtime living in this arena. The arena must outlive the runtime.
    pub(crate) fn allocator(&self, heap: Rc<Heap>) -> ArenaAllocator {
        ArenaAllocator {
            meta: self.meta(),
            heap,
        }
    }

    /// Copies the used prefix of the arena out: an image of everything in it, sharing the pages
    /// that are the same as `base`'s. The heap is first cut down to just above its highest
    /// allocated block (it grows again on demand), so the image carries no free space at the top.
    pub(crate) fn snapshot(&self, base: Option<&Image>) -> Image {
        // SAFETY: `meta` is this arena's live allocator state, used only from this thread and not
        // re-entrantly (no runtime code runs during a snapshot). The requested span keeps the
        // heap's base and covers all allocated memory (talc's own `get_allocated_span`).
        unsafe {
            let talc = &mut (*self.meta()).talc;
            let heap = talc.oom_handler.heap;
            let used = talc.get_allocated_span(heap);
            // The allocator's metadata is an allocated block at the heap's base, so `used` is
            // never empty while the heap exists.
            if let (Some((base, acme)), Some((_, used_acme))) =
                (heap.get_base_acme(), used.get_base_acme())
            {
                let keep = used_acme.wrapping_add(256).min(acme);
                if keep < acme {
                    talc.oom_handler.heap = talc.truncate(heap, Span::new(base, keep));
                    // What was above the new top (blocks freed while the module ran) is cleared
                    // now: nothing tracks it once the high-water mark is reset below.
                    let new_top = self.top();
                    let old_top = acme as usize - self.base.as_ptr() as usize;
                    if old_top > new_top {
                        self.clear(new_top, old_top);
                    }
                }
            }
        }
        let top = self.top();
        // SAFETY: as above; the image's high-water mark is its own end.
        unsafe { (*self.meta()).hwm = self.base.as_ptr() as usize + top };
        // SAFETY: `top` bytes from the base are mapped and initialised (zero pages or data).
        let bytes = unsafe { std::slice::from_raw_parts(self.base.as_ptr(), top) };
        let pages = bytes
            .chunks(PAGE)
            .enumerate()
            .map(|(i, chunk)| match base.and_then(|b| b.pages.get(i)) {
                Some(shared) if &shared[..] == chunk => Arc::clone(shared),
                _ => Arc::from(chunk),
            })
            .collect();
        Image { pages, len: top }
    }

    /// Puts an image taken of this arena back: the arena then holds exactly what it held when
    /// the image was taken, and every byte beyond the image is zero.
    pub(crate) fn restore(&self, image: &Image) {
        let len = image.len;
        assert!(len <= self.size, "image larger than its arena");
        // What the arena holds beyond the image now: blocks up to the high-water mark (with
        // talc's chunk tags next to them) and talc's tags at the top of its heap.
        let (hwm, top) = (self.hwm(), self.top());
        let hwm = hwm.saturating_add(TAG_SLACK).min(self.size);
        // SAFETY: the image was taken of this arena (same base, same mapping), so its bytes are a
        // consistent state of it; the destination range is mapped and not borrowed by anything
        // (no runtime code runs during a restore). The cleared ranges lie inside the mapping.
        unsafe {
            let mut at = self.base.as_ptr();
            for page in &image.pages {
                std::ptr::copy_nonoverlapping(page.as_ptr(), at, page.len());
                at = at.add(page.len());
            }
            if hwm > len {
                self.clear(len, hwm);
            }
            let tags = top.saturating_sub(TAG_SLACK).max(hwm).max(len);
            if top > tags {
                self.clear(tags, top);
            }
        }
    }

    /// The high-water mark as an offset from the base.
    fn hwm(&self) -> usize {
        // SAFETY: `meta` points at the live `Meta` of this arena, only used from this thread.
        let hwm = unsafe { (*self.meta()).hwm };
        hwm.saturating_sub(self.base.as_ptr() as usize)
    }

    /// Zeroes `[from, to)`: by hand for small ranges, by returning whole pages to the kernel
    /// (which maps zero pages back on the next touch) for large ones.
    unsafe fn clear(&self, from: usize, to: usize) {
        let base = self.base.as_ptr();
        // SAFETY (caller): `[from, to)` lies inside the mapping and nothing borrows it.
        unsafe {
            if to - from >= MADVISE_ABOVE {
                let first_page = from.next_multiple_of(PAGE);
                std::ptr::write_bytes(base.add(from), 0, first_page - from);
                let last_page = to.next_multiple_of(PAGE).min(self.size);
                let r = libc::madvise(
                    base.add(first_page).cast(),
                    last_page - first_page,
                    libc::MADV_DONTNEED,
                );
                if r != 0 {
                    std::ptr::write_bytes(base.add(first_page), 0, to - first_page);
                }
            } else {
                std::ptr::write_bytes(base.add(from), 0, to - from);
            }
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this base and size; the runtime that used it
        // is gone (the arena outlives it by construction of `invoke::Slot`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.size);
        }
    }
}

/// The QuickJS allocator of a runtime in an [`Arena`]: talc inside the arena, a 16-byte size header
/// per block, and the heap limit of [`Heap`] (a refusal is recorded, so out-of-memory is exact).
pub(crate) struct ArenaAllocator {
    meta: *mut Meta,
    heap: Rc<Heap>,
}

fn block_layout(size: usize) -> Option<Layout> {
    let total = size.checked_add(HEADER)?.checked_next_multiple_of(ALIGN)?;
    Layout::from_size_align(total, ALIGN).ok()
}

impl ArenaAllocator {
    /// Raises the high-water mark to `end` (an address).
    fn mark(&mut self, end: usize) {
        // SAFETY: as in `talc`.
        unsafe {
            if end > (*self.meta).hwm {
                (*self.meta).hwm = end;
            }
        }
    }

    fn talc(&mut self) -> &mut Talc<Grow> {
        // SAFETY: `meta` points at the `Meta` of the arena this runtime lives in; the arena
        // outlives the runtime and is only used from the runtime's thread, and QuickJS never
        // calls the allocator re-entrantly.
        unsafe { &mut (*self.meta).talc }
    }
}

// SAFETY: blocks come from talc over memory that only this allocator hands out; each block is
// `HEADER` bytes of bookkeeping (the requested size) followed by at least `size` usable bytes,
// 16-byte aligned. A refused request returns null (QuickJS handles it as out of memory) and a
// refused `realloc` leaves the old block untouched. `usable_size` reads the header written here.
unsafe impl Allocator for ArenaAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let Some(layout) = block_layout(size) else {
            return std::ptr::null_mut();
        };
        if !self.heap.admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the layout is non-zero (at least HEADER bytes).
        match unsafe { self.talc().malloc(layout) } {
            Ok(p) => {
                self.heap.add_used(layout.size());
                self.mark(p.as_ptr() as usize + layout.size());
                // SAFETY: the block is at least HEADER + size bytes, 16-byte aligned.
                unsafe {
                    p.as_ptr().cast::<usize>().write(size);
                    p.as_ptr().add(HEADER)
                }
            }
            Err(()) => {
                self.heap.record_refusal();
                std::ptr::null_mut()
            }
        }
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        let p = self.alloc(total);
        if !p.is_null() {
            // SAFETY: `p` has at least `total` usable bytes (the arena is reused: clear them).
            unsafe { std::ptr::write_bytes(p, 0, total) };
        }
        p
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: the caller guarantees `ptr` came from this allocator: its header holds the size.
        unsafe {
            let block = ptr.sub(HEADER);
            let size = block.cast::<usize>().read();
            let layout = block_layout(size).unwrap_or(Layout::new::<u8>());
            self.heap.sub_used(layout.size());
            self.talc().free(NonNull::new_unchecked(block), layout);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        if new_size == 0 {
            // SAFETY: as in `dealloc`.
            unsafe { self.dealloc(ptr) };
            return std::ptr::null_mut();
        }
        let Some(new_layout) = block_layout(new_size) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the caller guarantees `ptr` came from this allocator: its header holds the size.
        unsafe {
            let block = ptr.sub(HEADER);
            let old_size = block.cast::<usize>().read();
            let Some(old_layout) = block_layout(old_size) else {
                return std::ptr::null_mut();
            };
            let (old_total, new_total) = (old_layout.size(), new_layout.size());
            let nn = NonNull::new_unchecked(block);
            if new_total <= old_total {
                if new_total < old_total {
                    self.talc().shrink(nn, old_layout, new_total);
                    self.heap.sub_used(old_total - new_total);
                }
                block.cast::<usize>().write(new_size);
                return ptr;
            }
            if !self.heap.admit(new_total - old_total) {
                return std::ptr::null_mut();
            }
            match self.talc().grow(nn, old_layout, new_total) {
                Ok(p) => {
                    self.heap.add_used(new_total - old_total);
                    self.mark(p.as_ptr() as usize + new_total);
                    p.as_ptr().cast::<usize>().write(new_size);
                    p.as_ptr().add(HEADER)
                }
                Err(()) => {
                    self.heap.record_refusal();
                    std::ptr::null_mut()
                }
            }
        }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            return 0;
        }
        // SAFETY: the caller guarantees `ptr` came from this allocator: its header holds the size.
        unsafe { ptr.sub(HEADER).cast::<usize>().read() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_brings_back_the_image_and_clears_the_rest() {
        let arena = Arena::new(64 << 20).expect("arena");
        let heap = Heap::new(usize::MAX);
        let mut a = arena.allocator(heap.clone());
        let p = a.alloc(100);
        assert!(!p.is_null());
        // SAFETY: 100 usable bytes.
        unsafe { std::ptr::write_bytes(p, 7, 100) };
        let image = arena.snapshot(None);
        let used = heap.used();
        // A "call": overwrite, allocate a lot beyond the image, free the first block.
        let big = a.alloc(3 << 20);
        assert!(!big.is_null());
        // SAFETY: the blocks are live.
        unsafe {
            std::ptr::write_bytes(big, 0x55, 3 << 20);
            std::ptr::write_bytes(p, 9, 100);
            a.dealloc(p);
        }
        assert!(arena.top() > image.len());
        let dirty_top = arena.top();
        arena.restore(&image);
        heap.set_used(used);
        // SAFETY: the image's block is live again (the allocator state was restored with it).
        unsafe {
            assert!(std::slice::from_raw_parts(p, 100).iter().all(|&b| b == 7));
            let rest = std::slice::from_raw_parts(
                arena.base.as_ptr().add(image.len()),
                dirty_top - image.len(),
            );
            assert!(
                rest.iter().all(|&b| b == 0),
                "bytes beyond the image are cleared"
            );
        }
        assert_eq!(arena.top(), image.len());
        // The allocator works on after the restore.
        let q = a.alloc(1000);
        assert!(!q.is_null());
        // SAFETY: live block.
        unsafe { a.dealloc(q) };
    }

    #[test]
    fn the_limit_is_exact_and_recorded() {
        let arena = Arena::new(64 << 20).expect("arena");
        let heap = Heap::new(1 << 20);
        let mut a = arena.allocator(heap.clone());
        assert!(a.alloc(2 << 20).is_null());
        assert!(heap.refused());
        heap.clear_refused();
        let p = a.alloc(512 << 10);
        assert!(!p.is_null());
        // SAFETY: live block; grow beyond the limit is refused and leaves it intact.
        unsafe {
            assert!(a.realloc(p, 2 << 20).is_null());
            assert!(heap.refused());
            assert_eq!(ArenaAllocator::usable_size(p), 512 << 10);
            a.dealloc(p);
        }
        assert_eq!(heap.used(), 0);
    }

    #[test]
    fn the_reservation_is_a_hard_end() {
        let arena = Arena::new(8 << 20).expect("arena");
        let heap = Heap::new(usize::MAX);
        let mut a = arena.allocator(heap.clone());
        let mut n = 0;
        while !a.alloc(1 << 20).is_null() {
            n += 1;
            assert!(n < 16, "an 8 MiB arena cannot hold 16 MiB");
        }
        assert!(heap.refused());
    }
}
