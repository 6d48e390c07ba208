/* SPDX-License-Identifier: MIT */
/*
 * The Lua runtime's allocator: a capped, deterministic heap in one
 * fixed-address mapping.
 *
 * Why not malloc with a counter: the task's output must be the same on
 * every run, and Lua exposes addresses (tostring({}) prints one, and the
 * iteration order of tables keyed by tables or functions follows them).
 * glibc's heap moves with ASLR. Here every address is a pure function of
 * the sequence of allocations, which is itself deterministic (the GC is
 * driven by allocation counts, the JIT is off).
 *
 * Layout: boundary-tagged chunks carved from the bottom of the mapping
 * (dlmalloc style, much reduced). A chunk is a 16-byte header
 * { prev, head } followed by its payload; head = size | INUSE | PREV_INUSE;
 * prev (the previous chunk's size) is valid only while that chunk is free.
 * Free chunks sit in segregated LIFO lists (exact 16-byte classes up to
 * 1 KiB, then four classes per power of two) and are coalesced at once, so
 * two free chunks are never adjacent and the chunk just below `top` (the
 * untouched rest of the mapping) is always in use.
 *
 * The cap counts live chunk bytes (headers included): an allocation that
 * would pass it is refused, Lua raises "not enough memory" and the failed
 * flag tells the runtime to report MEMORY_LIMIT even if the task caught the
 * error with pcall. The mapping is 1.5x the cap so fragmentation does not
 * fail a task that fits; it is MAP_NORESERVE, pages are committed on touch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "worker.h"

/* 32 TiB: below the 47-bit limit LuaJIT's GC64 needs, above the PIE/heap/
 * mmap regions of a normal x86-64/arm64 process, and above ASan's shadow
 * (which ends near 0x10007fff8000), so the sanitizer build maps it too. */
#define ARENA_BASE ((uintptr_t)0x200000000000ull)
#define HDR 16u
#define MIN_CHUNK 32u
#define SMALL_MAX 1024u
#define NSMALL (SMALL_MAX / 16 - 1) /* bins 0..62: sizes 32..1024 */
#define NBINS 192u

#define INUSE ((size_t)1)
#define PREV_INUSE ((size_t)2)
#define FLAGS ((size_t)15)

struct chunk {
	size_t prev;
	size_t head;
	struct chunk *fd, *bk; /* free chunks only: overlays the payload */
};

struct wk_arena {
	char *base, *top, *end;
	size_t cap, live, peak, span;
	int failed;
	uint64_t binmap[NBINS / 64];
	struct chunk *bins[NBINS];
};

/* One task per process: the arena is a singleton. */
static struct wk_arena the_arena;

static inline size_t csize(const struct chunk *c)
{
	return c->head & ~FLAGS;
}

static inline struct chunk *at(void *p, size_t off)
{
	return (struct chunk *)((char *)p + off);
}

static unsigned bin_index(size_t size)
{
	unsigned b, i;

	if (size <= SMALL_MAX)
		return (unsigned)(size / 16 - 2);
	b = 63u - (unsigned)__builtin_clzll(size); /* floor(log2), >= 10 */
	i = NSMALL + (b - 10) * 4 + (unsigned)((size >> (b - 2)) & 3);
	return i < NBINS ? i : NBINS - 1;
}

static void bin_insert(struct wk_arena *a, struct chunk *c)
{
	unsigned i = bin_index(csize(c));

	c->bk = NULL;
	c->fd = a->bins[i];
	if (c->fd)
		c->fd->bk = c;
	a->bins[i] = c;
	a->binmap[i / 64] |= 1ull << (i % 64);
}

static void bin_unlink(struct wk_arena *a, struct chunk *c)
{
	unsigned i = bin_index(csize(c));

	if (c->bk)
		c->bk->fd = c->fd;
	else
		a->bins[i] = c->fd;
	if (c->fd)
		c->fd->bk = c->bk;
	if (!a->bins[i])
		a->binmap[i / 64] &= ~(1ull << (i % 64));
}

/* First non-empty bin with index >= i, or -1. */
static int bin_next(const struct wk_arena *a, unsigned i)
{
	unsigned w;

	while (i < NBINS) {
		uint64_t m = a->binmap[i / 64] >> (i % 64);

		if (m)
			return (int)(i + (unsigned)__builtin_ctzll(m));
		w = i / 64 + 1;
		i = w * 64;
	}
	return -1;
}

/* Make c (size bytes, previous chunk in use, not adjacent to top) a free
 * chunk: tag it, write its footer and file it. */
static void make_free(struct wk_arena *a, struct chunk *c, size_t size)
{
	struct chunk *n = at(c, size);

	c->head = size | PREV_INUSE;
	n->prev = size;
	n->head &= ~PREV_INUSE;
	bin_insert(a, c);
}

/* Return chunk c (in use, accounting already done) to the free space,
 * coalescing with its neighbours and the top. */
static void release(struct wk_arena *a, struct chunk *c)
{
	size_t size = csize(c);
	struct chunk *n;

	if (!(c->head & PREV_INUSE)) {
		struct chunk *p = (struct chunk *)((char *)c - c->prev);

		bin_unlink(a, p);
		size += csize(p);
		c = p;
	}
	n = at(c, size);
	if ((char *)n == a->top) {
		a->top = (char *)c;
		return;
	}
	if (!(n->head & INUSE)) {
		bin_unlink(a, n);
		size += csize(n);
	}
	make_free(a, c, size);
}

/* Bytes of chunk for a request of n bytes; 0 if absurd. */
static size_t chunk_for(size_t n)
{
	if (n > ((size_t)1 << 46))
		return 0;
	n = (n + HDR + 15) & ~(size_t)15;
	return n < MIN_CHUNK ? MIN_CHUNK : n;
}

static void *arena_malloc(struct wk_arena *a, size_t size)
{
	struct chunk *c = NULL;
	unsigned i = bin_index(size);
	int j;

	if (a->live + size > a->cap)
		return NULL;
	if (i < NSMALL) {
		c = a->bins[i];
	} else {
		for (c = a->bins[i]; c && csize(c) < size; c = c->fd)
			;
	}
	if (!c && (j = bin_next(a, i + 1)) >= 0)
		c = a->bins[j]; /* any chunk of a higher bin is large enough */
	if (c) {
		size_t cs = csize(c);

		bin_unlink(a, c);
		if (cs - size >= MIN_CHUNK) {
			c->head = size | INUSE | PREV_INUSE;
			make_free(a, at(c, size), cs - size);
		} else {
			size = cs;
			c->head = size | INUSE | PREV_INUSE;
			at(c, size)->head |= PREV_INUSE;
		}
	} else {
		if ((size_t)(a->end - a->top) < size)
			return NULL;
		c = (struct chunk *)a->top;
		a->top += size;
		c->head = size | INUSE | PREV_INUSE;
	}
	a->live += size;
	if (a->live > a->peak)
		a->peak = a->live;
	return (char *)c + HDR;
}

static void arena_free(struct wk_arena *a, void *p)
{
	struct chunk *c = (struct chunk *)((char *)p - HDR);

	a->live -= csize(c);
	release(a, c);
}

static void *arena_realloc(struct wk_arena *a, void *p, size_t size)
{
	struct chunk *c = (struct chunk *)((char *)p - HDR), *n;
	size_t cs = csize(c), flags = c->head & FLAGS;
	void *np;

	if (size <= cs) { /* shrink in place: never fails (Lua relies on it) */
		if (cs - size >= MIN_CHUNK) {
			struct chunk *r = at(c, size);

			c->head = size | flags;
			r->head = (cs - size) | INUSE | PREV_INUSE;
			a->live -= cs - size;
			release(a, r);
		}
		return p;
	}
	if (a->live + (size - cs) > a->cap)
		return NULL;
	n = at(c, cs);
	if ((char *)n == a->top) {
		if ((size_t)(a->end - (char *)c) >= size) {
			a->top = (char *)c + size;
			c->head = size | flags;
			a->live += size - cs;
			goto grown;
		}
	} else if (!(n->head & INUSE) && cs + csize(n) >= size) {
		size_t total = cs + csize(n);

		bin_unlink(a, n);
		if (total - size >= MIN_CHUNK) {
			c->head = size | flags;
			make_free(a, at(c, size), total - size);
		} else {
			size = total;
			c->head = size | flags;
			at(c, size)->head |= PREV_INUSE;
		}
		a->live += size - cs;
		goto grown;
	}
	np = arena_malloc(a, size);
	if (!np)
		return NULL;
	memcpy(np, p, cs - HDR);
	arena_free(a, p);
	return np;
grown:
	if (a->live > a->peak)
		a->peak = a->live;
	return p;
}

struct wk_arena *wk_arena_new(size_t cap)
{
	struct wk_arena *a = &the_arena;
	size_t span = cap + cap / 2 + ((size_t)1 << 20);
	void *m;

	span = (span + 0xfffff) & ~(size_t)0xfffff;
	m = mmap((void *)ARENA_BASE, span, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if ((uintptr_t)m != ARENA_BASE) { /* a kernel without FIXED_NOREPLACE */
		munmap(m, span);
		errno = EEXIST;
		return NULL;
	}
	memset(a, 0, sizeof(*a));
	a->base = a->top = m;
	a->end = (char *)m + span;
	a->cap = cap;
	a->span = span;
	return a;
}

void *wk_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct wk_arena *a = ud;
	size_t size;
	void *p;

	(void)osize; /* the chunk header knows the size */
	if (nsize == 0) {
		if (ptr)
			arena_free(a, ptr);
		return NULL;
	}
	size = chunk_for(nsize);
	if (!size)
		p = NULL;
	else if (!ptr)
		p = arena_malloc(a, size);
	else
		p = arena_realloc(a, ptr, size);
	if (!p)
		a->failed = 1;
	return p;
}

int wk_arena_failed(const struct wk_arena *a)
{
	return a->failed;
}

size_t wk_arena_live(const struct wk_arena *a)
{
	return a->live;
}

size_t wk_arena_peak(const struct wk_arena *a)
{
	return a->peak;
}

size_t wk_arena_span(const struct wk_arena *a)
{
	return a->span;
}

int wk_arena_check(const struct wk_arena *a)
{
	const char *p = a->base;
	size_t live = 0, nfree = 0, nbinned = 0;
	int prev_inuse = 1;
	unsigned i;

	while (p < a->top) {
		const struct chunk *c = (const struct chunk *)p;
		size_t s = csize(c);

		if (s < MIN_CHUNK || s % 16 || p + s > a->top)
			return -1;
		if (!!(c->head & PREV_INUSE) != prev_inuse)
			return -2;
		if (c->head & INUSE) {
			live += s;
		} else {
			if (!prev_inuse || p + s == a->top)
				return -3; /* adjacent free chunks, or free next to top */
			if (((const struct chunk *)(p + s))->prev != s)
				return -4;
			nfree++;
		}
		prev_inuse = !!(c->head & INUSE);
		p += s;
	}
	if (live != a->live)
		return -5;
	for (i = 0; i < NBINS; i++) {
		const struct chunk *c;

		if (!!a->bins[i] != !!(a->binmap[i / 64] & (1ull << (i % 64))))
			return -6;
		for (c = a->bins[i]; c; c = c->fd) {
			if (c->head & INUSE || bin_index(csize(c)) != i)
				return -7;
			nbinned++;
		}
	}
	return nbinned == nfree ? 0 : -8;
}
