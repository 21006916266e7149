# SPDX-License-Identifier: MIT
#
# The man pages: scdoc sources in doc/, whose section-3 function texts are
# generated from the header comments at build time (doc/build-man.sh), so
# the pages cannot drift from the headers. Built when scdoc is found (or
# TP_BUILD_MAN=ON demands it) and installed under share/man.
find_program(TP_SCDOC scdoc)
if(TP_SCDOC)
  set(tp_man_default ON)
else()
  set(tp_man_default OFF)
endif()
option(TP_BUILD_MAN "Build and install the man pages (needs scdoc)"
       ${tp_man_default})
if(TP_BUILD_MAN)
  if(NOT TP_SCDOC)
    message(FATAL_ERROR "TP_BUILD_MAN is ON but scdoc was not found "
      "(Debian package scdoc; scripts/deps.sh installs it)")
  endif()
  file(GLOB TP_MAN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/doc/*.scd)
  set(TP_PUBLIC_HEADERS ${PROJECT_SOURCE_DIR}/include/taskpool.h
                        ${PROJECT_SOURCE_DIR}/include/taskpool_control.h)
  set(TP_MAN_DIR ${PROJECT_BINARY_DIR}/man)
  add_custom_command(
    OUTPUT ${TP_MAN_DIR}/functions.txt
    COMMAND ${CMAKE_COMMAND} -E env SCDOC=${TP_SCDOC}
            sh ${PROJECT_SOURCE_DIR}/doc/build-man.sh ${TP_MAN_DIR}
            ${PROJECT_SOURCE_DIR}/doc ${TP_PUBLIC_HEADERS}
    DEPENDS ${TP_MAN_SOURCES} ${TP_PUBLIC_HEADERS}
            ${PROJECT_SOURCE_DIR}/doc/build-man.sh
            ${PROJECT_SOURCE_DIR}/doc/header2scd.awk
    COMMENT "Building the man pages from doc/*.scd and the header comments"
    VERBATIM)
  add_custom_target(man ALL DEPENDS ${TP_MAN_DIR}/functions.txt)
  install(DIRECTORY ${TP_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}
          FILES_MATCHING PATTERN "*.[137]")
endif()
