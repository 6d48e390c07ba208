/* SPDX-License-Identifier: MIT */
/*
 * The tree hashes are tiny fixed-shape SHA-256 messages (a 33-byte leaf of
 * a heartbeat hash is one compression, a 65-byte node two), where the EVP
 * call itself (init, update, final: ~35 ns) costs as much as the SHA-NI
 * compression (~44 ns). So the hot path pads the blocks by hand and runs
 * libcrypto's own compression function, SHA256_Transform (the same SHA-NI
 * code EVP ends in): a 2^20-leaf root goes ~1.5x faster, measured with
 * spec/bench/bench_merkle.c. SHA256_Transform is deprecated API in
 * OpenSSL 3, hence the define, which must precede every OpenSSL header; an
 * OpenSSL built without deprecated API gets the EVP path (wp_sha256).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/hash.h"
#include "workproof/merkle.h"

#define HLEN WP_MERKLE_HASH_LEN

#ifndef OPENSSL_NO_DEPRECATED_3_0
#define MERKLE_TRANSFORM 1
#else
#define MERKLE_TRANSFORM 0
#endif

/*
 * Leaf data up to this size is copied behind the 0x00 prefix so SHA-256
 * sees one contiguous message (one block when 1 + len <= 55, else one EVP
 * update instead of two).
 */
#define LEAF_COPY_MAX 128
/* Largest message that pads into a single 64-byte block. */
#define ONE_BLOCK_MAX 55

/* A subtree [off, off + len) whose root goes into a proof. */
struct span {
	size_t off;
	size_t len;
};

#if MERKLE_TRANSFORM
/* FIPS 180-4 initial hash value. */
static const uint32_t sha256_iv[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/*
 * The second block of every node message: byte 0 is the last byte of the
 * right child (filled in per call), then the 0x80 pad byte, zeros and the
 * message length, 65 * 8 = 520 = 0x208 bits, big-endian.
 */
static const uint8_t node_tail[64] = { [1] = 0x80, [62] = 0x02, [63] = 0x08 };

/* SHA-256 of nblocks already padded blocks. Only c.h is set: it is all
 * SHA256_Transform reads and writes (a full SHA256_Init or context copy
 * costs a fifth of the hash at these sizes). */
static void compress(const uint8_t *blk, size_t nblocks, uint8_t out[HLEN])
{
	SHA256_CTX c;

	memcpy(c.h, sha256_iv, sizeof(sha256_iv));
	for (size_t i = 0; i < nblocks; i++)
		SHA256_Transform(&c, blk + 64 * i);
	for (int i = 0; i < 8; i++) {
		uint32_t w = __builtin_bswap32((uint32_t)c.h[i]);   /* big-endian out */

		memcpy(out + 4 * i, &w, 4);
	}
}
#endif

void wp_merkle_leaf_hash(const void *data, size_t len, uint8_t out[HLEN])
{
#if MERKLE_TRANSFORM
	if (1 + len <= ONE_BLOCK_MAX) {
		uint8_t blk[64];
		uint64_t bits = __builtin_bswap64((uint64_t)(1 + len) * 8);

		memset(blk, 0, sizeof(blk));
		if (len)
			memcpy(blk + 1, data, len);
		blk[1 + len] = 0x80;
		memcpy(blk + 56, &bits, 8);
		compress(blk, 1, out);
		return;
	}
#endif
	if (len <= LEAF_COPY_MAX) {
		uint8_t buf[1 + LEAF_COPY_MAX];

		buf[0] = 0x00;
		if (len)
			memcpy(buf + 1, data, len);
		wp_sha256(buf, 1 + len, out);
	} else {
		static const uint8_t prefix = 0x00;
		struct wp_iov parts[2] = { { &prefix, 1 }, { data, len } };

		wp_sha256_v(parts, 2, out);
	}
}

void wp_merkle_node_hash(const uint8_t left[HLEN], const uint8_t right[HLEN],
			 uint8_t out[HLEN])
{
	/* One contiguous message; the copy also makes out free to alias
	 * either input. */
#if MERKLE_TRANSFORM
	uint8_t buf[128];

	memcpy(buf + 64, node_tail, 64);   /* first: right's last byte lands on it */
	buf[0] = 0x01;
	memcpy(buf + 1, left, HLEN);
	memcpy(buf + 1 + HLEN, right, HLEN);
	compress(buf, 2, out);
#else
	uint8_t buf[1 + 2 * HLEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, HLEN);
	memcpy(buf + 1 + HLEN, right, HLEN);
	wp_sha256(buf, sizeof(buf), out);
#endif
}

void wp_merkle_empty_root(uint8_t out[HLEN])
{
	wp_sha256("", 0, out);
}

/* ---- incremental builder (compact range) -------------------------------- */

void wp_merkle_builder_init(struct wp_merkle_builder *b)
{
	b->size = 0;
	b->depth = 0;
}

int wp_merkle_builder_append_hash(struct wp_merkle_builder *b, const uint8_t leaf_hash[HLEN])
{
	uint8_t h[HLEN];
	uint64_t s = b->size;

	if (s == UINT64_MAX)
		return WP_ERANGE;
	memcpy(h, leaf_hash, HLEN);
	/*
	 * The stack holds one perfect subtree per set bit of size. Adding a
	 * leaf is a binary increment: every trailing 1 bit is a subtree of
	 * the same height as the carry, so they merge (left = older).
	 */
	while (s & 1) {
		b->depth--;
		wp_merkle_node_hash(b->stack[b->depth], h, h);
		s >>= 1;
	}
	memcpy(b->stack[b->depth], h, HLEN);
	b->depth++;
	b->size++;
	return WP_OK;
}

int wp_merkle_builder_append(struct wp_merkle_builder *b, const void *data, size_t len)
{
	uint8_t h[HLEN];

	if (b->size == UINT64_MAX)
		return WP_ERANGE;
	wp_merkle_leaf_hash(data, len, h);
	return wp_merkle_builder_append_hash(b, h);
}

void wp_merkle_builder_root(const struct wp_merkle_builder *b, uint8_t out[HLEN])
{
	uint8_t r[HLEN];

	if (b->depth == 0) {
		wp_merkle_empty_root(out);
		return;
	}
	/*
	 * RFC 6962 splits at the largest power of two below n, so the tree
	 * is the perfect subtrees of n's binary expansion, largest on the
	 * left, joined right to left: H(P0, H(P1, H(P2, ...))).
	 */
	memcpy(r, b->stack[b->depth - 1], HLEN);
	for (unsigned i = b->depth - 1; i-- > 0;)
		wp_merkle_node_hash(b->stack[i], r, r);
	memcpy(out, r, HLEN);
}

/* ---- roots -------------------------------------------------------------- */

void wp_merkle_root_hashes(const uint8_t *hashes, size_t n, uint8_t out[HLEN])
{
	struct wp_merkle_builder b;

	/* The builder does exactly the n - 1 node hashes a level-by-level
	 * pass would, with 2 KiB of stack instead of a scratch buffer. */
	wp_merkle_builder_init(&b);
	for (size_t i = 0; i < n; i++)
		wp_merkle_builder_append_hash(&b, hashes + i * HLEN);
	wp_merkle_builder_root(&b, out);
}

void wp_merkle_root(const struct wp_iov *leaves, size_t n, uint8_t out[HLEN])
{
	struct wp_merkle_builder b;

	wp_merkle_builder_init(&b);
	for (size_t i = 0; i < n; i++)
		wp_merkle_builder_append(&b, leaves[i].base, leaves[i].len);
	wp_merkle_builder_root(&b, out);
}

/* ---- proofs ------------------------------------------------------------- */

/* Largest power of two strictly less than n (n >= 2): RFC 6962's k. */
static size_t split(size_t n)
{
	return (size_t)1 << (63 - __builtin_clzll((unsigned long long)(n - 1)));
}

size_t wp_merkle_proof_max(uint64_t n)
{
	/* ceil(log2 n) levels, plus the one subtree root a consistency proof
	 * may add when the old tree's root is not a node of the new tree. */
	if (n <= 1)
		return 1;
	return (size_t)(64 - __builtin_clzll(n - 1)) + 1;
}

/*
 * Write the roots of the collected subtrees: first the optional `first`
 * span, then spans[] from the deepest (last collected) to the top, which
 * is the order PATH and SUBPROOF produce (the recursive part comes first,
 * the sibling at this level last).
 */
static int emit(const uint8_t *hashes, const struct span *first,
		const struct span *spans, size_t nspans,
		uint8_t *proof, size_t cap, size_t *count)
{
	size_t total = nspans + (first ? 1 : 0), j = 0;

	if (total > cap)
		return WP_ENOSPC;
	if (first)
		wp_merkle_root_hashes(hashes + first->off * HLEN, first->len, proof + HLEN * j++);
	for (size_t i = nspans; i-- > 0;)
		wp_merkle_root_hashes(hashes + spans[i].off * HLEN, spans[i].len,
				      proof + HLEN * j++);
	*count = total;
	return WP_OK;
}

int wp_merkle_inclusion_proof(const uint8_t *hashes, size_t n, size_t index,
			      uint8_t *proof, size_t cap, size_t *count)
{
	struct span spans[WP_MERKLE_MAX_PROOF];
	size_t off = 0, size = n, idx = index, nspans = 0;

	if (index >= n)
		return WP_ERANGE;
	/* PATH(m, D[n]) walked top-down: each level keeps the half holding
	 * the leaf and records the other half, whose root is the proof node.
	 * The size at least halves per level, so at most 64 levels. */
	while (size > 1) {
		size_t k = split(size);

		if (idx < k) {
			spans[nspans++] = (struct span){ off + k, size - k };
			size = k;
		} else {
			spans[nspans++] = (struct span){ off, k };
			off += k;
			idx -= k;
			size -= k;
		}
	}
	return emit(hashes, NULL, spans, nspans, proof, cap, count);
}

int wp_merkle_consistency_proof(const uint8_t *hashes, size_t n, size_t m,
				uint8_t *proof, size_t cap, size_t *count)
{
	struct span spans[WP_MERKLE_MAX_PROOF], last;
	size_t off = 0, size = n, mm = m, nspans = 0;
	int have_root = 1, with_last = 0;

	if (m > n)
		return WP_ERANGE;
	if (m == 0 || m == n) {
		*count = 0;
		return WP_OK;
	}
	/*
	 * SUBPROOF(m, D[n], b) walked top-down. Sizes strictly decrease and
	 * mm stays >= 1, so the walk ends at mm == size; there the subtree
	 * root goes in first unless it is the old root itself (b true), which
	 * the verifier already has.
	 */
	for (;;) {
		size_t k;

		if (mm == size) {
			if (!have_root) {
				last = (struct span){ off, mm };
				with_last = 1;
			}
			break;
		}
		k = split(size);
		if (mm <= k) {
			spans[nspans++] = (struct span){ off + k, size - k };
			size = k;
		} else {
			spans[nspans++] = (struct span){ off, k };
			off += k;
			mm -= k;
			size -= k;
			have_root = 0;
		}
	}
	return emit(hashes, with_last ? &last : NULL, spans, nspans, proof, cap, count);
}

/* ---- verifiers (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------- */

static int same(const uint8_t a[HLEN], const uint8_t b[HLEN])
{
	return wp_memeq_ct(a, b, HLEN) == 0;
}

int wp_merkle_verify_inclusion(const uint8_t leaf_hash[HLEN], uint64_t index, uint64_t n,
			       const uint8_t *proof, size_t count, const uint8_t root[HLEN])
{
	uint64_t fn = index, sn;
	uint8_t r[HLEN];

	if (index >= n)
		return WP_EINVAL;
	sn = n - 1;
	memcpy(r, leaf_hash, HLEN);
	for (size_t i = 0; i < count; i++) {
		const uint8_t *p = proof + i * HLEN;

		if (sn == 0)
			return WP_EINVAL;       /* more hashes than levels */
		if ((fn & 1) || fn == sn) {
			/* p is a left sibling; when fn == sn with LSB clear,
			 * the node is the last of an unbalanced level and is
			 * promoted unchanged up to the level where it is a
			 * right child again. */
			wp_merkle_node_hash(p, r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			wp_merkle_node_hash(r, p, r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return WP_EINVAL;               /* fewer hashes than levels */
	return same(r, root) ? WP_MERKLE_MATCH : WP_MERKLE_MISMATCH;
}

int wp_merkle_verify_consistency(uint64_t m, uint64_t n,
				 const uint8_t root_m[HLEN], const uint8_t root_n[HLEN],
				 const uint8_t *proof, size_t count)
{
	uint64_t fn, sn;
	uint8_t fr[HLEN], sr[HLEN];
	size_t i;

	if (m > n)
		return WP_EINVAL;
	if (m == 0) {
		uint8_t empty[HLEN];
		int ok;

		/* Every tree extends the empty one, but only if the claimed
		 * old root really is the empty-tree root (and, for n == 0,
		 * the new one too). */
		if (count)
			return WP_EINVAL;
		wp_merkle_empty_root(empty);
		ok = same(root_m, empty) & (n > 0 || same(root_n, empty));
		return ok ? WP_MERKLE_MATCH : WP_MERKLE_MISMATCH;
	}
	if (m == n) {
		if (count)
			return WP_EINVAL;
		return same(root_m, root_n) ? WP_MERKLE_MATCH : WP_MERKLE_MISMATCH;
	}
	if (count == 0)
		return WP_EINVAL;
	/* When m is a power of two the old root is a node of the new tree
	 * and is left out of the proof: start from it (step 2 prepends it). */
	if ((m & (m - 1)) == 0) {
		memcpy(fr, root_m, HLEN);
		i = 0;
	} else {
		memcpy(fr, proof, HLEN);
		i = 1;
	}
	memcpy(sr, fr, HLEN);
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < count; i++) {
		const uint8_t *c = proof + i * HLEN;

		if (sn == 0)
			return WP_EINVAL;
		if ((fn & 1) || fn == sn) {
			wp_merkle_node_hash(c, fr, fr);
			wp_merkle_node_hash(c, sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			wp_merkle_node_hash(sr, c, sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return WP_EINVAL;
	/* Both comparisons always run: no early exit on the first root. */
	return (same(fr, root_m) & same(sr, root_n)) ? WP_MERKLE_MATCH : WP_MERKLE_MISMATCH;
}
