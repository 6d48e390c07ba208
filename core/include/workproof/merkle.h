/* SPDX-License-Identifier: MIT */
/**
 * \file merkle.h
 * \brief RFC 6962 Merkle trees: tree hash, inclusion (audit) proofs,
 *        consistency proofs, their RFC 9162 verifiers and an append-only
 *        incremental builder with O(log n) state.
 *
 * Hashing (RFC 6962 §2.1, SHA-256):
 *   leaf hash  = SHA-256(0x00 || data)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two
 *                strictly less than n.
 *
 * Proofs are arrays of 32-byte hashes laid out contiguously (count * 32
 * bytes), in the RFC order: the hash nearest to the leaf (or to the old
 * root) first. Proof generators work on precomputed LEAF HASHES (what the
 * uptime epochs keep); hash data items first with wp_merkle_leaf_hash().
 *
 * Nothing here allocates: every tree walk is iterative with a fixed stack
 * of at most 64 entries (a tree cannot be deeper than 64 levels with a
 * 64-bit size).
 */
#ifndef WORKPROOF_MERKLE_H
#define WORKPROOF_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "workproof/hash.h"

#define WP_MERKLE_HASH_LEN 32
/** Upper bound of wp_merkle_proof_max() for any 64-bit tree size. */
#define WP_MERKLE_MAX_PROOF 65
/** Entries in a builder's stack of perfect-subtree roots. */
#define WP_MERKLE_STACK 64

/** Verifier answers (a malformed proof is a negative wp_err, WP_EINVAL). */
#define WP_MERKLE_MISMATCH 0
#define WP_MERKLE_MATCH 1

/** out = SHA-256(0x00 || data[0..len)). out may not alias data. */
void wp_merkle_leaf_hash(const void *data, size_t len, uint8_t out[WP_MERKLE_HASH_LEN]);

/** out = SHA-256(0x01 || left || right). out may alias left or right. */
void wp_merkle_node_hash(const uint8_t left[WP_MERKLE_HASH_LEN],
			 const uint8_t right[WP_MERKLE_HASH_LEN],
			 uint8_t out[WP_MERKLE_HASH_LEN]);

/** out = SHA-256(""), the root of the empty tree. */
void wp_merkle_empty_root(uint8_t out[WP_MERKLE_HASH_LEN]);

/**
 * \brief Root over n leaf DATA items (leaf hashes taken here).
 * \param leaves n (pointer, length) pairs, read only, not retained; may be
 *        NULL when n is 0.
 * Never fails; no allocation.
 */
void wp_merkle_root(const struct wp_iov *leaves, size_t n, uint8_t out[WP_MERKLE_HASH_LEN]);

/**
 * \brief Root over n precomputed leaf hashes.
 * \param hashes n * 32 bytes, contiguous, read only; may be NULL when n is 0.
 * Never fails; no allocation. The fast path of the uptime epochs.
 */
void wp_merkle_root_hashes(const uint8_t *hashes, size_t n, uint8_t out[WP_MERKLE_HASH_LEN]);

/**
 * \brief Largest number of hashes an inclusion or consistency proof can
 *        hold for a tree of n leaves (ceil(log2 n) + 1, at most
 *        WP_MERKLE_MAX_PROOF); size proof buffers with it (times 32 bytes).
 */
size_t wp_merkle_proof_max(uint64_t n);

/**
 * \brief Inclusion proof (RFC 6962 §2.1.1 PATH) of leaf index of n.
 * \param hashes the n leaf hashes (n * 32 bytes, contiguous), read only.
 * \param proof caller's buffer of cap hashes (cap * 32 bytes); on success
 *        holds *count hashes, leaf level first.
 * \return WP_OK, WP_ERANGE if index >= n, WP_ENOSPC if cap is too small
 *         (wp_merkle_proof_max(n) is always enough). No allocation.
 */
int wp_merkle_inclusion_proof(const uint8_t *hashes, size_t n, size_t index,
			      uint8_t *proof, size_t cap, size_t *count);

/**
 * \brief Verify an inclusion proof (RFC 9162 §2.1.3.2).
 * \param proof count hashes (count * 32 bytes), read only.
 * \return WP_MERKLE_MATCH when the proof takes leaf_hash at index in a tree
 *         of n leaves to root; WP_MERKLE_MISMATCH when the proof is well
 *         formed but yields another root; WP_EINVAL when it is malformed
 *         (index >= n, or too many or too few hashes for index and n).
 */
int wp_merkle_verify_inclusion(const uint8_t leaf_hash[WP_MERKLE_HASH_LEN],
			       uint64_t index, uint64_t n,
			       const uint8_t *proof, size_t count,
			       const uint8_t root[WP_MERKLE_HASH_LEN]);

/**
 * \brief Consistency proof (RFC 6962 §2.1.2 PROOF/SUBPROOF) between the
 *        first m leaves and all n leaves.
 * The proof is empty for m == 0 and for m == n (RFC 9162 §2.1.4.1).
 * \param hashes the n leaf hashes (n * 32 bytes, contiguous), read only.
 * \param proof caller's buffer of cap hashes; on success *count hashes.
 * \return WP_OK, WP_ERANGE if m > n, WP_ENOSPC if cap is too small.
 */
int wp_merkle_consistency_proof(const uint8_t *hashes, size_t n, size_t m,
				uint8_t *proof, size_t cap, size_t *count);

/**
 * \brief Verify a consistency proof (RFC 9162 §2.1.4.2) that the tree of m
 *        leaves with root_m is a prefix of the tree of n leaves with root_n.
 *
 * Edge cases: m == n matches iff the proof is empty and the roots are
 * equal; m == 0 matches iff the proof is empty and root_m is the empty-tree
 * root SHA-256("") (the only root a tree of size 0 can have; for n == 0
 * root_n must be that root too).
 * \return WP_MERKLE_MATCH, WP_MERKLE_MISMATCH (well formed, a root differs)
 *         or WP_EINVAL (m > n, or wrong number of hashes for m and n).
 */
int wp_merkle_verify_consistency(uint64_t m, uint64_t n,
				 const uint8_t root_m[WP_MERKLE_HASH_LEN],
				 const uint8_t root_n[WP_MERKLE_HASH_LEN],
				 const uint8_t *proof, size_t count);

/**
 * Incremental builder ("compact range" over [0, size)): the roots of the
 * perfect subtrees that make up the tree so far, largest (leftmost) first,
 * one per set bit of size. Plain value type: no allocation, nothing to
 * free, memory independent of the number of leaves; copy it to fork a tree.
 */
struct wp_merkle_builder {
	uint64_t size;                                   /**< leaves appended */
	unsigned depth;                                  /**< entries in stack */
	uint8_t stack[WP_MERKLE_STACK][WP_MERKLE_HASH_LEN];
};

/** Reset b to the empty tree. */
void wp_merkle_builder_init(struct wp_merkle_builder *b);

/**
 * \brief Append one leaf by its leaf hash (32 bytes, copied).
 * \return WP_OK, or WP_ERANGE when the tree already holds 2^64 - 1 leaves.
 */
int wp_merkle_builder_append_hash(struct wp_merkle_builder *b,
				  const uint8_t leaf_hash[WP_MERKLE_HASH_LEN]);

/** \brief Append one leaf by its data (hashed here, not retained).
 *  \return as wp_merkle_builder_append_hash(). */
int wp_merkle_builder_append(struct wp_merkle_builder *b, const void *data, size_t len);

/** The root of the leaves appended so far (SHA-256("") when none); b is
 *  not changed, so appending may continue. */
void wp_merkle_builder_root(const struct wp_merkle_builder *b, uint8_t out[WP_MERKLE_HASH_LEN]);

#endif
