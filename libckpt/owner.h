/*
 * owner.h -- who owns a segment: process identity that survives pid reuse
 * and reboots, and the liveness test behind the "dead" state.
 */
#ifndef CKPT_OWNER_H
#define CKPT_OWNER_H 1

#include "format.h"
#include "internal.h"

/* owner_self -- identity of the calling process (recomputed after fork) */
CKPT_HIDDEN int owner_self(struct cat_owner *o);

/* owner_alive -- 1 if the process o names still runs (not a zombie), else 0 */
CKPT_HIDDEN int owner_alive(const struct cat_owner *o);

/* owner_equal -- 1 if both name the same process */
CKPT_HIDDEN int owner_equal(const struct cat_owner *a, const struct cat_owner *b);

#endif
