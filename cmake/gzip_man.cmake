# gzip_man.cmake -- cmake -DIN=page -DOUT=page.gz -P gzip_man.cmake
#                or cmake -DSO=man3/target.3 -DOUT=alias.3.gz -P gzip_man.cmake
# Writes a man page compressed with `gzip -9n` (no name, no time stamp: the
# same bytes on every build, as Debian policy asks of installed man pages).
# With SO, the page is a one-line `.so SO` link to another page.
if(DEFINED SO)
  set(IN "${OUT}.so")
  file(WRITE "${IN}" ".so ${SO}\n")
endif()
execute_process(COMMAND gzip -9n -c "${IN}" OUTPUT_FILE "${OUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}")
  message(FATAL_ERROR "gzip ${IN}: ${rc}")
endif()
