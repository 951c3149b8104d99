/* SPDX-License-Identifier: MIT */
/*
 * test/exports.c: the ABI contract. The dynamic symbols libtide.so defines
 * are exactly the names in src/libtide.map, the map holds exactly the
 * TIDE_EXTERN functions of include/tide.h, and the SONAME is libtide.so.1
 * (Makefile.am's -version-info 1:0:0).
 *
 * TOP_SRCDIR and TOP_BUILDDIR come from the build (test/local.mk).
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"

#ifndef TOP_SRCDIR
#error "TOP_SRCDIR must be defined by the build"
#endif
#ifndef TOP_BUILDDIR
#error "TOP_BUILDDIR must be defined by the build"
#endif

#define LIBSO TOP_BUILDDIR "/src/.libs/libtide.so"
#define MAPFILE TOP_SRCDIR "/src/libtide.map"
#define HEADER TOP_SRCDIR "/include/tide.h"

struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == len && strncmp(s->v[i], name, len) == 0)
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		ck_assert_ptr_nonnull(s->v);
	}
	s->v[s->n++] = strndup(name, len);
}

static int names_has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return 1;
	return 0;
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), n);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* Blanks C comments and '#' comments so that names inside them are ignored. */
static void strip_comments(char *s)
{
	for (char *p = s; *p; p++) {
		if (p[0] == '/' && p[1] == '*') {
			char *e = strstr(p + 2, "*/");
			char *end = e ? e + 2 : p + strlen(p);

			memset(p, ' ', (size_t)(end - p));
			p = end - 1;
		} else if (p[0] == '/' && p[1] == '/') {
			while (*p && *p != '\n')
				*p++ = ' ';
			p--;
		} else if (p[0] == '#') {
			while (*p && *p != '\n')
				*p++ = ' ';
			p--;
		}
	}
}

/* The global names of every version node of the map. */
static void read_map(struct names *out)
{
	char *text = slurp(MAPFILE);
	int global = 0, nodes = 0;

	strip_comments(text);
	for (char *p = text; *p;) {
		size_t len;

		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '*') {
			if (*p == '{')
				nodes++;
			if (*p == '}')
				global = 0;
			p++;
			continue;
		}
		len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.*");
		if (len == 6 && strncmp(p, "global", 6) == 0 && p[len] == ':')
			global = 1;
		else if (len == 5 && strncmp(p, "local", 5) == 0 && p[len] == ':')
			global = 0;
		else if (global) {
			ck_assert_msg(memchr(p, '*', len) == NULL, "wildcard in the map's global list: %.*s", (int)len, p);
			names_add(out, p, len);
		}
		p += len;
	}
	ck_assert_int_ge(nodes, 1);
	free(text);
}

/* The functions declared with TIDE_EXTERN in tide.h. */
static void read_header(struct names *out)
{
	char *text = slurp(HEADER);
	char *p = text;

	strip_comments(text); /* also blanks the #define TIDE_EXTERN line */
	while ((p = strstr(p, "TIDE_EXTERN")) != NULL) {
		char *paren = strchr(p, '(');
		char *e, *b;

		ck_assert_ptr_nonnull(paren);
		e = paren;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		b = e;
		while (b > p && (isalnum((unsigned char)b[-1]) || b[-1] == '_'))
			b--;
		ck_assert_msg(e > b, "cannot parse a TIDE_EXTERN declaration");
		names_add(out, b, (size_t)(e - b));
		p = paren;
	}
	free(text);
}

/* Defined dynamic symbols of the library, version nodes left out. */
static void read_dynsyms(struct names *out)
{
	char line[1024];
	FILE *f = popen("nm -D --defined-only '" LIBSO "' 2>&1", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		char type, name[512];
		char *at;

		/* "0000000000001234 T tide_loop_new@@TIDE_0.1" */
		if (sscanf(line, "%*s %c %511s", &type, name) != 2) {
			if (sscanf(line, " %c %511s", &type, name) != 2)
				ck_abort_msg("nm: %s", line);
		}
		if (type == 'A')
			continue; /* a version node such as TIDE_0.1 */
		at = strchr(name, '@');
		if (at)
			*at = 0;
		names_add(out, name, strlen(name));
	}
	ck_assert_int_eq(pclose(f), 0);
}

START_TEST(test_exports_equal_map)
{
	struct names map = { 0 }, syms = { 0 };

	ck_assert_msg(access(LIBSO, R_OK) == 0, "%s is missing (a static-only build?)", LIBSO);
	read_map(&map);
	read_dynsyms(&syms);
	ck_assert_uint_gt(map.n, 10);
	for (size_t i = 0; i < syms.n; i++)
		ck_assert_msg(names_has(&map, syms.v[i]), "exported but not in the map: %s", syms.v[i]);
	for (size_t i = 0; i < map.n; i++)
		ck_assert_msg(names_has(&syms, map.v[i]), "in the map but not exported: %s", map.v[i]);
	for (size_t i = 0; i < syms.n; i++)
		ck_assert_msg(strncmp(syms.v[i], "tide_", 5) == 0 && strncmp(syms.v[i], "tide__", 6) != 0,
			      "not a public name: %s", syms.v[i]);
	ck_assert_uint_eq(syms.n, map.n);
	names_free(&map);
	names_free(&syms);
}
END_TEST

START_TEST(test_header_equal_map)
{
	struct names map = { 0 }, hdr = { 0 };

	read_map(&map);
	read_header(&hdr);
	ck_assert_uint_gt(hdr.n, 10);
	ck_assert(names_has(&hdr, "tide_loop_new"));
	ck_assert(names_has(&hdr, "tide_strerror"));
	for (size_t i = 0; i < hdr.n; i++)
		ck_assert_msg(names_has(&map, hdr.v[i]), "TIDE_EXTERN but not in the map: %s", hdr.v[i]);
	for (size_t i = 0; i < map.n; i++)
		ck_assert_msg(names_has(&hdr, map.v[i]), "in the map but not TIDE_EXTERN in tide.h: %s", map.v[i]);
	names_free(&map);
	names_free(&hdr);
}
END_TEST

START_TEST(test_map_version_node)
{
	char *text = slurp(MAPFILE);

	strip_comments(text);
	ck_assert_msg(strstr(text, "TIDE_0.1") != NULL, "no TIDE_0.1 node in the map");
	ck_assert_msg(strstr(text, "local:") != NULL && strstr(text, "*;") != NULL,
		      "the map does not hide everything else (local: *;)");
	free(text);
}
END_TEST

START_TEST(test_soname)
{
	char line[1024];
	int found = 0;
	FILE *f = popen("readelf -d '" LIBSO "' 2>&1", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "(SONAME)")) {
			ck_assert_msg(strstr(line, "[libtide.so.1]") != NULL, "SONAME line: %s", line);
			found = 1;
		}
	}
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_msg(found, "no SONAME in %s", LIBSO);
}
END_TEST

START_TEST(test_version_string)
{
	char v[32];

	snprintf(v, sizeof(v), "%d.%d.%d", TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR, TIDE_VERSION_PATCH);
	ck_assert_str_eq(tide_version(), v);
	ck_assert_str_eq(tide_version(), PACKAGE_VERSION);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("exports");
	TCase *tc = tcase_create("abi");
	SRunner *sr;
	int failed;

	if (access(LIBSO, F_OK) != 0) {
		/* --disable-shared: there is no dynamic symbol table to check. */
		printf("Skipped: 5 checks: the exported ABI: %s does not exist (a static-only build)\n", LIBSO);
		return 77;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_exports_equal_map);
	tcase_add_test(tc, test_header_equal_map);
	tcase_add_test(tc, test_map_version_node);
	tcase_add_test(tc, test_soname);
	tcase_add_test(tc, test_version_string);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
