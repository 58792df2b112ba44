/* alloc.c -- placeholder until written */
#include "internal.h"
