# SPDX-License-Identifier: MIT
#
# tp_check_version(): fails the configuration, saying what to change, if the
# TP_VERSION_* macros of include/taskpool.h or the top entry of
# debian/changelog disagree with project(VERSION).
function(tp_check_version)
  file(STRINGS ${PROJECT_SOURCE_DIR}/include/taskpool.h lines
       REGEX "^#define TP_VERSION_(MAJOR|MINOR|PATCH|STRING) ")
  foreach(part MAJOR MINOR PATCH)
    set(found "")
    foreach(line ${lines})
      if(line MATCHES "^#define TP_VERSION_${part} +([0-9]+)$")
        set(found ${CMAKE_MATCH_1})
      endif()
    endforeach()
    if(NOT found STREQUAL PROJECT_VERSION_${part})
      message(FATAL_ERROR "include/taskpool.h: TP_VERSION_${part} is "
        "'${found}' but project(VERSION) is ${PROJECT_VERSION}: make "
        "TP_VERSION_${part} ${PROJECT_VERSION_${part}}")
    endif()
  endforeach()
  set(found "")
  foreach(line ${lines})
    if(line MATCHES "^#define TP_VERSION_STRING +\"([^\"]*)\"$")
      set(found ${CMAKE_MATCH_1})
    endif()
  endforeach()
  if(NOT found STREQUAL PROJECT_VERSION)
    message(FATAL_ERROR "include/taskpool.h: TP_VERSION_STRING is "
      "\"${found}\" but project(VERSION) is ${PROJECT_VERSION}")
  endif()
  set(changelog ${PROJECT_SOURCE_DIR}/debian/changelog)
  if(EXISTS ${changelog})
    file(STRINGS ${changelog} first LIMIT_COUNT 1)
    if(NOT first MATCHES "^taskpool \\(([^)-]+)(-[^)]*)?\\) ")
      message(FATAL_ERROR "debian/changelog: cannot read the version of "
        "its first line: '${first}'")
    endif()
    if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
      message(FATAL_ERROR "debian/changelog: the top entry is version "
        "${CMAKE_MATCH_1} but project(VERSION) is ${PROJECT_VERSION}: add "
        "an entry (dch -v ${PROJECT_VERSION})")
    endif()
  endif()
endfunction()
