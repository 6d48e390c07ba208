/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "zygote_msg.h"

size_t wk_zygote_pack(char *const *argv, char *msg, size_t cap)
{
	size_t n = 0;
	int i;

	if (cap > WK_ZYGOTE_MAX_MSG)
		cap = WK_ZYGOTE_MAX_MSG;
	if (!argv[0] || !argv[0][0])
		return 0;
	for (i = 0; argv[i]; i++) {
		size_t len = strlen(argv[i]) + 1;

		if (i >= WK_ZYGOTE_MAX_ARGS || len > cap - n)
			return 0;
		memcpy(msg + n, argv[i], len);
		n += len;
	}
	return n;
}

int wk_zygote_unpack(const char *msg, size_t n, char **argv, int max)
{
	size_t i = 0;
	int argc = 0;

	if (n == 0 || n > WK_ZYGOTE_MAX_MSG || msg[n - 1] != '\0' || msg[0] == '\0')
		return -1;
	while (i < n) {
		if (argc >= max)
			return -1;
		argv[argc++] = (char *)(msg + i);
		i += strlen(msg + i) + 1;   /* stops at a NUL inside msg: msg[n-1] is one */
	}
	argv[argc] = NULL;
	return argc;
}

ssize_t wk_zygote_send(int sock, const void *msg, size_t n, const int *fds, int nfd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)msg, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (nfd < 0 || nfd > 4) {
		errno = EINVAL;
		return -1;
	}
	if (nfd > 0) {
		struct cmsghdr *c;

		memset(ctl.buf, 0, sizeof(ctl.buf));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfd * sizeof(int));
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}
