/* SPDX-License-Identifier: MIT */
/*
 * Where the host's companions live (the trusted Lua library, the policies,
 * the worker and its runtimes, the micro-VM scripts), decided from where the
 * executable runs (/proc/self/exe), never from paths compiled in: an
 * installed binary must work after the source tree is gone, and a build
 * tree must keep loading its Lua from the sources (no rebuild for a Lua
 * edit). docs/operations.md, "Installing".
 *
 *   build tree  the directory of the executable holds WP_TREE_MARKER, a
 *               one-line file cmake writes naming the source tree:
 *               Lua <src>/lua, policies <src>/policies, the worker beside
 *               the executable, VM scripts <src>/worker/vm.
 *   installed   <prefix>/bin/workproof: Lua <prefix>/share/lua/5.1,
 *               policies <prefix>/share/workproof/policies, the worker
 *               <prefix>/libexec/workproof, VM scripts
 *               <prefix>/libexec/workproof/vm.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

#define WP_TREE_MARKER "workproof-build-tree"

static struct wp_layout layout;
static int layout_state;   /* 0 not yet, 1 done, -1 failed */

/* dst = a + b; -1 if it does not fit (a path that long is refused, not cut) */
static int join(char *dst, size_t size, const char *a, const char *b)
{
	int n = snprintf(dst, size, "%s%s", a, b);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* dirname in place: "/a/b/c" -> "/a/b", "/a" -> "/" */
static void strip_last(char *path)
{
	char *slash = strrchr(path, '/');

	if (!slash)
		return;
	if (slash == path)
		slash[1] = '\0';
	else
		*slash = '\0';
}

/* The source tree named by the marker in dir: 1 found (src filled), 0 no
 * marker, -1 a marker that is unreadable or does not name an absolute path. */
static int read_marker(const char *dir, char *src, size_t size)
{
	char path[PATH_MAX];
	FILE *f;
	size_t n;

	if (join(path, sizeof(path), dir, "/" WP_TREE_MARKER))
		return -1;
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	if (!fgets(src, (int)size, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	n = strcspn(src, "\r\n");
	src[n] = '\0';
	return n > 0 && src[0] == '/' ? 1 : -1;
}

static int compute(struct wp_layout *l)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int m;

	if (n <= 0 || (size_t)n >= sizeof(exe) - 1) {
		wp_log(WP_LOG_ERROR, "cannot find the workproof executable (/proc/self/exe)");
		return -1;
	}
	exe[n] = '\0';
	strip_last(exe);
	if (join(l->exe_dir, sizeof(l->exe_dir), exe, ""))
		return -1;
	m = read_marker(l->exe_dir, l->source_dir, sizeof(l->source_dir));
	if (m < 0) {
		wp_log(WP_LOG_ERROR, "%s/" WP_TREE_MARKER ": unreadable or not an absolute path",
		       l->exe_dir);
		return -1;
	}
	if (m > 0) {
		l->installed = 0;
		if (join(l->build_dir, sizeof(l->build_dir), l->exe_dir, "") ||
		    join(l->lua_dir, sizeof(l->lua_dir), l->source_dir, "/lua") ||
		    join(l->policies_dir, sizeof(l->policies_dir), l->source_dir, "/policies") ||
		    join(l->libexec_dir, sizeof(l->libexec_dir), l->exe_dir, "") ||
		    join(l->vm_scripts_dir, sizeof(l->vm_scripts_dir), l->source_dir, "/worker/vm"))
			return -1;
		return 0;
	}
	l->installed = 1;
	if (join(l->prefix, sizeof(l->prefix), l->exe_dir, ""))
		return -1;
	strip_last(l->prefix);   /* <prefix>/bin -> <prefix> */
	if (join(l->lua_dir, sizeof(l->lua_dir), l->prefix, "/share/lua/5.1") ||
	    join(l->policies_dir, sizeof(l->policies_dir), l->prefix, "/share/workproof/policies") ||
	    join(l->libexec_dir, sizeof(l->libexec_dir), l->prefix, "/libexec/workproof") ||
	    join(l->vm_scripts_dir, sizeof(l->vm_scripts_dir), l->prefix, "/libexec/workproof/vm"))
		return -1;
	return 0;
}

const struct wp_layout *wp_layout(void)
{
	if (!layout_state)
		layout_state = compute(&layout) ? -1 : 1;
	return layout_state > 0 ? &layout : NULL;
}
