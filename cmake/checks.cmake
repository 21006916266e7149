# SPDX-License-Identifier: MIT
#
# Tests of the library as shipped (run by CTest with the Check suites):
#   api_docs  every exported function is declared and documented in its
#             header (scripts/check-api-docs.sh)
#   symbols   debian/libtaskpool0.symbols lists every exported function
#   man_pages every page renders and every function opens its page
#   spdx      every source, header, script and CMake file has its SPDX line
#   usage_queue  the queue example (usage/queue.c) runs and checks itself
#   cli_man   taskpool-control(1) documents every option of its --help
#   readme_excerpts  README code marked verbatim is in the compiled file
#   checks_selftest  each of these checks, given a defect, names it
set(tp_headers ${PROJECT_SOURCE_DIR}/include/taskpool.h
               ${PROJECT_SOURCE_DIR}/include/taskpool_control.h)
add_test(NAME api_docs
  COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/check-api-docs.sh
          $<TARGET_FILE:taskpool> ${tp_headers})
add_test(NAME symbols
  COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/check-symbols.sh
          $<TARGET_FILE:taskpool>
          ${PROJECT_SOURCE_DIR}/debian/libtaskpool0.symbols)
add_test(NAME spdx
  COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/spdx.sh --check
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
if(TP_BUILD_MAN AND NOT TP_SANITIZE) # (sanitizers change nothing there)
  add_test(NAME man_pages
    COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/check-man.sh
            ${PROJECT_BINARY_DIR}/man ${PROJECT_BINARY_DIR}/man/functions.txt)
endif()
if(TARGET queue)
  add_test(NAME usage_queue COMMAND queue)
  set_tests_properties(usage_queue PROPERTIES TIMEOUT 60)
endif()
# Each check above, given a defect, names it.
add_test(NAME checks_selftest
  COMMAND sh ${PROJECT_SOURCE_DIR}/tests/consumer/checks-selftest.sh
          $<TARGET_FILE:taskpool>)
if(TARGET taskpool-control)
  # taskpool-control(1) documents every option of taskpool-control --help.
  add_test(NAME cli_man
    COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/check-cli-man.sh
            $<TARGET_FILE:taskpool-control>
            ${PROJECT_SOURCE_DIR}/doc/taskpool-control.1.scd)
endif()
# The README's code blocks marked "verbatim" are copies of compiled files.
add_test(NAME readme_excerpts
  COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/check-readme-excerpts.sh
          ${PROJECT_SOURCE_DIR}/README.md)
