# Manpages.cmake -- the man pages, installed compressed (gzip -9n) under
# CMAKE_INSTALL_MANDIR: libckpt(3) and one page per call family (component
# dev), every other function of a family as a `.so` link to its page, and
# ckpt-inspect(1), ckpt-run(1) and ckpt-remote(1) (component tools). The sources are roff in
# docs/man/ and docs/ckpt-inspect.1; tests/test_docs.sh lints them and checks that
# every function of include/libckpt.h has a page.

# family page -> the other functions it documents (each gets a .so link)
set(CKPT_MAN3_ckpt_create ckpt_open ckpt_close ckpt_restarted_from ckpt_reseal
    ckpt_set_key_callback)
set(CKPT_MAN3_ckpt_alloc ckpt_calloc ckpt_realloc ckpt_aligned_alloc ckpt_free
    ckpt_usable_size ckpt_root ckpt_set_root)
set(CKPT_MAN3_ckpt_checkpoint ckpt_checkpoint_background ckpt_checkpoint_wait
    ckpt_set_keep_checkpoints ckpt_reclaim ckpt_persist)
set(CKPT_MAN3_ckpt_errormsg)
set(CKPT_MAN3_PAGES libckpt ckpt_create ckpt_alloc ckpt_checkpoint ckpt_errormsg)

find_program(GZIP_PROGRAM gzip REQUIRED)
set(ckpt_man_dir ${CMAKE_CURRENT_BINARY_DIR}/man)
set(ckpt_man3 "")
set(ckpt_man1 "")

function(ckpt_man_page src out)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${src} -DOUT=${out} -P ${PROJECT_SOURCE_DIR}/cmake/gzip_man.cmake
    DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/gzip_man.cmake
    COMMENT "Compressing man page ${out}" VERBATIM)
endfunction()

foreach(page ${CKPT_MAN3_PAGES})
  set(out ${ckpt_man_dir}/man3/${page}.3.gz)
  ckpt_man_page(${PROJECT_SOURCE_DIR}/docs/man/${page}.3 ${out})
  list(APPEND ckpt_man3 ${out})
  foreach(alias ${CKPT_MAN3_${page}})
    set(aout ${ckpt_man_dir}/man3/${alias}.3.gz)
    add_custom_command(OUTPUT ${aout}
      COMMAND ${CMAKE_COMMAND} -DSO=man3/${page}.3 -DOUT=${aout}
              -P ${PROJECT_SOURCE_DIR}/cmake/gzip_man.cmake
      DEPENDS ${PROJECT_SOURCE_DIR}/cmake/gzip_man.cmake
      COMMENT "Man page link ${alias}(3) -> ${page}(3)" VERBATIM)
    list(APPEND ckpt_man3 ${aout})
  endforeach()
endforeach()
ckpt_man_page(${PROJECT_SOURCE_DIR}/docs/ckpt-inspect.1 ${ckpt_man_dir}/man1/ckpt-inspect.1.gz)
list(APPEND ckpt_man1 ${ckpt_man_dir}/man1/ckpt-inspect.1.gz)
if(NOT CKPT_SANITIZE)   # ckpt-run is not built with the sanitizers
  ckpt_man_page(${PROJECT_SOURCE_DIR}/docs/man/ckpt-run.1 ${ckpt_man_dir}/man1/ckpt-run.1.gz)
  list(APPEND ckpt_man1 ${ckpt_man_dir}/man1/ckpt-run.1.gz)
endif()
if(CKPT_HAVE_REMOTE)
  ckpt_man_page(${PROJECT_SOURCE_DIR}/docs/man/ckpt-remote.1 ${ckpt_man_dir}/man1/ckpt-remote.1.gz)
  list(APPEND ckpt_man1 ${ckpt_man_dir}/man1/ckpt-remote.1.gz)
endif()

file(MAKE_DIRECTORY ${ckpt_man_dir}/man1 ${ckpt_man_dir}/man3)
add_custom_target(ckpt_man ALL DEPENDS ${ckpt_man3} ${ckpt_man1})
install(FILES ${ckpt_man3} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT dev)
install(FILES ${ckpt_man1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools)
