/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * goebpf.h - legacy ("maps" section) map definitions for BPF programs that
 * otherwise use libbpf's headers.
 *
 * goebpf reads map definitions from an ELF section named "maps" holding an
 * array of 40-byte records; libbpf 1.x no longer understands that section
 * (it wants BTF-described maps in ".maps"). This header lets a program keep
 * goebpf's format while using <linux/bpf.h> and <bpf/bpf_helpers.h> for
 * everything else:
 *
 *     BPF_MAP_DEF(counters) = {
 *         .map_type = BPF_MAP_TYPE_ARRAY,
 *         .key_size = sizeof(__u32),
 *         .value_size = sizeof(__u64),
 *         .max_entries = 16,
 *         .persistent_path = "/sys/fs/bpf/counters",   // optional pin
 *     };
 *     BPF_MAP_ADD(counters);   // accepted for goebpf sources; does nothing
 *
 * Record layout (natural alignment on the 64-bit BPF target):
 *
 *     offset  size  field
 *          0     4  map_type
 *          4     4  key_size
 *          8     4  value_size
 *         12     4  max_entries
 *         16     4  map_flags
 *         20     4  (padding, always zero)
 *         24     8  inner_map_def    - address of another record: the inner
 *                                      map template of an array/hash of maps
 *         32     8  persistent_path  - address of a NUL-terminated pin path
 *
 * The two pointer fields are link-time addresses, so clang emits them as
 * relocations in ".relmaps" (at record offset 24 against the inner map's
 * symbol, at offset 32 against the string's section); the loader resolves
 * them by name rather than by value.
 */
#ifndef GOEBPF_H
#define GOEBPF_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/*
 * Named goebpf_map_def so that it can never collide with a legacy
 * `struct bpf_map_def` from an older libbpf (libbpf < 1.0 declared one with a
 * different, 20-byte layout). The alias below lets goebpf-era sources that
 * spell it `struct bpf_map_def` compile unchanged; it is defined after
 * <bpf/bpf_helpers.h>, so it cannot rename anything declared there.
 */
struct goebpf_map_def {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	/* 4 bytes of implicit padding: the pointers below are 8-aligned */
	void *inner_map_def;
	const char *persistent_path;
};

#ifndef bpf_map_def
#define bpf_map_def goebpf_map_def
#endif

/* Size of one record and offsets of the two relocated fields. */
#define BPF_MAP_DEF_SIZE 40
#define BPF_MAP_OFFSET_INNER_MAP 24
#define BPF_MAP_OFFSET_PERSISTENT 32

_Static_assert(sizeof(struct goebpf_map_def) == BPF_MAP_DEF_SIZE,
	       "a goebpf map definition is 40 bytes");
_Static_assert(__builtin_offsetof(struct goebpf_map_def, inner_map_def) ==
		       BPF_MAP_OFFSET_INNER_MAP,
	       "inner_map_def sits at offset 24");
_Static_assert(__builtin_offsetof(struct goebpf_map_def, persistent_path) ==
		       BPF_MAP_OFFSET_PERSISTENT,
	       "persistent_path sits at offset 32");

/*
 * Declares a map record in the "maps" section; follow it with an initialiser.
 * The variable is global (not static) so that it gets an ELF symbol: the
 * loader names each map after the symbol at the record's offset.
 */
#define BPF_MAP_DEF(name) struct goebpf_map_def name SEC("maps")

/* goebpf's host (mock) build registered maps here; for BPF it is a no-op. */
#define BPF_MAP_ADD(name)

/* Return values of goebpf's socket filters: 0 drops, else bytes to keep. */
#define SOCKET_FILTER_DENY 0
#define SOCKET_FILTER_ALLOW 1

#endif /* GOEBPF_H */
