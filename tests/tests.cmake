# One line per test. Keep sorted by area.

# pool file, errors, dead owners (issue 2): real files, processes, kill -9,
# tmpfs and read-only bind mounts in a private mount namespace (root; skips
# with a message where mounting is impossible).
ckpt_test(test_pool_basic test_pool_basic.c LABELS proc VALGRIND)
# the page sums' hash (libxxhash's, or xxHash built for AVX2) gives the
# library's XXH3 values at every length and alignment
ckpt_test(test_sums test_sums.c LABELS unit VALGRIND)
ckpt_test(test_pagelog test_pagelog.c LABELS unit VALGRIND)
ckpt_test(test_pool_errors test_pool_errors.c LABELS proc root VALGRIND)
ckpt_test(test_owner test_owner.c LABELS proc root VALGRIND)
# a damaged current catalog copy (issue 16, item 4): open falls back to the
# backup copy and repairs both, verify says what is lost; kill -9 mid-repair
ckpt_test(test_pool_catalog test_pool_catalog.c LABELS proc VALGRIND)
add_dependencies(test_pool_catalog ckpt-inspect)
# the README's first snippet (issue 16, item 6): first runs killed inside
# ckpt_create, before and inside the first checkpoint, and at random
# instants (40; 400 with CKPT_TEST_LONG=1); the next run must succeed
ckpt_test(test_readme_snippet test_readme_snippet.c LABELS proc)
# the pool file's apparent size follows the segments in use (issue 16, item
# 7): after create, checkpoints, retention, close, reclaim; kill -9 between
# a size change and its commit; a truncated file refused; a 1.2 pool kept
ckpt_test(test_pool_size test_pool_size.c LABELS proc VALGRIND)
ckpt_test(test_pool_memory test_pool_memory.c LABELS proc)
add_dependencies(test_pool_memory ckpt-inspect)
add_dependencies(test_pool_size ckpt-inspect)
# the exported symbols and SONAME; the installed library used as a user would
# (cmake --install into a temp prefix, pkg-config, pkg-config --static, find_package)
add_test(NAME test_symbols COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_symbols.sh
  $<TARGET_FILE:ckpt> $<TARGET_FILE:ckpt_static> ${PROJECT_SOURCE_DIR}/include/libckpt.h)
set_tests_properties(test_symbols PROPERTIES LABELS unit TIMEOUT 60)
if(CKPT_SANITIZE)
  set(CKPT_INSTALL_TEST_FLAGS "-fsanitize=address,undefined")
endif()
add_test(NAME test_install COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh
  ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} "${CKPT_INSTALL_TEST_FLAGS}")
set_tests_properties(test_install PROPERTIES LABELS proc TIMEOUT 300
  ENVIRONMENT "CC=${CMAKE_C_COMPILER}")
# the Debian packages (issue 16): cpack -G DEB in its own build tree (kept in
# the build directory between runs), lintian, dpkg --root into a scratch
# root, a program built and run against it; skips (77) without cpack or
# dpkg-deb. The docs: man pages lint clean and cover every function of the
# header, docs/API.md covers the header, nothing points outside the repository;
# DESIGN.md names every source file, the tools' usage texts match their man
# pages and the README, the README's dependencies are deps.sh's, the format
# versions the docs state are the code's.
add_test(NAME test_packages COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_packages.sh
  ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/test-packages)
set_tests_properties(test_packages PROPERTIES LABELS proc TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "CC=${CMAKE_C_COMPILER}")
add_test(NAME test_docs COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_docs.sh
  ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(test_docs PROPERTIES LABELS unit TIMEOUT 60)

ckpt_test(test_heap_basic test_heap_basic.c LABELS unit VALGRIND)

# ckpt-inspect (issue 6): real pools made by test_inspect_mkpool, the tool run
# as a user would, its JSON parsed with python3; list's rows and states against
# API.md (busy entries of live and dead owners); paths that are not pools (a
# FIFO, a socket, a directory); damaged-pool corpus; the fuzz
# harness (replay smoke in every build; libFuzzer smoke with -DCKPT_FUZZ=ON and
# clang, the last stage of scripts/test.sh).
add_executable(test_inspect_mkpool test_inspect_mkpool.c)
target_link_libraries(test_inspect_mkpool PRIVATE ckpt)
ckpt_test(test_inspect_corpus test_inspect_corpus.c LABELS proc TIMEOUT 900)
add_dependencies(test_inspect_corpus ckpt-inspect)
ckpt_test(test_inspect_list test_inspect_list.c LABELS proc)
add_dependencies(test_inspect_list ckpt-inspect)
foreach(t cli live files)
  add_test(NAME test_inspect_${t} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_inspect_${t}.sh
    $<TARGET_FILE:ckpt-inspect> $<TARGET_FILE:test_inspect_mkpool> ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_inspect_${t} PROPERTIES TIMEOUT 300 LABELS proc)
endforeach()
option(CKPT_FUZZ "build the libFuzzer harness tests/fuzz/fuzz_inspect (needs clang)" OFF)
add_subdirectory(fuzz)
ckpt_test(test_heap_stress test_heap_stress.c LABELS unit slow)
ckpt_test(test_heap_copy test_heap_copy.c LABELS unit proc)
# remote frees in heap format 4 (issue 12): double frees from two threads,
# racing frees, collection in this process, a fork child, an attached copy, a
# lost hint, a kill -9 with remote frees waiting
ckpt_test(test_heap_remote test_heap_remote.c LABELS unit proc)
# a heap the format 2 library made (tests/fixtures/heap_v2.h) upgraded to
# format 4: its blocks intact, its freed ones refused and handed out again
ckpt_test(test_heap_upgrade_v2 test_heap_upgrade_v2.c LABELS unit VALGRIND)
# the per-thread front caches (issue 12): blocks cached at a checkpoint, a
# fork, a kill -9 in fork mode copy (the dead heap verifies)
ckpt_test(test_front_cache test_front_cache.c LABELS proc VALGRIND)
add_dependencies(test_front_cache ckpt-inspect)
# the purge (issue 12, item 4): a freed 16 MiB run gives its memory back in
# fork modes copy and cow and in a sealed pool (resident memory, the file's
# blocks), is used again, checkpoints before and after restart intact; a
# fork child purges its own heap; the delay; CKPT_PURGE_MIN=off
ckpt_test(test_heap_purge test_heap_purge.c LABELS proc VALGRIND)
add_dependencies(test_heap_purge ckpt-inspect)

# checkpoints and restart (issue 4): real processes, kill -9 at named and
# random points, damaged checkpoints, retention, ENOSPC on a small tmpfs
# (needs root; skips with a message otherwise), dead segments.
ckpt_test(test_checkpoint_restart test_checkpoint_restart.c LABELS proc VALGRIND)
ckpt_test(test_checkpoint_crash test_checkpoint_crash.c LABELS proc VALGRIND)
add_dependencies(test_checkpoint_crash ckpt-inspect)
ckpt_test(test_checkpoint_space test_checkpoint_space.c LABELS proc root VALGRIND)
# the pmem memcpy copy path (forced on an ordinary file, offloads disabled)
ckpt_test(test_checkpoint_pmem test_checkpoint_pmem.c LABELS proc VALGRIND)
add_dependencies(test_checkpoint_pmem ckpt-inspect)

# fork (issue 5): real forks on ext4; reflink on XFS/btrfs loop filesystems
# the test makes and removes (root; skips with a message where impossible);
# crash points in the parent's prepare (before, mid- and after the copy) and
# the child; ENOSPC mid-copy on a small tmpfs (root); background checkpoint.
ckpt_test(test_fork_basic test_fork_basic.c LABELS proc VALGRIND)
ckpt_test(test_fork_crash test_fork_crash.c LABELS proc VALGRIND)
ckpt_test(test_fork_space test_fork_space.c LABELS proc root VALGRIND)
add_dependencies(test_fork_space ckpt-inspect)
ckpt_test(test_fork_bgsave test_fork_bgsave.c LABELS proc VALGRIND)
ckpt_test(test_fork_reflink test_fork_reflink.c LABELS proc root)
# the copy-on-write engine (issue 11): fork mode cow, private-image heaps,
# recycled and cloned images, kernel I/O after restart and fork, kill -9 at
# every checkpoint point
ckpt_test(test_cow test_cow.c LABELS proc VALGRIND)
add_dependencies(test_cow ckpt-inspect)
ckpt_test(test_cow_log test_cow_log.c LABELS proc VALGRIND)
add_dependencies(test_cow_log ckpt-inspect)
ckpt_test(test_cow_log_pins test_cow_log_pins.c LABELS proc VALGRIND)
# ckpt_persist in cow mode (format 1.7): kill -9 at the persist's points and
# around the checkpoint after it, the dead heap (base + persisted pages) read
# as ckpt-inspect reads it; a heap that forked before its first checkpoint;
# a 1.5 pool refuses it clearly
ckpt_test(test_cow_persist test_cow_persist.c LABELS proc VALGRIND)
add_dependencies(test_cow_persist ckpt-inspect)
# lazy restart: kernel I/O into holes (O_DIRECT too), a damaged chunk fenced
# (SIGBUS on first touch) or refused (eager), fork and checkpoint mid-fill,
# the eager cases; no valgrind run (valgrind has no userfaultfd)
ckpt_test(test_lazy test_lazy.c LABELS proc root)
add_dependencies(test_lazy ckpt-inspect)
# the engine under fire (issue 11, "Done when"): kill -9 at random instants
# (cow checkpoint loops with recycling, cow restarts, cow forks whose children
# checkpoint, background checkpoints; CKPT_TEST_LONG=1 for thousands of kills,
# CKPT_TEST_SEED=N to replay the delays), named fork/checkpoint points in a cow
# fork child, ENOSPC mid incremental checkpoint (copy and recycle paths, small
# tmpfs: root), a damaged image refused; and the regression test of a bug it
# found (cow-child-keeps-dead-parent-lock, fixed in map.c)
ckpt_test(test_cow_crash test_cow_crash.c LABELS proc root VALGRIND TIMEOUT 900)
add_dependencies(test_cow_crash ckpt-inspect)
add_dependencies(test_fork_basic ckpt-inspect)
ckpt_test(test_heap_walk_hostile test_heap_walk_hostile.c LABELS unit)

# samples (issue 7): kvstore and prefork driven as a user would, real
# processes and sockets, the stock redis-cli/redis-benchmark as clients
# (scripts/deps.sh installs redis-tools; the tests fail clearly without it).
# limits and auth (issue 16) are kvstore against hostile clients: bounded
# in time, loopback and Unix sockets only.
foreach(t proto restart bgsave limits auth)
  add_test(NAME test_kvstore_${t} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_kvstore_${t}.sh
    $<TARGET_FILE:kvstore> $<TARGET_FILE:ckpt-inspect>)
  set_tests_properties(test_kvstore_${t} PROPERTIES TIMEOUT 300 LABELS "proc;sample"
    PASS_REGULAR_EXPRESSION "PASS" FAIL_REGULAR_EXPRESSION "FAIL:")
endforeach()
# kvstore's dataset layout 2 (values of 128 B or more in blocks of their own):
# a layout-1 pool written by kvstore_v1_pool as the old kvstore wrote it is
# upgraded at start; a pool of an unknown layout is refused.
add_executable(kvstore_v1_pool kvstore_v1_pool.c ${PROJECT_SOURCE_DIR}/samples/kvstore/dict.c)
target_link_libraries(kvstore_v1_pool PRIVATE ckpt PkgConfig::XXHASH)
add_test(NAME test_kvstore_layout COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_kvstore_layout.sh
  $<TARGET_FILE:kvstore> $<TARGET_FILE:ckpt-inspect> $<TARGET_FILE:kvstore_v1_pool>)
set_tests_properties(test_kvstore_layout PROPERTIES TIMEOUT 300 LABELS "proc;sample"
  PASS_REGULAR_EXPRESSION "PASS" FAIL_REGULAR_EXPRESSION "FAIL:")
add_test(NAME test_prefork COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_prefork.sh
  $<TARGET_FILE:prefork> $<TARGET_FILE:ckpt-inspect>)
set_tests_properties(test_prefork PROPERTIES TIMEOUT 300 LABELS "proc;sample"
  PASS_REGULAR_EXPRESSION "PASS" FAIL_REGULAR_EXPRESSION "FAIL:")

# dirty-page tracking (issue 11, point 2; libckpt/engine/dirty.c): exact sets
# on ext4 MAP_SHARED / MAP_PRIVATE and memfd, kernel writes (pipe, pread,
# O_DIRECT), racing writers, fork children, fallbacks (CKPT_TEST_NO_UFFD,
# and an unprivileged child: root drops to uid 65534, skips otherwise).
# Under valgrind 3.19 userfaultfd(2) is ENOSYS and PAGEMAP_SCAN an unknown
# ioctl (dirty.c zeroes its output so nothing reads as undefined): root gets
# wp-async through /dev/userfaultfd there, and the unprivileged test skips.
ckpt_test(test_dirty test_dirty.c LABELS unit proc VALGRIND)

# the preload library's record of the protections it set (preload/vprot.c,
# linked in directly, issue 13): random mprotect sequences against the
# kernel's /proc/self/maps; the zeroing, reveal and apply it does for
# vmem.c. In every build (the sanitizers too: the file has no malloc).
ckpt_test(test_vprot test_vprot.c ${PROJECT_SOURCE_DIR}/preload/vprot.c LABELS unit VALGRIND)
target_include_directories(test_vprot PRIVATE ${PROJECT_SOURCE_DIR}/preload)

# power-loss crash states (issue 17): a recorder preloaded into workload
# drivers logs every write and ordering point of the pool file; crashcheck
# builds the files a power loss could leave and checks libckpt on each
# (docs/CRASH-STATES.md). Label crash.
add_subdirectory(crash)

# transparent mode (issue 13): unmodified Debian programs under ckpt-run,
# each checked by its own means and by what the pool holds afterwards
# (tests/test_preload.sh says why each program is there). Not in sanitizer
# builds: the sanitizers replace malloc themselves, as valgrind does.
if(NOT CKPT_SANITIZE)
  foreach(t errors python sqlite bash git gcc redis young sealed vmem)
    add_test(NAME test_preload_${t} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_preload.sh
      ${t} $<TARGET_FILE:ckpt-run> $<TARGET_FILE:ckpt-inspect>)
    set_tests_properties(test_preload_${t} PROPERTIES TIMEOUT 900 LABELS "proc;preload"
      PASS_REGULAR_EXPRESSION "PASS" FAIL_REGULAR_EXPRESSION "FAIL:")
  endforeach()
endif()

# remote stores (issue 14): push, list, pull to a fresh pool and restart,
# prune and GC, faults; against a redis-server and a one-node Ceph cluster
# that the tests start on loopback (tests/ceph_cluster.sh).
add_executable(remote_workload remote_workload.c)
target_link_libraries(remote_workload PRIVATE ckpt PkgConfig::XXHASH)
if(CKPT_HAVE_REMOTE)
  foreach(t redis rados)
    add_test(NAME test_remote_${t} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_remote_${t}.sh
      $<TARGET_FILE:remote_workload> $<TARGET_FILE:ckpt-remote> $<TARGET_FILE:ckpt-inspect>)
    set_tests_properties(test_remote_${t} PROPERTIES TIMEOUT 300 LABELS "proc;remote"
      PASS_REGULAR_EXPRESSION "PASS" FAIL_REGULAR_EXPRESSION "FAIL:")
  endforeach()
endif()
# sealed pools (issue 15): kill -9 and restart, no plaintext in the file,
# keys, tampering, fork, background checkpoints, retention, crash points,
# refusals, ckpt-inspect --key-file, key rotation (ckpt_reseal)
ckpt_test(test_seal test_seal.c LABELS proc VALGRIND)
add_dependencies(test_seal ckpt-inspect)
# lazy sealed restart: chunks decrypted on first access, kernel I/O into
# holes, a tampered chunk fenced (SIGBUS, named), fork and checkpoint mid-fill
ckpt_test(test_seal_lazy test_seal_lazy.c LABELS proc root)
add_dependencies(test_seal_lazy ckpt-inspect)
# the program's key callback (ckpt_set_key_callback): sealed and unsealed
# pools created, keys refused, key_file over the callback
ckpt_test(test_seal_keycb test_seal_keycb.c LABELS proc VALGRIND)
