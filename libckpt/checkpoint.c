/* checkpoint.c -- placeholder until written */
#include "internal.h"
