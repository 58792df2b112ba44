/*
 * lock.h -- leases that keep garbage collection and pushes apart on a
 * store that offers nothing but whole-object puts, lists and deletes
 * (the protocol is in lock.c's top comment).
 */
#ifndef CKPT_REMOTE_LOCK_H
#define CKPT_REMOTE_LOCK_H 1

#include <stdint.h>

#include "remote/store.h"

#define LEASE_PREFIX "ckpt.lock."

enum lease_kind { LEASE_PUSH, LEASE_GC };

/* lease -- one held lease */
struct lease {
	enum lease_kind kind;
	char name[64];
	uint64_t ttl_ns;
	uint64_t renewed_mono;      /* CLOCK_MONOTONIC of the last successful write */
	int lapsed;                 /* it went longer than its ttl unrenewed */
};

/*
 * lease_take -- take a lease of kind: write ours, then look for the other
 * kind's live leases; if there are any, withdraw and try again with
 * backoff, up to wait_s seconds, then EBUSY naming what holds the store
 */
CKPT_HIDDEN int lease_take(struct store *st, enum lease_kind kind, unsigned wait_s,
		struct lease *l);

/*
 * lease_renew -- rewrite the lease if a third of its ttl passed; sets
 * l->lapsed when more than its ttl went by since the last write (another
 * party may have seen it expired), which the holder must act on
 */
CKPT_HIDDEN int lease_renew(struct store *st, struct lease *l);

/* lease_drop -- delete the lease (failures ignored: it expires anyway) */
CKPT_HIDDEN void lease_drop(struct store *st, struct lease *l);

#endif
