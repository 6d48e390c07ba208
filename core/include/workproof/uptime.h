/* SPDX-License-Identifier: MIT */
/**
 * \file uptime.h
 * \brief Proof of uptime: XE-compatible dual-signed heartbeats, their chain
 *        verifier, Merkle epochs (E beats, default 60), chained claims (K
 *        epochs, default 24; 194 bytes signed), selective-disclosure proofs,
 *        key-rotation records and timekeeper attestation digests.
 *
 * Every byte layout here is written down in docs/uptime.md. Summary:
 *
 *   payload      = "leaseId:sequence:timestamp:prevHash" (hex lowercase,
 *                  decimals without leading zeros, genesis prevHash = 64 '0')
 *   M            = payload || V   (V: the VDF block, empty when VDF is off)
 *   providerSig  = Ed25519(provider, SHA-256(M))
 *   consumerSig  = Ed25519(consumer, SHA-256(M || providerSig))
 *   hash         = SHA-256(M || providerSig || consumerSig)
 *
 * With V empty this is exactly the XE heartbeat (docs/uptime.md §1).
 *
 * Heartbeat building, provider signing and consumer countersigning are three
 * separate calls because the two parties are different processes: the
 * provider builds and signs, ships the beat, the consumer countersigns.
 *
 * Nothing here keeps global state; every function is reentrant and may run
 * on a worker thread. Functions that take secret keys do not keep copies.
 */
#ifndef WORKPROOF_UPTIME_H
#define WORKPROOF_UPTIME_H

#include <stddef.h>
#include <stdint.h>

#define WP_UPTIME_HASH_LEN 32
#define WP_UPTIME_KEY_LEN 32       /**< Ed25519 public key */
#define WP_UPTIME_SECRET_LEN 64    /**< libsodium Ed25519 secret key (seed || pub) */
#define WP_UPTIME_SIG_LEN 64

/** Default, and largest, epoch size E: heartbeats per full epoch. */
#define WP_UPTIME_EPOCH_BEATS 60
/** Default, and largest, claim size K: epochs per full claim. */
#define WP_UPTIME_CLAIM_EPOCHS 24
/** Beats of a full claim at the default sizes, and the most any claim holds. */
#define WP_UPTIME_CLAIM_BEATS (WP_UPTIME_EPOCH_BEATS * WP_UPTIME_CLAIM_EPOCHS)

/** Longest payload: 64 + 1 + 20 + 1 + 19 + 1 + 64 = 170 characters. */
#define WP_HB_PAYLOAD_MAX 170
/** Largest extension (VDF) block a beat may carry. */
#define WP_HB_EXT_MAX 1024
/** Packed beat: 240 fixed bytes, BE16 extension length, extension. */
#define WP_HB_PACKED_FIXED 242

#define WP_UPTIME_EPOCH_RECORD_LEN 132
#define WP_UPTIME_CLAIM_BODY_LEN 130
#define WP_UPTIME_CLAIM_LEN 194
#define WP_UPTIME_CLAIM_VERSION 1
#define WP_UPTIME_CLAIM_FLAG_VDF 0x01  /**< the claimed chain is VDF-hardened */
#define WP_UPTIME_ROTATION_LEN 127
#define WP_UPTIME_PROOF_VERSION 1
#define WP_UPTIME_PROOF_FLAG_EXT 0x01    /**< proof: the beat carries an extension */
#define WP_UPTIME_PROOF_FLAG_SIZES 0x02  /**< proof: non-default sizes E, K follow */
/** Largest encoded disclosure proof (with an extension of WP_HB_EXT_MAX and sizes). */
#define WP_UPTIME_PROOF_MAX (2 + 208 + 2 + WP_HB_EXT_MAX + 2 + 76 + 1 + 6 * 32 + 1 + 5 * 32 + \
			     WP_UPTIME_CLAIM_LEN)

/**
 * The sizes a lease rolls its beats up with: E beats per epoch (1..60) and
 * K epochs per claim (1..24). They are lease parameters, agreed out of band
 * like the keys: epoch records carry firstSequence = index * E, claims
 * firstSequence = index * K * E, but neither the 132-byte record nor the
 * 194-byte claim names E or K, so functions that need them take a pointer
 * to this struct; NULL means the defaults (60, 24), which keep every byte of
 * the formats as they were before sizes were parameters. A size outside its
 * range is WP_ERANGE (or a BAD_FORMAT verdict) wherever one is taken.
 */
struct wp_uptime_sizes {
	uint32_t epoch_beats;   /**< E, 1..WP_UPTIME_EPOCH_BEATS */
	uint32_t claim_epochs;  /**< K, 1..WP_UPTIME_CLAIM_EPOCHS */
};

/** \brief WP_OK when sz is NULL or both sizes are in range, else WP_ERANGE. */
int wp_uptime_sizes_check(const struct wp_uptime_sizes *sz);

/**
 * Why a beat (or a proof) does not verify. WP_HB_OK is 0; the others are
 * positive "answers", not wp_err codes. wp_hb_reason_name() gives the
 * stable upper-case names the Lua layer and the CLI print.
 */
enum wp_hb_reason {
	WP_HB_OK = 0,
	WP_HB_BAD_FORMAT,        /**< a field cannot be a heartbeat (negative time, ext where none allowed ...) */
	WP_HB_LEASE_MISMATCH,    /**< leaseId differs from the chain's */
	WP_HB_BAD_SEQUENCE,      /**< sequence is not previous + 1 (or not the expected first) */
	WP_HB_BROKEN_LINK,       /**< prevHash is not the previous beat's hash (or genesis zero) */
	WP_HB_NO_PROVIDER_KEY,   /**< no provider key range covers the sequence */
	WP_HB_NO_CONSUMER_KEY,   /**< no consumer key range covers the sequence */
	WP_HB_BAD_PROVIDER_SIG,
	WP_HB_BAD_CONSUMER_SIG,
	WP_HB_BAD_HASH,          /**< the stored hash is not SHA-256(M || sigs) */
	WP_HB_BAD_VDF,           /**< VDF block missing, malformed, wrong delay or wrong output */
	WP_HB_BAD_EPOCH_PATH,    /**< proof: the beat is not in the epoch root */
	WP_HB_BAD_CLAIM_PATH,    /**< proof: the epoch hash is not in the claim root */
	WP_HB_BAD_EPOCH,         /**< proof/claim: epoch record inconsistent with the claim */
	WP_HB_BAD_CLAIM_SIG,
	WP_HB_REASON_COUNT
};

/** \brief Stable name of a reason ("BAD_PROVIDER_SIG", ...); static, never NULL. */
const char *wp_hb_reason_name(int reason);

/**
 * One heartbeat. All byte fields are raw (hex only inside the payload).
 * ext/ext_len is the optional VDF block V (borrowed: the caller keeps it
 * alive while the struct is used; NULL/0 when VDF hardening is off).
 */
struct wp_hb {
	uint8_t lease_id[WP_UPTIME_HASH_LEN];
	uint64_t sequence;
	int64_t timestamp;                        /**< Unix nanoseconds, >= 0 */
	uint8_t prev_hash[WP_UPTIME_HASH_LEN];
	uint8_t provider_sig[WP_UPTIME_SIG_LEN];
	uint8_t consumer_sig[WP_UPTIME_SIG_LEN];
	uint8_t hash[WP_UPTIME_HASH_LEN];
	const uint8_t *ext;
	size_t ext_len;
};

/**
 * \brief Fill the unsigned fields of a beat (signatures and hash zeroed,
 *        no extension).
 * \param prev_hash 32 bytes, or NULL for genesis (32 zero bytes).
 * \return WP_OK or WP_EINVAL for a negative timestamp.
 */
int wp_hb_build(struct wp_hb *hb, const uint8_t lease_id[WP_UPTIME_HASH_LEN],
		uint64_t sequence, int64_t timestamp, const uint8_t *prev_hash);

/**
 * \brief Render the payload text into the caller's buffer (not terminated).
 * \param out at least WP_HB_PAYLOAD_MAX bytes.
 * \param len out: bytes written.
 * \return WP_OK or WP_EINVAL for a negative timestamp.
 */
int wp_hb_payload(const struct wp_hb *hb, char *out, size_t *len);

/**
 * \brief Provider step: providerSig = Ed25519(SHA-256(payload || V)).
 * \param secret 64-byte provider secret key, not retained.
 * \return WP_OK, WP_EINVAL (negative timestamp, ext too long), WP_ECRYPTO.
 */
int wp_hb_sign(struct wp_hb *hb, const uint8_t secret[WP_UPTIME_SECRET_LEN]);

/**
 * \brief Consumer step: check providerSig against provider_pub FIRST and
 *        refuse (WP_EPROTO, nothing written) when it does not verify; else
 *        write consumerSig and the final hash.
 * \return WP_OK, WP_EPROTO (provider signature bad), WP_EINVAL, WP_ECRYPTO.
 */
int wp_hb_countersign(struct wp_hb *hb, const uint8_t provider_pub[WP_UPTIME_KEY_LEN],
		      const uint8_t consumer_secret[WP_UPTIME_SECRET_LEN]);

/**
 * \brief out = SHA-256(payload || V || providerSig || consumerSig), the
 *        value the next beat links to (hb->hash is not read).
 * \return WP_OK or WP_EINVAL.
 */
int wp_hb_compute_hash(const struct wp_hb *hb, uint8_t out[WP_UPTIME_HASH_LEN]);

/**
 * \brief Verify one beat on its own: both signatures with the given keys,
 *        the stored hash, and with vdf_t != 0 its VDF block (links and
 *        sequence need the chain verifier).
 * \param vdf_t 0: the beat must carry no extension (else WP_HB_BAD_FORMAT);
 *        else the delay its VDF block must carry and prove.
 * \return a wp_hb_reason: WP_HB_OK, WP_HB_BAD_FORMAT, WP_HB_BAD_PROVIDER_SIG,
 *         WP_HB_BAD_CONSUMER_SIG, WP_HB_BAD_HASH or WP_HB_BAD_VDF.
 */
int wp_hb_verify(const struct wp_hb *hb, const uint8_t provider_pub[WP_UPTIME_KEY_LEN],
		 const uint8_t consumer_pub[WP_UPTIME_KEY_LEN], uint64_t vdf_t);

/**
 * A key that signs the beats with sequence first..last (inclusive; last =
 * UINT64_MAX for "until further notice"). Key rotation is decided in Lua
 * (policies/key_rotation.lua) and handed down as ranges; a per-beat key is
 * a range with first == last.
 */
struct wp_uptime_keyrange {
	uint64_t first;
	uint64_t last;
	uint8_t key[WP_UPTIME_KEY_LEN];
};

/** What the chain verifier expects. Zero-initialise, then set fields. */
struct wp_hb_chain_opts {
	const uint8_t *lease_id;      /**< expected leaseId; NULL: beat 0's */
	const uint8_t *prev_hash;     /**< expected prevHash of beat 0; NULL: 32 zero bytes */
	uint64_t first_sequence;      /**< expected sequence of beat 0 */
	/** key ranges per party, sorted by first, not overlapping; borrowed */
	const struct wp_uptime_keyrange *provider;
	size_t nprovider;
	const struct wp_uptime_keyrange *consumer;
	size_t nconsumer;
	/** VDF hardening: 0 = off (every beat must carry no extension); else
	 *  the delay T every beat's VDF block must carry and prove. */
	uint64_t vdf_t;
};

/** The verdict: reason WP_HB_OK, or the first failure and its index. */
struct wp_hb_chain_result {
	int reason;
	size_t index;
};

/**
 * \brief Verify a chain of n beats: lease id constant, sequence +1 each,
 *        prevHash = previous hash (beat 0: opts->prev_hash), both signatures
 *        with the key active at each beat, stored hashes, VDF blocks.
 *
 * Stops at the first failure. Checks per beat, in this order: format,
 * lease, sequence, link, provider key/signature, consumer key/signature,
 * hash, VDF. Nothing is allocated.
 * \return WP_OK when the verification ran (the verdict is in *res), or
 *         WP_EINVAL when opts are unusable (key ranges unsorted/overlapping).
 */
int wp_hb_verify_chain(const struct wp_hb *beats, size_t n, const struct wp_hb_chain_opts *opts,
		       struct wp_hb_chain_result *res);

/**
 * \brief Packed beat: lease 32 | seq BE64 | timestamp BE64 | prev 32 |
 *        providerSig 64 | consumerSig 64 | hash 32 | ext_len BE16 | ext.
 * \param out at least WP_HB_PACKED_FIXED + hb->ext_len bytes.
 * \return bytes written.
 */
size_t wp_hb_pack(const struct wp_hb *hb, uint8_t *out);

/**
 * \brief Unpack one beat from buf (hb->ext points INTO buf: keep it alive).
 * \param used out: bytes consumed.
 * \return WP_OK, WP_ETRUNC (buf too short), WP_EINVAL (negative timestamp,
 *         ext longer than WP_HB_EXT_MAX).
 */
int wp_hb_unpack(struct wp_hb *hb, const uint8_t *buf, size_t len, size_t *used);

/* ---- VDF hardening ------------------------------------------------------ */

/**
 * The VDF block V a hardened beat carries (528 bytes):
 *   "WP-VDF01" (8) | T BE64 | y (256, big-endian) | pi (256, big-endian)
 * where (y, pi) is the Wesolowski output and proof (workproof/vdf.h) for
 * seed = the beat's prevHash (32 raw bytes) and delay T. V is appended to
 * the payload in all three digests (see the file comment), so it is
 * provider-signed, consumer-signed and chained.
 */
#define WP_HB_VDF_LEN 528

/** rief Write V from its parts (y, proof: 256 bytes each). */
void wp_hb_vdf_encode(uint8_t out[WP_HB_VDF_LEN], uint64_t t, const uint8_t y[256],
		      const uint8_t proof[256]);

/**
 * rief Split V (no VDF verification). y and proof point into v; may be NULL.
 * 
eturn WP_OK or WP_EINVAL (wrong length or tag).
 */
int wp_hb_vdf_decode(const uint8_t *v, size_t len, uint64_t *t, const uint8_t **y,
		     const uint8_t **proof);

/**
 * rief Evaluate the VDF over prev_hash with delay t and write V. Blocks for
 *        the whole delay (that is its point): run it off the event loop.
 * 
eturn WP_OK, WP_ERANGE (t 0 or too large), WP_ENOMEM.
 */
int wp_hb_vdf_make(uint8_t out[WP_HB_VDF_LEN], const uint8_t prev_hash[WP_UPTIME_HASH_LEN],
		   uint64_t t);

/* ---- epochs ------------------------------------------------------------ */

/**
 * An epoch of size E: the RFC 6962 tree over the hashes of beats index*E ..
 * index*E+count-1 (leaf data = the 32-byte heartbeat hash), sealed into
 * a record whose SHA-256 is the epoch hash. The record (132 bytes):
 *   "WP-UPTIME-EPOCH1" (16) | leaseId (32) | index BE64 | firstSequence BE64
 *   | count BE32 | root (32) | prevEpochHash (32)
 */
struct wp_uptime_epoch {
	uint8_t lease_id[WP_UPTIME_HASH_LEN];
	uint64_t index;
	uint64_t first_sequence;            /**< index * E */
	uint32_t count;                     /**< 1..E; < E only for the lease's last */
	uint8_t root[WP_UPTIME_HASH_LEN];
	uint8_t prev_hash[WP_UPTIME_HASH_LEN]; /**< prevEpochHash, genesis 32 zero bytes */
	uint8_t hash[WP_UPTIME_HASH_LEN];   /**< SHA-256(record) */
};

/**
 * \brief Make epoch number index of size E (sz->epoch_beats; sz NULL: 60)
 *        from its beats' hashes (count * 32 bytes, contiguous).
 * \param prev prevEpochHash, or NULL for genesis.
 * \return WP_OK or WP_ERANGE (sizes out of range, count 0 or > E,
 *         index * E + count - 1 overflows).
 */
int wp_uptime_epoch_make(struct wp_uptime_epoch *e, const uint8_t lease_id[WP_UPTIME_HASH_LEN],
			 uint64_t index, const uint8_t *beat_hashes, uint32_t count,
			 const uint8_t *prev, const struct wp_uptime_sizes *sz);

/** \brief The 132-byte epoch record of e (e->hash not read). */
void wp_uptime_epoch_record(const struct wp_uptime_epoch *e,
			    uint8_t out[WP_UPTIME_EPOCH_RECORD_LEN]);

/** \brief e->hash = SHA-256(record of e). */
void wp_uptime_epoch_seal(struct wp_uptime_epoch *e);

/**
 * \brief Strict parse of a 132-byte epoch record into e, sealed (e->hash
 *        computed). Nothing is retained from rec.
 *
 * The record does not name its size E, so the parser accepts exactly the
 * records that are valid for SOME E in 1..60: count 1..60, and either
 * index 0 and firstSequence 0, or firstSequence = index * E with
 * count <= E <= 60 (firstSequence % index == 0, count <= firstSequence /
 * index <= 60); and the last sequence firstSequence + count - 1 fits 64
 * bits. wp_uptime_epoch_check_size() then pins E.
 * \return WP_OK, WP_ETRUNC (shorter), WP_EINVAL (longer, wrong tag),
 *         WP_EPROTO (a rule above).
 */
int wp_uptime_epoch_parse(struct wp_uptime_epoch *e, const uint8_t *rec, size_t len);

/**
 * \brief Is e an epoch of size E (sz->epoch_beats; sz NULL: 60):
 *        firstSequence = index * E and count 1..E?
 * \return WP_OK, WP_ERANGE (sizes out of range), WP_EPROTO (it is not).
 */
int wp_uptime_epoch_check_size(const struct wp_uptime_epoch *e, const struct wp_uptime_sizes *sz);

/* ---- claims ------------------------------------------------------------ */

/**
 * A claim of K epochs of E beats: the RFC 6962 tree over the epoch HASHES
 * (the chained record hashes, not the bare roots) of epochs index*K ..
 * index*K+n-1, chained by prevClaimHash. Encoding (194 bytes, all integers
 * big-endian; E and K are not in it, see struct wp_uptime_sizes):
 *   version 1 | flags 1 | leaseId 32 | index 4 | firstSequence 8 |
 *   beatCount 4 | periodStart 8 | periodEnd 8 | root 32 | prevClaimHash 32 |
 *   providerSig 64
 * claimHash = SHA-256("WP-UPTIME-CLAIM1" || the first 130 bytes); the
 * provider signs claimHash; the next claim's prevClaimHash is claimHash.
 */
struct wp_uptime_claim {
	uint8_t version;
	uint8_t flags;
	uint8_t lease_id[WP_UPTIME_HASH_LEN];
	uint32_t index;
	uint64_t first_sequence;            /**< index * K * E */
	uint32_t beat_count;                /**< 1..K*E (<= 1440) */
	int64_t period_start;               /**< timestamp of the first beat (ns) */
	int64_t period_end;                 /**< timestamp of the last beat (ns) */
	uint8_t root[WP_UPTIME_HASH_LEN];
	uint8_t prev_hash[WP_UPTIME_HASH_LEN];
	uint8_t sig[WP_UPTIME_SIG_LEN];
};

/**
 * \brief Make an unsigned claim of K epochs of E beats (sz; NULL: 24 of 60)
 *        over n consecutive sealed epochs (epochs index*K .. index*K+n-1 of
 *        one lease, each with firstSequence = its index * E, linked by
 *        prevEpochHash, all full (count E) but the last). firstSequence =
 *        index * K * E. sig is zeroed.
 * \param prev prevClaimHash, or NULL for genesis.
 * \return WP_OK, WP_ERANGE (sizes out of range, n 0 or > K, counts),
 *         WP_EPROTO (epochs not consecutive, not of size E, not linked,
 *         another lease, times out of order).
 */
int wp_uptime_claim_make(struct wp_uptime_claim *c, const struct wp_uptime_epoch *epochs,
			 size_t n, uint32_t index, int64_t period_start, int64_t period_end,
			 uint8_t flags, const uint8_t *prev, const struct wp_uptime_sizes *sz);

/**
 * \brief Number of epochs of E beats (sz; NULL: 60) a claim of
 *        c->beat_count beats covers: ceil(beatCount / E), at most K; 0 when
 *        sz is out of range.
 */
size_t wp_uptime_claim_epochs(const struct wp_uptime_claim *c, const struct wp_uptime_sizes *sz);

/**
 * \brief Is c a claim of K epochs of E beats (sz; NULL: 24 of 60):
 *        firstSequence = index * K * E and beatCount 1..K*E?
 * \return WP_OK, WP_ERANGE (sizes out of range), WP_EPROTO (it is not).
 */
int wp_uptime_claim_check_size(const struct wp_uptime_claim *c, const struct wp_uptime_sizes *sz);

/** \brief claimHash = SHA-256("WP-UPTIME-CLAIM1" || body). */
void wp_uptime_claim_hash(const struct wp_uptime_claim *c, uint8_t out[WP_UPTIME_HASH_LEN]);

/** \brief c->sig = Ed25519(secret, claimHash). \return WP_OK or WP_ECRYPTO. */
int wp_uptime_claim_sign(struct wp_uptime_claim *c, const uint8_t secret[WP_UPTIME_SECRET_LEN]);

/** \brief 1 when c->sig is the signature of claimHash by pub, else 0. */
int wp_uptime_claim_verify(const struct wp_uptime_claim *c, const uint8_t pub[WP_UPTIME_KEY_LEN]);

/** \brief Write the 194-byte encoding. Never fails. */
void wp_uptime_claim_encode(const struct wp_uptime_claim *c, uint8_t out[WP_UPTIME_CLAIM_LEN]);

/**
 * \brief Strict decode: exactly 194 bytes, version 1, known flags only,
 *        0 <= start <= end, and sizes some E in 1..60 and K in 1..24 make
 *        valid: beatCount 1..1440, and either index 0 and firstSequence 0,
 *        or firstSequence = index * P with beatCount <= P and P = K * E for
 *        some such E, K. The bytes cannot tell E and K apart;
 *        wp_uptime_claim_check_size() pins them.
 * \return WP_OK, WP_ETRUNC (shorter), WP_EINVAL (longer: trailing bytes),
 *         WP_EPROTO (a field breaks a rule above).
 */
int wp_uptime_claim_decode(struct wp_uptime_claim *c, const uint8_t *buf, size_t len);

/**
 * \brief Optional consumer countersignature over a signed claim:
 *        Ed25519(consumer, SHA-256(claimHash || providerSig)).
 * \return WP_OK or WP_ECRYPTO.
 */
int wp_uptime_claim_countersign(const struct wp_uptime_claim *c,
				const uint8_t secret[WP_UPTIME_SECRET_LEN],
				uint8_t sig[WP_UPTIME_SIG_LEN]);

/** \brief 1 when sig is the consumer countersignature of c by pub, else 0. */
int wp_uptime_claim_verify_countersign(const struct wp_uptime_claim *c,
				       const uint8_t pub[WP_UPTIME_KEY_LEN],
				       const uint8_t sig[WP_UPTIME_SIG_LEN]);

/* ---- roll-up ----------------------------------------------------------- */

/** Where a roll-up continues from (zero-initialise for a lease from genesis). */
struct wp_uptime_rollup_opts {
	const uint8_t *prev_epoch_hash;   /**< NULL: 32 zero bytes */
	const uint8_t *prev_claim_hash;   /**< NULL: 32 zero bytes */
	uint8_t claim_flags;
	const struct wp_uptime_sizes *sizes; /**< NULL: 60-beat epochs, 24-epoch claims */
};

/**
 * \brief Roll a VERIFIED chain (beats[0].sequence a multiple of K * E) into
 *        sealed epochs of E beats and unsigned claims of K epochs.
 * \param epochs caller's array of at least ceil(n / E) entries.
 * \param claims caller's array of at least ceil(n / (K * E)) entries.
 * \return WP_OK, WP_EINVAL (n == 0, first sequence not claim-aligned,
 *         sequences not consecutive), WP_ERANGE (sizes out of range, claim
 *         index > 2^32-1).
 */
int wp_uptime_rollup(const struct wp_hb *beats, size_t n, const struct wp_uptime_rollup_opts *opts,
		     struct wp_uptime_epoch *epochs, size_t *nepochs,
		     struct wp_uptime_claim *claims, size_t *nclaims);

/* ---- selective disclosure ---------------------------------------------- */

/**
 * One heartbeat up to a (signed) claim: the beat, its inclusion path in
 * its epoch, the epoch record's fields, the epoch hash's inclusion path in
 * the claim tree, the claim itself, and the sizes the claim was made with
 * (encoded only when they are not the defaults). ext points into ext_buf.
 */
struct wp_uptime_proof {
	struct wp_hb beat;
	struct wp_uptime_sizes sizes;       /**< E, K (always filled in, never 0) */
	struct wp_uptime_epoch epoch;       /**< hash recomputed by verify */
	uint8_t epoch_path[6 * WP_UPTIME_HASH_LEN];
	size_t epoch_path_len;              /**< hashes, <= 6 */
	uint8_t claim_path[5 * WP_UPTIME_HASH_LEN];
	size_t claim_path_len;              /**< hashes, <= 5 */
	struct wp_uptime_claim claim;
	uint8_t ext_buf[WP_HB_EXT_MAX];
};

/**
 * \brief Build the proof for beat number pos of an epoch, for a lease with
 *        sizes sz (NULL: 60-beat epochs, 24-epoch claims).
 * \param epoch_beats the beats of the epoch (count of the epoch), read only.
 * \param epochs the sealed epochs of the claim (wp_uptime_claim_epochs()
 *        of them, starting at claim index * K), read only.
 * \param claim the (signed) claim; copied.
 * \return WP_OK, WP_ERANGE (sizes out of range, pos or the epoch outside
 *         the claim), WP_EPROTO (the beats, epochs and claim do not belong
 *         together, or are not of the sizes sz).
 */
int wp_uptime_proof_make(struct wp_uptime_proof *p, const struct wp_hb *epoch_beats,
			 size_t nbeats, size_t pos, const struct wp_uptime_epoch *epochs,
			 size_t nepochs, const struct wp_uptime_claim *claim,
			 const struct wp_uptime_sizes *sz);

/**
 * \brief Encode: version 1 | flags 1 (bit0: ext present, bit1: sizes
 *        present) | beat 208 | [ext_len BE16 | ext] | [E 1 | K 1] |
 *        epoch index BE64 | epoch count BE32 | epoch root 32 |
 *        prevEpochHash 32 | k 1 | k * 32 | m 1 | m * 32 | claim 194.
 *        The sizes are written exactly when they are not (60, 24), so a
 *        default proof has the layout it always had.
 * \param out at least WP_UPTIME_PROOF_MAX bytes. \param len out: size.
 */
void wp_uptime_proof_encode(const struct wp_uptime_proof *p, uint8_t *out, size_t *len);

/**
 * \brief Strict decode (exact length, version, flags, sizes in range and
 *        present only when not the defaults, epoch count 1..E, path lengths
 *        <= 6/5, the claim's own strict decode and its sizes). p->sizes is
 *        filled in (the defaults when absent); p->beat.ext points into
 *        p->ext_buf.
 * \return WP_OK, WP_ETRUNC, WP_EINVAL (trailing bytes, bad field), WP_EPROTO.
 */
int wp_uptime_proof_decode(struct wp_uptime_proof *p, const uint8_t *buf, size_t len);

/**
 * \brief Verify a proof: its sizes are the expected ones, beat signatures
 *        (provider_pub, consumer_pub: the keys active at that beat), beat ->
 *        epoch root, epoch record -> epoch hash -> claim root, the epoch's
 *        place and count within the claim, lease ids, and the claim
 *        signature by claim_pub.
 * \param vdf_t 0: the beat must carry no extension; else its VDF block is
 *        checked like the chain verifier does.
 * \param expect the lease's sizes (NULL: 60, 24). A proof made for other
 *        sizes is WP_HB_BAD_EPOCH; expect out of range is WP_HB_BAD_FORMAT.
 * \return a wp_hb_reason (WP_HB_OK when everything holds).
 */
int wp_uptime_proof_verify(const struct wp_uptime_proof *p,
			   const uint8_t provider_pub[WP_UPTIME_KEY_LEN],
			   const uint8_t consumer_pub[WP_UPTIME_KEY_LEN],
			   const uint8_t claim_pub[WP_UPTIME_KEY_LEN], uint64_t vdf_t,
			   const struct wp_uptime_sizes *expect);

/* ---- key rotation records and timekeeper attestations ------------------ */

#define WP_UPTIME_PARTY_PROVIDER 1
#define WP_UPTIME_PARTY_CONSUMER 2
#define WP_UPTIME_EFFECTIVE_SEQUENCE 1
#define WP_UPTIME_EFFECTIVE_TIMESTAMP 2
#define WP_UPTIME_ROTATE_SCHEDULED 1
#define WP_UPTIME_ROTATE_MANUAL 2
#define WP_UPTIME_ROTATE_FORCED 3

/**
 * A key rotation record (the policy in policies/key_rotation.lua decides
 * what a valid chain of them is). Canonical bytes (127):
 *   "WP-UPTIME-ROTATE" (16) | leaseId 32 | party 1 | index BE32 | newKey 32 |
 *   effectiveKind 1 | effective BE64 | prevRecordHash 32 | reason 1
 * recordHash = SHA-256(canonical bytes); signature = Ed25519(signer, recordHash).
 */
struct wp_uptime_rotation {
	uint8_t lease_id[WP_UPTIME_HASH_LEN];
	uint8_t party;
	uint32_t index;
	uint8_t new_key[WP_UPTIME_KEY_LEN];
	uint8_t effective_kind;
	uint64_t effective;                 /**< a sequence, or Unix ns */
	uint8_t prev_hash[WP_UPTIME_HASH_LEN];
	uint8_t reason;
};

/** \brief Canonical bytes of r. Never fails. */
void wp_uptime_rotation_bytes(const struct wp_uptime_rotation *r,
			      uint8_t out[WP_UPTIME_ROTATION_LEN]);

/** \brief recordHash = SHA-256(canonical bytes of r). */
void wp_uptime_rotation_hash(const struct wp_uptime_rotation *r, uint8_t out[WP_UPTIME_HASH_LEN]);

/**
 * \brief Timekeeper attestation digest, XE's format: SHA-256(leaseId ||
 *        BE64(timestamp_ns)); a timekeeper signs it with Ed25519.
 */
void wp_uptime_attestation_digest(const uint8_t lease_id[WP_UPTIME_HASH_LEN], uint64_t timestamp,
				  uint8_t out[WP_UPTIME_HASH_LEN]);

#endif
