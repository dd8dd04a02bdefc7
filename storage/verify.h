/* SPDX-License-Identifier: MIT */
/*
 * A structural check of an LMDB 0.9 data file that reads it with pread (never
 * mapped, so a damaged file cannot fault us): both meta pages, then every
 * page reachable from them, with each page's header, node offsets, key and
 * data sizes, overflow runs and named-database records bounds-checked. It is
 * what SM_STORE_VERIFY runs before LMDB maps a file from elsewhere (S4/F6):
 * LMDB itself trusts page contents. It does not check key order or our
 * record layouts (the loaders do that).
 */
#ifndef SEGMINT_STORAGE_VERIFY_H
#define SEGMINT_STORAGE_VERIFY_H

#include "segmint/error.h"

/* Checks only the two meta pages (magic, version, page size, sizes, root
 * page numbers, the file's length): what LMDB trusts while opening, before
 * any page is mapped. Cheap; run on every open. SM_OK, SM_ERR_STORAGE
 * (cause MDB_INVALID for a wrong magic), SM_ERR_IO. */
int sm_store_check_header(const char *data_path, sm_error *err);

/* The header check, then every page reachable from either meta page.
 * SM_OK when all are well formed; SM_ERR_STORAGE naming the first bad page
 * otherwise; SM_ERR_IO when the file cannot be read. */
int sm_store_verify_file(const char *data_path, sm_error *err);

#endif
