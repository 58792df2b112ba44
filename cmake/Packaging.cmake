# Packaging.cmake -- Debian packages with `cpack -G DEB`, one per install
# component:
#   libckpt1     (runtime) the shared library: libckpt.so.1 and its file
#   libckpt-dev  (dev)     header, libckpt.so link, libckpt.a, pkg-config
#                          file, CMake package, man pages of section 3
#   ckpt-tools   (tools)   ckpt-inspect, ckpt-run, libckpt-preload.so and
#                          their man pages
# Each package also gets /usr/share/doc/PACKAGE/{copyright,changelog.Debian.gz}
# (install rules that only a component install, such as cpack's, runs: a
# plain `cmake --install` does not put Debian files into a prefix).
#
# Packages must be built from a tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr, so that libraries land in the multiarch
# directory (/usr/lib/x86_64-linux-gnu); scripts/build-debs.sh does that,
# with Debian's build flags, and runs lintian.

set(CKPT_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages (VERSION-RELEASE)")
set(CKPT_DEB_MAINTAINER "libckpt maintainers <maintainers@libckpt.invalid>"
    CACHE STRING "Maintainer field of the Debian packages")
set(CKPT_DEB_VERSION "${PROJECT_VERSION}-${CKPT_DEB_RELEASE}")

# /usr/share/doc/PACKAGE: copyright, and the Debian changelog (gzip -9n)
set(ckpt_deb_changelog ${CMAKE_CURRENT_BINARY_DIR}/packaging/changelog.Debian.gz)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/packaging)
add_custom_command(OUTPUT ${ckpt_deb_changelog}
  COMMAND ${CMAKE_COMMAND} -DIN=${PROJECT_SOURCE_DIR}/packaging/debian/changelog
          -DOUT=${ckpt_deb_changelog} -P ${PROJECT_SOURCE_DIR}/cmake/gzip_man.cmake
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/debian/changelog
  COMMENT "Compressing the Debian changelog" VERBATIM)
add_custom_target(ckpt_deb_changelog ALL DEPENDS ${ckpt_deb_changelog})
foreach(comp_pkg runtime:libckpt1 dev:libckpt-dev tools:ckpt-tools)
  string(REPLACE ":" ";" cp ${comp_pkg})
  list(GET cp 0 comp)
  list(GET cp 1 pkg)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright ${ckpt_deb_changelog}
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg}
          COMPONENT ${comp} EXCLUDE_FROM_ALL)
endforeach()

set(CPACK_PACKAGE_NAME libckpt)
set(CPACK_PACKAGE_VENDOR "libckpt")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# no CPACK_PACKAGE_DESCRIPTION_SUMMARY: cpack would put it before every
# package's own description; each first line below is that package's synopsis
set(CPACK_PACKAGE_CONTACT "${CKPT_DEB_MAINTAINER}")
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev tools)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)      # libckpt-dev: Depends libckpt1 (= VERSION)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${CKPT_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CKPT_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SOURCE libckpt)
# Depends from the ELF files (dpkg-shlibdeps: libc6, libpmem1, libxxhash0,
# libssl3 for libcrypto);
# a shlibs file and the ldconfig trigger for the library package
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libckpt1)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# the ldconfig trigger Debian asks of library packages (cpack also writes
# postinst/postrm scripts that call ldconfig: lintian warns, harmlessly)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/libckpt1/triggers)
# control files 0644 (scripts 0755) whatever the source tree's umask gave them
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
"durable, fork-safe, checkpointable heaps on persistent memory
libckpt gives a long-running C program a heap that lives in a pool file on
persistent memory (a DAX file) or on an ordinary file that emulates it.
Checkpoints are immutable, crash-atomic images of the heap that a process
restarts from at the same addresses, with every pointer valid. A forked
child continues on its own durable copy of the heap.
.
This package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libckpt-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# the static library and libckpt::ckpt_static link libpmem, libxxhash and libcrypto
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libpmem-dev, libxxhash-dev, libssl-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
"durable, fork-safe, checkpointable heaps on persistent memory (development)
libckpt gives a long-running C program a heap that lives in a pool file on
persistent memory (a DAX file) or on an ordinary file that emulates it,
with crash-atomic checkpoints and fork-safe, durable heaps.
.
This package contains the header, the static library, the pkg-config file
(libckpt), the CMake package (libckpt::ckpt) and the manual pages.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME ckpt-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
"tools for libckpt pools: inspector, ckpt-run, remote store copier
ckpt-inspect shows what a libckpt pool holds (header, segments,
checkpoints, every block of a heap, hex dumps at the addresses the program
saw) and verifies it, read-only and safe while services use the pool.
ckpt-run runs an unmodified program with its heap in a pool, through the
preload library libckpt-preload.so. ckpt-remote copies checkpoints to a
remote store (Redis, Ceph RADOS) and back, so a service can restart from
them on another machine.")

# cpack refuses a tree whose install prefix is not /usr (see the top)
set(CKPT_CPACK_PREFIX "${CMAKE_INSTALL_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/CPackOptions.cmake.in
               ${CMAKE_BINARY_DIR}/CPackOptions.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_BINARY_DIR}/CPackOptions.cmake)

include(CPack)
