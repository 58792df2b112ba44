/*
 * format.h -- the pool file's on-media structures (docs/FORMAT.md says the
 * same in prose, byte by byte). Everything is little-endian x86-64, fixed
 * size, and checked before use: a pool file is untrusted input.
 *
 * File layout (all offsets from the start of the file):
 *
 *   0                   struct pool_hdr            one 4 KiB page, immutable
 *   4096                struct pool_commit         one 4 KiB page, the commit word
 *   8192                catalog copy 0             cat_size bytes (page multiple)
 *   8192 + cat_size     catalog copy 1
 *   sums_off            page-sum slots (format 1.2, POOL_F_SUMS_AREA): one
 *                       of seg_size / 512 bytes per segment
 *   log_off             page-log slots (format 1.9, POOL_F_LOG_AREA): one of
 *                       seg_size / 16 bytes per segment (pagelog.h)
 *   data_off            segment 0                  seg_size bytes
 *   data_off + seg_size segment 1 ...              (max_segments of them)
 *
 * data_off is aligned to 2 MiB so segments can be mapped with huge pages on
 * DAX. A pool of format 1.1 was created sparse at its full size; one of
 * format 1.3 (POOL_F_SIZE_FOLLOWS) ends after the highest segment in use
 * (filesize.c). Segment bytes a heap never used stay holes.
 */
#ifndef CKPT_FORMAT_H
#define CKPT_FORMAT_H 1

#include <stdint.h>

#define POOL_MAGIC "CKPTPOOL"            /* 8 bytes, no NUL */
#define POOL_FORMAT_MAJOR 1              /* incompatible layout changes */
#define POOL_FORMAT_MINOR 9              /* compatible additions */
/* the first minor whose cow heaps keep persisted pages (base_id below) */
#define POOL_MINOR_PERSISTED_PAGES 7
/* the first minor whose catalog records the durable file size (cat_hdr
 * durable_size, durable_gen) and whose file keeps segment headroom */
#define POOL_MINOR_DURABLE_SIZE 8
/* the first minor with page-log slots (POOL_F_LOG_AREA) */
#define POOL_MINOR_LOG 9

#define POOL_HDR_OFF 0u
#define POOL_COMMIT_OFF 4096u
#define POOL_CATALOG_OFF 8192u
#define POOL_PAGE 4096u
#define POOL_DATA_ALIGN ((uint64_t)2 << 20)

#define POOL_MAX_SEGMENTS 4096u          /* hard format limit */
#define POOL_MIN_HEAP ((uint64_t)4 << 20)
#define POOL_MAX_HEAP ((uint64_t)1 << 44) /* 16 TiB per segment */

#define CAT_NONE 0xffffffffu             /* "no segment" in parent/source */
#define CAT_LABEL_MAX 64                 /* label bytes, NUL-terminated inside */

/*
 * pool_hdr -- written once by ckpt_create, never changed afterwards.
 * Invariants (checked on every open and by verify):
 *  - magic == POOL_MAGIC, major == POOL_FORMAT_MAJOR (a newer major is
 *    refused with ENOTSUP; a newer minor is opened),
 *  - checksum == XXH64 of bytes [0, offsetof(checksum)) with seed 0,
 *  - seg_size is a multiple of 2 MiB, POOL_MIN_HEAP <= heap_size <= seg_size,
 *  - 1 <= max_segments <= POOL_MAX_SEGMENTS,
 *  - cat_size == page-rounded sizeof(cat_hdr) + max_segments * sizeof(cat_entry),
 *  - without POOL_F_SUMS_AREA: sums_off == 0 and
 *    data_off == align(POOL_CATALOG_OFF + 2 * cat_size, 2 MiB);
 *    with it (format 1.2): sums_off == POOL_CATALOG_OFF + 2 * cat_size and
 *    data_off == align(sums_off + max_segments * seg_size / 512, 2 MiB),
 *  - without POOL_F_LOG_AREA: log_off == 0; with it (format 1.9, only with
 *    POOL_F_SUMS_AREA): log_off == align(sums_off + max_segments *
 *    seg_size / 512, 4 KiB) and data_off == align(log_off + max_segments *
 *    seg_size / 16, 2 MiB),
 *  - file_size == data_off + max_segments * seg_size, without overflow: the
 *    full size; the file has it unless POOL_F_SIZE_FOLLOWS (then at least
 *    data_off),
 *  - base is 2 MiB aligned, nonzero, and base + seg_size is a user address,
 *  - key_id is zero unless POOL_F_SEALED (format 1.4).
 */
struct pool_hdr {
	char magic[8];
	uint32_t major;
	uint32_t minor;
	uint8_t uuid[16];
	uint64_t base;           /* virtual address every segment is mapped at */
	uint64_t heap_size;      /* as configured (ckpt_config.heap_size) */
	uint64_t seg_size;       /* heap_size rounded up to 2 MiB */
	uint32_t max_segments;
	uint32_t flags;          /* POOL_F_*; unknown bits are refused */
	uint64_t cat_size;       /* bytes of one catalog copy */
	uint64_t data_off;       /* file offset of segment 0 */
	uint64_t file_size;      /* full (sparse) file size the pool may reach */
	uint64_t created_ns;     /* CLOCK_REALTIME at creation */
	uint32_t fork_mode;      /* enum ckpt_fork_mode chosen at create */
	uint32_t keep_checkpoints;
	uint64_t sums_off;       /* file offset of the page-sum slots, or 0
	                            (POOL_F_SUMS_AREA; format 1.2) */
	uint8_t key_id[16];      /* POOL_F_SEALED: the id of the pool's key
	                            (seal/key.h); else zero (format 1.4) */
	uint64_t log_off;        /* file offset of the page-log slots, or 0
	                            (POOL_F_LOG_AREA; format 1.9) */
	uint8_t reserved[112];   /* zero */
	uint64_t checksum;
};

/*
 * pool_commit -- the single word that says which catalog copy is current.
 * word = (generation << 1) | copy. A catalog change is written into the
 * other copy with generation + 1, persisted, and then published by one
 * persisted 8-byte store of the new word. A crash before that store leaves
 * the old copy current; after it, the new one. word == 0 never occurs after
 * create (generation starts at 1).
 */
struct pool_commit {
	uint64_t word;
};

/* Segment states. "dead" is not stored: it is a LIVE or BUSY segment whose
 * owner process no longer exists (see owner.c). */
enum cat_state {
	CAT_FREE = 0,            /* holds nothing; may be a hole in the file */
	CAT_LIVE = 1,            /* a process's heap; owner set */
	CAT_CKPT = 2,            /* an immutable checkpoint */
	CAT_BUSY = 3,            /* being written (checkpoint or fork child); owner set */
	CAT_FILLING = 4,         /* a checkpoint being pulled from a remote store,
	                            its bytes arriving (POOL_F_REMOTE_FILL; format 1.6) */
};

/*
 * cat_owner -- identifies one process across pid reuse and reboots:
 * pid, its start time (clock ticks after boot, /proc/PID/stat field 22)
 * and the kernel boot id. A process is alive iff all three match a process
 * that exists and is not a zombie.
 */
struct cat_owner {
	int32_t pid;
	uint32_t reserved;
	uint64_t start_time;
	uint8_t boot_id[16];
};

/*
 * Lives and lineages. Every live heap gets a life id from the catalog's
 * counter: a fresh pool's heap, a restarted one, a fork child. A heap
 * created by ckpt_create or forked starts a new lineage (lineage = life); a
 * heap restarted from a checkpoint continues the checkpoint's lineage, so a
 * service that restarts keeps one retention window instead of leaving its
 * earlier lives' checkpoints behind.
 *
 * cat_entry -- one per segment, 256 bytes.
 * Invariants:
 *  - state is one of enum cat_state; FREE entries have every other field 0
 *    except parent/source == CAT_NONE,
 *  - parent, source are CAT_NONE or < max_segments,
 *  - CKPT and FILLING entries: ckpt_id > 0, unique among both and
 *    < cat_hdr.next_ckpt_id;
 *    used <= seg_size; checksum == XXH3-64 of segment bytes [0, used), or
 *    with CAT_F_PAGE_SUMS of their 4 KiB page sums (sums.h),
 *  - FILLING entries only in a pool with POOL_F_REMOTE_FILL; their fields
 *    are those of the CKPT entry they become, their bytes may be missing,
 *  - LIVE, CKPT and FILLING entries: 0 < life, lineage < cat_hdr.next_life;
 *    parent_life < next_life,
 *  - label is NUL-terminated within CAT_LABEL_MAX.
 */
struct cat_entry {
	uint32_t state;          /* enum cat_state */
	uint32_t flags;          /* CAT_F_* */
	uint32_t parent;         /* LIVE: segment it was forked from, or CAT_NONE */
	uint32_t source;         /* CKPT: live segment it was taken from; LIVE: the
	                            checkpoint segment it was restarted from */
	uint64_t ckpt_id;        /* CKPT: its id; LIVE: id it was restarted from, or 0 */
	struct cat_owner owner;  /* LIVE/BUSY: the process; CKPT: who took it */
	uint64_t time_ns;        /* CLOCK_REALTIME when it took this state */
	uint64_t used;           /* bytes of the segment that hold data (high-water) */
	uint64_t in_use;         /* CKPT: bytes in live blocks when taken */
	uint64_t checksum;       /* CKPT: XXH3-64 of bytes [0, used) */
	uint64_t life;           /* LIVE/BUSY: unique id of this heap's life (never
	                            reused, unlike segment indices); CKPT: the
	                            life of the heap it was taken from */
	uint64_t parent_life;    /* LIVE: life of the heap it was forked from, or 0 */
	uint64_t lineage;        /* retention group: LIVE: its lineage; CKPT: the
	                            lineage of the heap it was taken from */
	uint64_t restarted_from; /* CKPT with CAT_F_ORIGIN: the checkpoint id the
	                            heap it was taken from was restarted from (0:
	                            created or forked); format 1.1 */
	uint64_t base_id;        /* LIVE in memory, pool minor >= 7: the id of the
	                            checkpoint its heap maps (source's), 0 for a
	                            heap whose base is no checkpoint; its
	                            persisted pages are tagged with it (format 1.7) */
	uint8_t reserved[64];
	char label[CAT_LABEL_MAX];
};

#define CAT_F_FORK_PENDING 0x1u  /* BUSY: reserved by a parent for a fork child */
/* pool_hdr.flags: the pool may hold heaps in memory (CAT_F_IN_MEMORY);
 * set on every pool created by format 1.1, so that a libckpt of format 1.0
 * refuses it ("unknown flags") instead of misreading such entries */
#define POOL_F_IN_MEMORY_HEAPS 0x1u
/* pool_hdr.flags: the file has a page-sum slot per segment at sums_off
 * (format 1.2); a libckpt of format 1.1 refuses such a pool ("unknown
 * flags"), whose geometry it would call inconsistent */
#define POOL_F_SUMS_AREA 0x2u
/* pool_hdr.flags: the file's size follows the segments in use (format
 * 1.3): it covers every segment the current catalog names as not FREE,
 * whole, and may end anywhere at or after data_off beyond them (file_size
 * stays the full size the pool may reach). A libckpt older than 1.3 refuses
 * such a pool ("unknown flags") instead of calling it truncated */
#define POOL_F_SIZE_FOLLOWS 0x4u
/* pool_hdr.flags: a sealed pool (format 1.4): every live heap is kept in
 * memory (never in the file), every checkpoint is encrypted and
 * authenticated (CAT_F_SEALED) with the key whose id is key_id. A libckpt
 * older than 1.4 refuses such a pool ("unknown flags"): it would read
 * ciphertext as a heap */
#define POOL_F_SEALED 0x8u
/* pool_hdr.flags: the pool may hold young heaps (format 1.5): a FREE
 * segment whose lease (CAT_LEASE_OFF) a process holds is that process's
 * heap, not yet published in the catalog; nobody else takes it or cuts it
 * off the end of the file, and its bytes mean nothing once the lease is
 * gone. A libckpt older than 1.5 refuses such a pool ("unknown flags")
 * instead of handing a young heap's segment to another process */
#define POOL_F_YOUNG_HEAPS 0x10u
/* pool_hdr.flags: the pool may hold FILLING entries (format 1.6): a
 * checkpoint pulled lazily from a remote store (`ckpt-remote pull --lazy`)
 * whose catalog entry is complete (id, used, checksum, lineage) while its
 * bytes and page sums are still being written by a filler process; it
 * becomes CKPT by one catalog commit once every byte matches the checksum.
 * Set only on pools a lazy pull creates. A libckpt older than 1.6 refuses
 * such a pool ("unknown flags") instead of restarting from missing bytes */
#define POOL_F_REMOTE_FILL 0x20u
/* pool_hdr.flags: the file has a page-log slot per segment at log_off
 * (format 1.9), and checkpoints may be logged (CAT_F_LOGGED). A libckpt
 * older than 1.9 refuses such a pool ("unknown flags") instead of reading
 * a logged checkpoint's segment without its log */
#define POOL_F_LOG_AREA 0x40u
#define POOL_F_KNOWN (POOL_F_IN_MEMORY_HEAPS | POOL_F_SUMS_AREA | POOL_F_SIZE_FOLLOWS | \
		POOL_F_SEALED | POOL_F_YOUNG_HEAPS | POOL_F_REMOTE_FILL | POOL_F_LOG_AREA)

/* LIVE, or BUSY fork-pending: the heap is in the process's memory, a
 * private image of checkpoint segment source (or of its own empty segment
 * when source is CAT_NONE); its segment holds none of it (format 1.1) */
#define CAT_F_IN_MEMORY 0x2u
/* CKPT: the checksum is of the image's 4 KiB page sums (sums.h; format 1.1) */
#define CAT_F_PAGE_SUMS 0x4u
#define CAT_F_ORIGIN 0x8u        /* CKPT: restarted_from is recorded (format 1.1; a
                                    checkpoint published by a 1.0 libckpt lacks it) */
/* CKPT with CAT_F_PAGE_SUMS: the segment's page-sum slot holds the image's
 * used / 4096 page sums (little-endian 8 bytes each, whose XXH3-64 is the
 * checksum), so one page can be verified without reading the others: a
 * restart verifies each page on first access (format 1.2) */
#define CAT_F_SUMS_STORED 0x10u
/* CKPT in a sealed pool: the segment's [0, used) holds the image encrypted
 * with AES-256-GCM in 2 MiB chunks, and its page-sum slot the seal record
 * (salt, binding, one tag per chunk: seal/chunks.h); the checksum is of the
 * ciphertext (format 1.4) */
#define CAT_F_SEALED 0x20u
/* CKPT with CAT_F_PAGE_SUMS and CAT_F_SUMS_STORED, in a pool with
 * POOL_F_LOG_AREA: the image is the segment's bytes [0, used) with the
 * pages its log slot lists laid over them (pagelog.h; format 1.9). The
 * page sums and the checksum are the image's, log included. Cleared by the
 * commit that follows the log's fold into the segment */
#define CAT_F_LOGGED 0x40u

/*
 * cat_hdr -- at the start of each catalog copy, followed by max_segments
 * cat_entry. Invariants: magic == CAT_MAGIC; generation matches the commit
 * word's; nentries == pool_hdr.max_segments; checksum == XXH64 of the whole
 * copy (header with checksum field 0, and all entries).
 *
 * durable_size, durable_gen (format 1.8, pool minor >= 8; zero before):
 * the file's size was made durable (fdatasync) at least up to durable_size
 * before this copy was published, and nothing has cut it below since. The
 * claim holds only while durable_gen == generation: every commit of a
 * libckpt that maintains it stamps it with the generation it publishes; one
 * older than 1.8 copies these bytes unchanged into a copy of a higher
 * generation (and may cut the file), which invalidates the claim. A
 * repaired catalog (a copy rewritten as a new generation) likewise carries
 * a stale stamp. An invalid claim reads as durable_size 0.
 */
#define CAT_MAGIC 0x474c544b43504b43ull  /* "CKPCKTLG" */
struct cat_hdr {
	uint64_t magic;
	uint64_t generation;
	uint32_t nentries;
	uint32_t reserved0;
	uint64_t next_ckpt_id;   /* the id the next checkpoint gets; starts at 1 */
	uint64_t checksum;
	uint64_t next_life;      /* the life id the next live heap gets; starts at 1 */
	uint64_t durable_size;   /* bytes of file size known durable (format 1.8) */
	uint64_t durable_gen;    /* the generation that recorded it; else stale */
};

/*
 * seal_record -- at the start of the page-sum slot of a segment holding a
 * sealed checkpoint (CAT_F_SEALED; format 1.4), followed by nchunks tags of
 * 16 bytes, chunk 0 first. Invariants: magic == SEAL_MAGIC, version == 1,
 * chunk_shift == 21, ckpt_id and used equal the catalog entry's, uuid the
 * pool's, key_id the header's, nchunks == ceil(used / 2^chunk_shift),
 * reserved zero, and the record with its tags fits in the slot. The whole
 * 128 bytes are the associated data of every chunk (seal/chunks.c).
 */
#define SEAL_MAGIC "CKPTSEAL"
#define SEAL_RECORD_VERSION 1
struct seal_record {
	char magic[8];
	uint32_t version;
	uint32_t chunk_shift;    /* log2 of the chunk size */
	uint64_t ckpt_id;
	uint64_t used;           /* image bytes (plaintext and ciphertext alike) */
	uint64_t nchunks;
	uint8_t uuid[16];        /* the pool's */
	uint8_t key_id[16];      /* the pool key's id (pool_hdr.key_id) */
	uint8_t salt[32];        /* random, this checkpoint's: its key derives from it */
	uint8_t reserved[24];
};

_Static_assert(sizeof(struct seal_record) == 128, "seal_record is 128 bytes");
_Static_assert(sizeof(struct pool_hdr) == 256, "pool_hdr is 256 bytes");
_Static_assert(sizeof(struct cat_entry) == 256, "cat_entry is 256 bytes");
_Static_assert(sizeof(struct cat_hdr) == 64, "cat_hdr is 64 bytes");

#endif /* CKPT_FORMAT_H */
