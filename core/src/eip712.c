/* SPDX-License-Identifier: MIT */
/*
 * EIP-712 typed data hashing, EIP-3009 TransferWithAuthorization, EIP-191.
 * See eip712.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/eip712.h"
#include "workproof/hash.h"

const uint8_t wp_eip3009_transfer_typehash[32] = {
	0x7c, 0x7c, 0x6c, 0xdb, 0x67, 0xa1, 0x87, 0x43, 0xf4, 0x9e, 0xc6, 0xfa,
	0x9b, 0x35, 0xf5, 0x0d, 0x52, 0xed, 0x05, 0xcb, 0xed, 0x4c, 0xc5, 0x92,
	0xe1, 0x3b, 0x44, 0x50, 0x1c, 0x1a, 0x22, 0x67,
};

struct sdef {
	char *name;
	size_t name_len;
	char **ftypes;                 /* the field types as written */
	size_t *ftype_lens;
	struct wp_eip712_ftype *fields;
	size_t nfields;
	uint8_t type_hash[32];
};

struct wp_eip712_types {
	struct sdef *s;
	size_t n;
};

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int is_ident(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '$'))
			return 0;
	}
	return 1;
}

void wp_eip712_types_free(struct wp_eip712_types *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct sdef *s = &t->s[i];

		for (size_t f = 0; f < s->nfields; f++) {
			if (s->fields)
				free((char *)s->fields[f].name);
			if (s->ftypes)
				free(s->ftypes[f]);
		}
		free(s->fields);
		free(s->ftypes);
		free(s->ftype_lens);
		free(s->name);
	}
	free(t->s);
	free(t);
}

int wp_eip712_struct_index(const struct wp_eip712_types *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->s[i].name_len == len && !memcmp(t->s[i].name, name, len))
			return (int)i;
	return -1;
}

size_t wp_eip712_nfields(const struct wp_eip712_types *t, int idx)
{
	if (idx < 0 || (size_t)idx >= t->n)
		return 0;
	return t->s[idx].nfields;
}

const struct wp_eip712_ftype *wp_eip712_field(const struct wp_eip712_types *t, int idx,
					      size_t f)
{
	if (idx < 0 || (size_t)idx >= t->n || f >= t->s[idx].nfields)
		return NULL;
	return &t->s[idx].fields[f];
}

/* Resolve "Base[..][..]" against the struct names. */
static int resolve_ftype(const struct wp_eip712_types *t, struct wp_eip712_ftype *ft,
			 const char *s, size_t len)
{
	size_t base = 0, pos;

	while (base < len && s[base] != '[')
		base++;
	ft->ndims = 0;
	for (pos = base; pos < len;) {
		unsigned long k = 0;

		if (s[pos] != '[' || ft->ndims >= WP_EIP712_MAX_DIMS)
			return WP_EINVAL;
		pos++;
		if (pos < len && s[pos] != ']') {
			if (s[pos] < '1' || s[pos] > '9')
				return WP_EINVAL;
			while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
				k = k * 10 + (unsigned long)(s[pos] - '0');
				if (k > WP_EIP712_MAX_FIXED)
					return WP_EINVAL;
				pos++;
			}
		}
		if (pos >= len || s[pos] != ']')
			return WP_EINVAL;
		pos++;
		ft->dims[ft->ndims++] = (uint32_t)k;
	}
	ft->struct_idx = wp_eip712_struct_index(t, s, base);
	if (ft->struct_idx >= 0) {
		ft->kind = WP_EIP712_STRUCT;
		return WP_OK;
	}
	{
		/* an atomic or dynamic ABI type, spelled canonically */
		struct wp_abi_type *at;
		struct wp_buf b = WP_BUF_INIT;
		int rc = wp_abi_parse(&at, s, base, NULL), ok;

		if (rc)
			return rc == WP_ENOMEM ? rc : WP_EINVAL;
		ok = at->count == 1 && at->first->kind <= WP_ABI_STRING &&
		     wp_abi_type_canonical(&b, at->first) == WP_OK &&
		     b.len == base && !memcmp(b.data, s, base);
		if (ok) {
			ft->kind = at->first->kind;
			ft->size = at->first->size;
		}
		wp_buf_free(&b);
		wp_abi_type_free(at);
		return ok ? WP_OK : WP_EINVAL;
	}
}

/* Struct dependencies of idx (itself included), by DFS. */
static void deps(const struct wp_eip712_types *t, int idx, unsigned char *found)
{
	const struct sdef *s = &t->s[idx];

	if (found[idx])
		return;
	found[idx] = 1;
	for (size_t f = 0; f < s->nfields; f++)
		if (s->fields[f].kind == WP_EIP712_STRUCT)
			deps(t, s->fields[f].struct_idx, found);
}

static int name_cmp(const struct sdef *a, const struct sdef *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static int append_struct(struct wp_buf *b, const struct sdef *s)
{
	int rc = wp_buf_append(b, s->name, s->name_len);

	rc = rc ? rc : wp_buf_push(b, '(');
	for (size_t f = 0; !rc && f < s->nfields; f++) {
		if (f)
			rc = wp_buf_push(b, ',');
		rc = rc ? rc : wp_buf_append(b, s->ftypes[f], s->ftype_lens[f]);
		rc = rc ? rc : wp_buf_push(b, ' ');
		rc = rc ? rc : wp_buf_append(b, s->fields[f].name, s->fields[f].name_len);
	}
	return rc ? rc : wp_buf_push(b, ')');
}

int wp_eip712_encode_type(struct wp_buf *b, const struct wp_eip712_types *t, int idx)
{
	unsigned char *found;
	size_t mark = b->len;
	int rc;

	if (idx < 0 || (size_t)idx >= t->n)
		return WP_EINVAL;
	found = calloc(t->n, 1);
	if (!found)
		return WP_ENOMEM;
	/* DFS over struct indices: recursion depth is at most the number of
	 * structs, which the caller defined */
	deps(t, idx, found);
	rc = append_struct(b, &t->s[idx]);
	found[idx] = 0;
	/* the other dependencies in name order: repeated minimum selection
	 * (type sets are small) */
	while (!rc) {
		int best = -1;

		for (size_t i = 0; i < t->n; i++)
			if (found[i] && (best < 0 || name_cmp(&t->s[i], &t->s[best]) < 0))
				best = (int)i;
		if (best < 0)
			break;
		found[best] = 0;
		rc = append_struct(b, &t->s[best]);
	}
	free(found);
	if (rc)
		b->len = mark;
	return rc;
}

int wp_eip712_types_new(struct wp_eip712_types **out,
			const struct wp_eip712_struct *structs, size_t n,
			size_t *err_struct, size_t *err_field)
{
	struct wp_eip712_types *t;
	struct wp_buf b = WP_BUF_INIT;
	size_t es = 0, ef = (size_t)-1;
	int rc = WP_ENOMEM;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return WP_ENOMEM;
	t->s = calloc(n ? n : 1, sizeof(*t->s));
	if (!t->s)
		goto fail;
	t->n = n;
	/* names first: field types may refer to any struct */
	for (size_t i = 0; i < n; i++) {
		const struct wp_eip712_struct *in = &structs[i];
		struct sdef *s = &t->s[i];

		es = i;
		ef = (size_t)-1;
		rc = WP_EINVAL;
		if (!is_ident(in->name, in->name_len) ||
		    wp_eip712_struct_index(t, in->name, in->name_len) >= 0)
			goto fail;
		rc = WP_ENOMEM;
		s->name = dup_n(in->name, in->name_len);
		if (!s->name)
			goto fail;
		s->name_len = in->name_len;
	}
	for (size_t i = 0; i < n; i++) {
		const struct wp_eip712_struct *in = &structs[i];
		struct sdef *s = &t->s[i];
		size_t nf = in->nfields;

		es = i;
		ef = (size_t)-1;
		rc = WP_ENOMEM;
		s->fields = calloc(nf ? nf : 1, sizeof(*s->fields));
		s->ftypes = calloc(nf ? nf : 1, sizeof(*s->ftypes));
		s->ftype_lens = calloc(nf ? nf : 1, sizeof(*s->ftype_lens));
		if (!s->fields || !s->ftypes || !s->ftype_lens)
			goto fail;
		s->nfields = nf;
		for (size_t f = 0; f < nf; f++) {
			const struct wp_eip712_field *fi = &in->fields[f];
			struct wp_eip712_ftype *ft = &s->fields[f];

			ef = f;
			rc = WP_EINVAL;
			if (!is_ident(fi->name, fi->name_len))
				goto fail;
			for (size_t g = 0; g < f; g++)
				if (s->fields[g].name_len == fi->name_len &&
				    !memcmp(s->fields[g].name, fi->name, fi->name_len))
					goto fail;
			rc = WP_ENOMEM;
			ft->name = dup_n(fi->name, fi->name_len);
			s->ftypes[f] = dup_n(fi->type, fi->type_len);
			if (!ft->name || !s->ftypes[f])
				goto fail;
			ft->name_len = fi->name_len;
			s->ftype_lens[f] = fi->type_len;
			rc = resolve_ftype(t, ft, fi->type, fi->type_len);
			if (rc)
				goto fail;
		}
	}
	for (size_t i = 0; i < n; i++) {
		es = i;
		ef = (size_t)-1;
		wp_buf_reset(&b);
		rc = wp_eip712_encode_type(&b, t, (int)i);
		if (rc)
			goto fail;
		wp_keccak256(b.data, b.len, t->s[i].type_hash);
	}
	wp_buf_free(&b);
	*out = t;
	return WP_OK;
fail:
	if (err_struct)
		*err_struct = es;
	if (err_field)
		*err_field = ef;
	wp_buf_free(&b);
	wp_eip712_types_free(t);
	return rc;
}

int wp_eip712_type_hash(uint8_t out[32], const struct wp_eip712_types *t, int idx)
{
	if (idx < 0 || (size_t)idx >= t->n)
		return WP_EINVAL;
	memcpy(out, t->s[idx].type_hash, 32);
	return WP_OK;
}

static int encode_data(struct wp_buf *b, const struct wp_eip712_types *t, int idx,
		       const struct wp_abi_value *v, unsigned depth);

/* The 32-byte encoding of a field value at array level `level` (ndims for
 * the field itself, 0 for its base type). */
static int encode_field(uint8_t out[32], const struct wp_eip712_types *t,
			const struct wp_eip712_ftype *ft, unsigned level,
			const struct wp_abi_value *v, unsigned depth)
{
	struct wp_keccak_ctx k;
	struct wp_abi_type at;
	int rc;

	if (depth > WP_EIP712_MAX_DEPTH)
		return WP_ERANGE;
	if (level > 0) {
		uint32_t dim = ft->dims[level - 1];
		uint8_t w[32];

		if ((dim && v->count != dim) || (v->count && !v->items))
			return WP_ERANGE;
		wp_keccak256_init(&k);
		for (size_t i = 0; i < v->count; i++) {
			rc = encode_field(w, t, ft, level - 1, &v->items[i], depth + 1);
			if (rc)
				return rc;
			wp_keccak256_update(&k, w, 32);
		}
		wp_keccak256_final(&k, out);
		return WP_OK;
	}
	switch (ft->kind) {
	case WP_EIP712_STRUCT: {
		struct wp_buf b = WP_BUF_INIT;

		rc = encode_data(&b, t, ft->struct_idx, v, depth + 1);
		if (!rc)
			wp_keccak256(b.data, b.len, out);
		wp_buf_free(&b);
		return rc;
	}
	case WP_ABI_BYTES:
	case WP_ABI_STRING:
		if (v->len && !v->data)
			return WP_EINVAL;
		wp_keccak256(v->data ? (const void *)v->data : "", v->len, out);
		return WP_OK;
	default:
		memset(&at, 0, sizeof(at));
		at.kind = ft->kind;
		at.size = ft->size;
		if (v->len != 32 || !v->data || wp_abi_word_check(&at, v->data))
			return WP_EINVAL;
		memcpy(out, v->data, 32);
		return WP_OK;
	}
}

static int encode_data(struct wp_buf *b, const struct wp_eip712_types *t, int idx,
		       const struct wp_abi_value *v, unsigned depth)
{
	const struct sdef *s;
	size_t mark = b->len;
	int rc;

	if (idx < 0 || (size_t)idx >= t->n)
		return WP_EINVAL;
	if (depth > WP_EIP712_MAX_DEPTH)
		return WP_ERANGE;
	s = &t->s[idx];
	if (v->count != s->nfields || (v->count && !v->items))
		return WP_ERANGE;
	rc = wp_buf_reserve(b, 32 * (s->nfields + 1));
	if (rc)
		return rc;
	memcpy(b->data + b->len, s->type_hash, 32);
	b->len += 32;
	for (size_t f = 0; f < s->nfields; f++) {
		const struct wp_eip712_ftype *ft = &s->fields[f];
		uint8_t w[32];

		rc = encode_field(w, t, ft, ft->ndims, &v->items[f], depth);
		if (!rc)
			rc = wp_buf_append(b, w, 32);
		if (rc) {
			b->len = mark;
			return rc;
		}
	}
	return WP_OK;
}

int wp_eip712_encode_data(struct wp_buf *b, const struct wp_eip712_types *t, int idx,
			  const struct wp_abi_value *v)
{
	return encode_data(b, t, idx, v, 0);
}

int wp_eip712_hash_struct(uint8_t out[32], const struct wp_eip712_types *t, int idx,
			  const struct wp_abi_value *v)
{
	struct wp_buf b = WP_BUF_INIT;
	int rc = encode_data(&b, t, idx, v, 0);

	if (!rc)
		wp_keccak256(b.data, b.len, out);
	wp_buf_free(&b);
	return rc;
}

void wp_eip712_digest(uint8_t out[32], const uint8_t domain_separator[32],
		      const uint8_t struct_hash[32])
{
	uint8_t buf[66];

	buf[0] = 0x19;
	buf[1] = 0x01;
	memcpy(buf + 2, domain_separator, 32);
	memcpy(buf + 34, struct_hash, 32);
	wp_keccak256(buf, sizeof(buf), out);
}

int wp_eip712_domain_separator(uint8_t out[32], const struct wp_eip712_domain *d)
{
	char type[160];
	uint8_t enc[6 * 32];
	size_t tl = 0, el = 32;

	/* encodeType with only the present fields, in the EIP's order */
	tl += (size_t)snprintf(type + tl, sizeof(type) - tl, "EIP712Domain(");
	if (d->name) {
		tl += (size_t)snprintf(type + tl, sizeof(type) - tl, "string name,");
		wp_keccak256(d->name, d->name_len, enc + el);
		el += 32;
	}
	if (d->version) {
		tl += (size_t)snprintf(type + tl, sizeof(type) - tl, "string version,");
		wp_keccak256(d->version, d->version_len, enc + el);
		el += 32;
	}
	if (d->chain_id) {
		tl += (size_t)snprintf(type + tl, sizeof(type) - tl, "uint256 chainId,");
		memcpy(enc + el, d->chain_id, 32);
		el += 32;
	}
	if (d->verifying_contract) {
		tl += (size_t)snprintf(type + tl, sizeof(type) - tl, "address verifyingContract,");
		memset(enc + el, 0, 12);
		memcpy(enc + el + 12, d->verifying_contract, 20);
		el += 32;
	}
	if (d->salt) {
		tl += (size_t)snprintf(type + tl, sizeof(type) - tl, "bytes32 salt,");
		memcpy(enc + el, d->salt, 32);
		el += 32;
	}
	if (el == 32)
		return WP_EINVAL;
	type[tl - 1] = ')';   /* the last ',' */
	wp_keccak256(type, tl, enc);
	wp_keccak256(enc, el, out);
	return WP_OK;
}

void wp_eip3009_transfer_hash(uint8_t out[32], const struct wp_eip3009_auth *a)
{
	uint8_t enc[7 * 32];

	memcpy(enc, wp_eip3009_transfer_typehash, 32);
	memset(enc + 32, 0, 12);
	memcpy(enc + 44, a->from, 20);
	memset(enc + 64, 0, 12);
	memcpy(enc + 76, a->to, 20);
	memcpy(enc + 96, a->value, 32);
	memcpy(enc + 128, a->valid_after, 32);
	memcpy(enc + 160, a->valid_before, 32);
	memcpy(enc + 192, a->nonce, 32);
	wp_keccak256(enc, sizeof(enc), out);
}

void wp_eip3009_transfer_digest(uint8_t out[32], const uint8_t domain_separator[32],
				const struct wp_eip3009_auth *a)
{
	uint8_t sh[32];

	wp_eip3009_transfer_hash(sh, a);
	wp_eip712_digest(out, domain_separator, sh);
}

void wp_eip191_hash(uint8_t out[32], const void *msg, size_t len)
{
	static const char prefix[] = "\x19" "Ethereum Signed Message:\n";
	struct wp_keccak_ctx k;
	char num[24];
	int n = snprintf(num, sizeof(num), "%zu", len);

	wp_keccak256_init(&k);
	wp_keccak256_update(&k, prefix, sizeof(prefix) - 1);
	wp_keccak256_update(&k, num, (size_t)n);
	wp_keccak256_update(&k, msg, len);
	wp_keccak256_final(&k, out);
}
