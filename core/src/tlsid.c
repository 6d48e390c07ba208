/* SPDX-License-Identifier: MIT */
/*
 * TLS identity certificates (workproof/tlsid.h, docs/transport.md): made
 * and checked with libcrypto only. The extension's value has one valid DER
 * encoding, so it is built and checked byte by byte rather than through a
 * generic ASN.1 parser: anything but the exact 102-byte shape is refused.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "workproof/common.h"
#include "workproof/ed25519.h"
#include "workproof/tlsid.h"

#define PREFIX_LEN (sizeof(WP_TLSID_PREFIX) - 1)
/* SEQUENCE(100) { OCTET STRING(32) key, OCTET STRING(64) signature } */
#define EXT_LEN 102

static pthread_once_t oid_once = PTHREAD_ONCE_INIT;
static ASN1_OBJECT *ext_oid;   /* process lifetime */

static void oid_setup(void)
{
	ext_oid = OBJ_txt2obj(WP_TLSID_OID, 1);
}

static const ASN1_OBJECT *oid(void)
{
	if (pthread_once(&oid_once, oid_setup))
		return NULL;
	return ext_oid;
}

const char *wp_tls_reason_name(enum wp_tls_reason r)
{
	switch (r) {
	case WP_TLS_OK: return "ok";
	case WP_TLS_PLAINTEXT: return "plaintext";
	case WP_TLS_PROTOCOL: return "protocol";
	case WP_TLS_NO_CERT: return "no_cert";
	case WP_TLS_BAD_CERT: return "bad_cert";
	case WP_TLS_BAD_EXTENSION: return "bad_extension";
	case WP_TLS_BAD_SIGNATURE: return "bad_signature";
	case WP_TLS_STALE_CERT: return "stale_cert";
	case WP_TLS_UNKNOWN_KEY: return "unknown_key";
	case WP_TLS_WRONG_KEY: return "wrong_key";
	default: return "other";
	}
}

/* WP_TLSID_PREFIX || DER(SubjectPublicKeyInfo of cert); *len set; free() */
static uint8_t *signed_message(X509 *cert, size_t *len)
{
	X509_PUBKEY *spki = X509_get_X509_PUBKEY(cert);
	int n = spki ? i2d_X509_PUBKEY(spki, NULL) : -1;
	uint8_t *msg, *p;

	if (n <= 0)
		return NULL;
	msg = malloc(PREFIX_LEN + (size_t)n);
	if (!msg)
		return NULL;
	memcpy(msg, WP_TLSID_PREFIX, PREFIX_LEN);
	p = msg + PREFIX_LEN;
	if (i2d_X509_PUBKEY(spki, &p) != n) {
		free(msg);
		return NULL;
	}
	*len = PREFIX_LEN + (size_t)n;
	return msg;
}

/* the PEM of what write() writes into a memory BIO, NUL-terminated */
static char *to_pem(int (*write)(BIO *, const void *), const void *obj, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (!bio)
		return NULL;
	if (write(bio, obj) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0 &&
	    (out = malloc((size_t)n + 1))) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(bio);
	return out;
}

static int write_cert(BIO *b, const void *x)
{
	return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
	return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

/* a random positive serial of 127 bits, never 0 */
static int set_serial(X509 *x)
{
	uint8_t r[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return 0;
	r[0] = (uint8_t)((r[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(r, sizeof(r), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

static int set_names(X509 *x)
{
	X509_NAME *name = X509_NAME_new();
	int ok;

	ok = name && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						(const unsigned char *)"workproof", -1, -1, 0) &&
	     X509_set_subject_name(x, name) && X509_set_issuer_name(x, name);
	X509_NAME_free(name);
	return ok;
}

/* the identity extension over x's (already set) public key */
static int add_identity_ext(X509 *x, const uint8_t seed[32], const uint8_t *claim,
			    uint8_t identity[32])
{
	uint8_t pub[WP_ED25519_PUB_LEN], secret[WP_ED25519_SECRET_LEN], value[EXT_LEN];
	uint8_t *msg;
	size_t mlen = 0;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *ext = NULL;
	const ASN1_OBJECT *obj = oid();
	int ok = 0;

	if (!obj || !(msg = signed_message(x, &mlen)))
		return 0;
	if (wp_ed25519_keypair(pub, secret, seed))
		goto out;
	memcpy(identity, claim ? claim : pub, 32);
	value[0] = 0x30;
	value[1] = EXT_LEN - 2;
	value[2] = 0x04;
	value[3] = 32;
	memcpy(value + 4, identity, 32);
	value[36] = 0x04;
	value[37] = 64;
	if (wp_ed25519_sign(value + 38, msg, mlen, secret))
		goto out;
	os = ASN1_OCTET_STRING_new();
	if (!os || !ASN1_OCTET_STRING_set(os, value, EXT_LEN))
		goto out;
	/* not critical: the TLS layer's own verifiers need not know it; ours
	 * insist on it */
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	ok = ext && X509_add_ext(x, ext, -1);
out:
	sodium_memzero(secret, sizeof(secret));
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	free(msg);
	return ok;
}

int wp_tls_identity_make(struct wp_tls_identity *out, const uint8_t seed[32],
			 int64_t not_before, int64_t not_after, const uint8_t *claim)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = WP_ECRYPTO;

	memset(out, 0, sizeof(*out));
	if (not_after <= not_before)
		return WP_EINVAL;
	key = EVP_EC_gen("P-256");
	x = X509_new();
	if (!key || !x)
		goto out;
	if (!X509_set_version(x, X509_VERSION_3) || !set_serial(x) || !set_names(x) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) ||
	    !X509_set_pubkey(x, key) ||
	    !add_identity_ext(x, seed, claim, out->identity) ||
	    !X509_sign(x, key, EVP_sha256()))
		goto out;
	out->cert_pem = to_pem(write_cert, x, &out->cert_len);
	out->key_pem = to_pem(write_key, key, &out->key_len);
	if (!out->cert_pem || !out->key_pem) {
		wp_tls_identity_free(out);
		rc = WP_ENOMEM;
		goto out;
	}
	out->not_before = not_before;
	out->not_after = not_after;
	rc = WP_OK;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

void wp_tls_identity_free(struct wp_tls_identity *id)
{
	if (id->key_pem)
		sodium_memzero(id->key_pem, id->key_len);
	free(id->key_pem);
	free(id->cert_pem);
	id->key_pem = id->cert_pem = NULL;
	id->key_len = id->cert_len = 0;
}

__attribute__((format(printf, 3, 4)))
static void say(char *detail, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!detail || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, len, fmt, ap);
	va_end(ap);
}

/* a P-256 key: what our certificates carry, and nothing costlier to check */
static int is_p256(EVP_PKEY *pk)
{
	char group[32];
	size_t glen = 0;

	return pk && EVP_PKEY_is_a(pk, "EC") &&
	       EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

enum wp_tls_reason wp_tls_check_cert(X509 *cert, int chain_len, const int64_t *now,
				     uint8_t key[32], char *detail, size_t detail_len)
{
	const ASN1_OBJECT *obj = oid();
	EVP_PKEY *pk;
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *os;
	const uint8_t *v;
	uint8_t *msg;
	size_t mlen = 0;
	int pos, ok;

	if (!cert || chain_len != 1) {
		say(detail, detail_len, "%d certificates, expected exactly one", chain_len);
		return WP_TLS_BAD_CERT;
	}
	pk = X509_get0_pubkey(cert);
	if (!is_p256(pk)) {
		say(detail, detail_len, "the certificate's key is not ECDSA P-256");
		return WP_TLS_BAD_CERT;
	}
	if (X509_verify(cert, pk) != 1) {
		say(detail, detail_len, "the certificate's self-signature does not verify");
		return WP_TLS_BAD_CERT;
	}
	if (!obj) {
		say(detail, detail_len, "cannot make the extension's OID");
		return WP_TLS_OTHER;
	}
	for (int i = 0; i < X509_get_ext_count(cert); i++) {
		ext = X509_get_ext(cert, i);
		if (X509_EXTENSION_get_critical(ext) &&
		    OBJ_cmp(X509_EXTENSION_get_object(ext), obj) != 0 &&
		    !X509_supported_extension(ext)) {
			say(detail, detail_len, "an unknown critical extension");
			return WP_TLS_BAD_CERT;
		}
	}
	pos = X509_get_ext_by_OBJ(cert, obj, -1);
	if (pos < 0) {
		say(detail, detail_len, "no identity extension (" WP_TLSID_OID ")");
		return WP_TLS_BAD_EXTENSION;
	}
	if (X509_get_ext_by_OBJ(cert, obj, pos) >= 0) {
		say(detail, detail_len, "the identity extension appears twice");
		return WP_TLS_BAD_EXTENSION;
	}
	os = X509_EXTENSION_get_data(X509_get_ext(cert, pos));
	v = os ? ASN1_STRING_get0_data(os) : NULL;
	if (!v || ASN1_STRING_length(os) != EXT_LEN || v[0] != 0x30 || v[1] != EXT_LEN - 2 ||
	    v[2] != 0x04 || v[3] != 32 || v[36] != 0x04 || v[37] != 64) {
		say(detail, detail_len, "the identity extension is not "
		    "SEQUENCE { OCTET STRING (32), OCTET STRING (64) }");
		return WP_TLS_BAD_EXTENSION;
	}
	msg = signed_message(cert, &mlen);
	if (!msg) {
		say(detail, detail_len, "cannot encode the certificate's key");
		return WP_TLS_BAD_CERT;
	}
	ok = wp_ed25519_verify(v + 38, msg, mlen, v + 4);
	free(msg);
	if (!ok) {
		say(detail, detail_len, "the identity key's signature over the TLS key does not verify");
		return WP_TLS_BAD_SIGNATURE;
	}
	if (now) {
		time_t t = (time_t)*now;
		int nb = X509_cmp_time(X509_get0_notBefore(cert), &t);
		int na = X509_cmp_time(X509_get0_notAfter(cert), &t);

		if (nb == 0 || na == 0) {
			say(detail, detail_len, "unreadable validity dates");
			return WP_TLS_BAD_CERT;
		}
		/* X509_cmp_time: -1 when the date is <= t, 1 when after */
		if (nb > 0) {
			say(detail, detail_len, "the certificate is not valid yet");
			return WP_TLS_STALE_CERT;
		}
		if (na < 0) {
			say(detail, detail_len, "the certificate has expired");
			return WP_TLS_STALE_CERT;
		}
	}
	memcpy(key, v + 4, 32);
	return WP_TLS_OK;
}
