/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the uptime decoders (spec/fuzz/corpus/uptime): the
 * 194-byte claim, the disclosure proof and packed beats, all untrusted
 * bytes from peers or the chain.
 *
 * Invariants, any violation aborts:
 *  - claim_decode(x) succeeds  =>  encode(decode(x)) == x (strict decoding
 *    accepts exactly one encoding), and verifying its signature and
 *    countersignature does not crash;
 *  - proof_decode(x) succeeds  =>  encode(decode(x)) == x, its sizes are in
 *    range and its claim is of those sizes, and verifying it (under its own
 *    sizes and the defaults) returns a reason code in range;
 *  - unpack(x) succeeds  =>  pack(unpack(x)) reproduces the bytes consumed,
 *    and a chain verification over what unpacked returns a reason in range;
 *  - epoch_parse(x) succeeds  =>  record(parse(x)) == x (every input, after
 *    the selector byte, is also tried as an epoch record);
 *  - claim_decode and epoch_parse accept only what is valid under some
 *    sizes E (1..60), K (1..24).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/uptime.h"

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_uptime: invariant failed: %s (line %d)\n", #cond, __LINE__); \
		abort(); \
	} \
} while (0)

static const uint8_t key[WP_UPTIME_KEY_LEN] = { 0xd7, 0x5a, 0x98, 0x01 };

/* The decoders accept exactly what is valid under SOME sizes E, K. */
static int some_sizes(const struct wp_uptime_claim *c, const struct wp_uptime_epoch *e)
{
	struct wp_uptime_sizes sz;

	for (sz.epoch_beats = 1; sz.epoch_beats <= WP_UPTIME_EPOCH_BEATS; sz.epoch_beats++)
		for (sz.claim_epochs = 1; sz.claim_epochs <= WP_UPTIME_CLAIM_EPOCHS; sz.claim_epochs++)
			if (c ? !wp_uptime_claim_check_size(c, &sz) : !wp_uptime_epoch_check_size(e, &sz))
				return 1;
	return 0;
}

static void fuzz_claim(const uint8_t *d, size_t n)
{
	struct wp_uptime_claim c;
	uint8_t out[WP_UPTIME_CLAIM_LEN], sig[WP_UPTIME_SIG_LEN] = { 0 };

	if (wp_uptime_claim_decode(&c, d, n))
		return;
	wp_uptime_claim_encode(&c, out);
	CHECK(n == sizeof(out) && !memcmp(out, d, n));
	CHECK(wp_uptime_claim_epochs(&c, NULL) >= 1 &&
	      wp_uptime_claim_epochs(&c, NULL) <= WP_UPTIME_CLAIM_EPOCHS);
	CHECK(some_sizes(&c, NULL));
	(void)wp_uptime_claim_verify(&c, key);
	(void)wp_uptime_claim_verify_countersign(&c, key, sig);
}

static void fuzz_proof(const uint8_t *d, size_t n)
{
	static struct wp_uptime_proof p;
	static uint8_t out[WP_UPTIME_PROOF_MAX];
	size_t len;
	int r;

	if (wp_uptime_proof_decode(&p, d, n))
		return;
	wp_uptime_proof_encode(&p, out, &len);
	CHECK(len == n && !memcmp(out, d, n));
	CHECK(!wp_uptime_sizes_check(&p.sizes) && !wp_uptime_claim_check_size(&p.claim, &p.sizes));
	/* under the proof's own sizes (the deep checks), and the defaults */
	r = wp_uptime_proof_verify(&p, key, key, key, p.beat.ext_len ? 16 : 0, &p.sizes);
	CHECK(r >= 0 && r < WP_HB_REASON_COUNT);
	r = wp_uptime_proof_verify(&p, key, key, key, p.beat.ext_len ? 16 : 0, NULL);
	CHECK(r >= 0 && r < WP_HB_REASON_COUNT);
}

static void fuzz_epoch(const uint8_t *d, size_t n)
{
	struct wp_uptime_epoch e;
	uint8_t out[WP_UPTIME_EPOCH_RECORD_LEN];

	if (wp_uptime_epoch_parse(&e, d, n))
		return;
	wp_uptime_epoch_record(&e, out);
	CHECK(n == sizeof(out) && !memcmp(out, d, n));
	CHECK(e.count >= 1 && e.count <= WP_UPTIME_EPOCH_BEATS);
	CHECK(some_sizes(NULL, &e));
}

static void fuzz_packed(const uint8_t *d, size_t n)
{
	static struct wp_hb beats[8];
	static uint8_t out[WP_HB_PACKED_FIXED + WP_HB_EXT_MAX];
	struct wp_uptime_keyrange kr = { 0, UINT64_MAX, { 0 } };
	struct wp_hb_chain_opts o;
	struct wp_hb_chain_result res;
	size_t off = 0, used, nb = 0;

	while (off < n && nb < 8) {
		if (wp_hb_unpack(&beats[nb], d + off, n - off, &used))
			break;
		CHECK(wp_hb_pack(&beats[nb], out) == used && !memcmp(out, d + off, used));
		off += used;
		nb++;
	}
	memset(&o, 0, sizeof(o));
	o.provider = o.consumer = &kr;
	o.nprovider = o.nconsumer = 1;
	o.vdf_t = 16;
	CHECK(wp_hb_verify_chain(beats, nb, &o, &res) == WP_OK);
	CHECK(res.reason >= 0 && res.reason < WP_HB_REASON_COUNT && (!nb || res.index < nb));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	fuzz_epoch(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		fuzz_claim(data + 1, size - 1);
		break;
	case 1:
		fuzz_proof(data + 1, size - 1);
		break;
	default:
		fuzz_packed(data + 1, size - 1);
		break;
	}
	return 0;
}
